"""The template sandbox (workflow step 3): templates are written by customers and are hostile.
Each attack is refused or stopped with a clear error, quickly; ordinary templates still work."""

from __future__ import annotations

import time

import pytest

from postbote.workflows import TemplateError, render

VARIABLES = {"candidate": {"name": "Lea"}, "fields": {"stage": "interview", "items": ["a", "b"]}, "x": "s"}
BIG = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def refused(source: str, **kwargs) -> TemplateError:
    started = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        render(source, VARIABLES, **kwargs)
    assert time.monotonic() - started < 2, "the sandbox must stop an attack quickly"
    assert caught.value.code == "template_invalid" and caught.value.hint
    return caught.value


def test_ordinary_templates_render():
    text = render("Hallo {{ candidate.name }}, {{ fields.stage|upper }}: {{ fields.items|join(', ') }} "
                  "{% for i in fields.items %}{{ loop.index }}{% endfor %}{{ missing.deeper }}", VARIABLES)
    assert text == "Hallo Lea, INTERVIEW: a, b 12"


def test_html_is_escaped_and_concatenation_too():
    assert render("<p>{{ x }}{{ x ~ '&' }}</p>", {"x": "<script>"}, html=True) == \
        "<p>&lt;script&gt;&lt;script&gt;&amp;</p>"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ x.__class__ }}",
    "{{ x['__class__'] }}",
    "{{ x|attr('__class__') }}",
    "{{ self.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
])
def test_python_internals_are_refused(source):
    assert "refused" in refused(source).message


@pytest.mark.parametrize("source", [
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
])
def test_cycler_and_the_other_helpers_are_gone(source):
    assert "refused" in refused(source).message
    assert render("{{ cycler is defined }} {{ joiner is defined }} {{ lipsum is defined }} {{ namespace is defined }}",
                  {}) == "False False False False"


@pytest.mark.parametrize("source", [
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{0}'.format_map(candidate) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%s'|format(x) }}",
])
def test_format_string_tricks_are_refused(source):
    refused(source)


@pytest.mark.parametrize("source", [
    "{% include '/etc/passwd' %}",
    "{% import '/etc/passwd' as p %}",
    "{% from '/etc/passwd' import x %}",
    "{% extends '/etc/passwd' %}",
])
def test_files_cannot_be_read(source):
    error = refused(source)
    assert "cannot include, import or extend" in error.message and error.line == 1


def test_an_endless_loop_is_stopped_at_the_time_limit():
    error = refused("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
                    "{% endfor %}{% endfor %}{% endfor %}")
    assert "time limit" in error.message


def test_recursion_is_stopped():
    refused("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}")


@pytest.mark.parametrize("source, why", [
    ("{{ 'a' * 1000000000 }}", "* would make"),
    ("{{ 1000000000 * 'a' }}", "* would make"),
    ("{{ ['a'] * 1000000000 }}", "* would make"),
    ("{% set a = '" + BIG + "' %}" + "{% set a = a ~ a %}" * 30 + "{{ a|length }}", "~ would make"),
    ("{% set a = '" + BIG + "' %}" + "{% set a = a + a %}" * 30 + "{{ a|length }}", "+ would make"),
    ("{{ 10 ** 100000000 }}", "exponent"),
    ("{{ ('a' * 200000)|replace('a', 'b' * 200000) }}", "replace would make"),
    ("{% set a = '" + BIG + "' * 1000 %}{{ [a, a, a, a, a]|join }}", "join would make"),
    ("{% set a = '" + BIG + "' * 1000 %}{{ [a, a, a, a, a]|map('lower')|join }}", "join would make"),
    ("{{ (['" + BIG + "' * 1000] * 1000)|join }}", "* would make"),
    ("{{ range(100000000)|list|length }}", "range() may make at most"),
    ("{{ 'a'|center(1000000000) }}", "No filter named 'center'"),
    ("{{ 'a'.ljust(1000000000) }}", "'ljust' of 'str' object is unsafe"),
    ("{{ 'a'|truncate(1000000000) }}", "a number above"),
    # Work done inside one C call, which neither the line tracer nor the output counter sees:
    ("{{ ((((10 ** 64) ** 64) ** 64) ** 64) > 1 }}", "** would make a number"),
    ("{% set n = 10 ** 60 %}" + "{% set n = n * n %}" * 12 + "{{ n > 1 }}", "* would make a number"),
    ("{% set a = [1] * 250000 %}{% set b = [a] * 250000 %}{{ b|length }}", "* would make"),
    ("{% set a = [1] * 100000 %}{% set b = [a, a] %}{{ (b + b)|length }}", "+ would make"),
    ("{% set a %}" + BIG * 100 + "{% endset %}" + "{% set a %}{{ a }}{{ a }}{% endset %}" * 26 + "{{ a|length }}",
     "a block would make"),
    ("{% macro m(t) %}{{ t }}{{ t }}{% endmacro %}{% set a = '" + BIG + "' * 4000 %}{{ m(m(m(a)))|length }}",
     "a block would make"),
])
def test_output_blow_ups_are_refused_before_they_happen(source, why):
    assert why in refused(source).message


def test_output_is_cut_at_its_limit():
    error = refused("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert "output is longer than" in error.message


def test_syntax_errors_name_their_line():
    error = refused("one\ntwo\n{% if x %}\nno end")
    assert error.line == 3 and error.details[0]["line"] == 3
