"""Rendering the templates customers write (workflow step 3), in a sandbox.

Templates are hostile input: a tenant's admin may try to reach Python's internals, read files,
loop forever or produce gigabytes. Jinja2's ``SandboxedEnvironment`` blocks underscore
attributes and internal objects; on top of that:

- attributes: only a short list per type (the string, dict and list methods a mail needs) —
  ``str.format`` and ``format_map`` among the refused, so format specs cannot blow up or read
  attributes; the ``format``, ``center``, ``indent``, ``pprint`` and ``slice`` filters are gone;
- no loader: ``include``, ``import`` and ``extends`` have nothing to read from;
- the globals are only a ``range`` of at most ``MAX_RANGE`` items (no ``cycler``, ``joiner``,
  ``lipsum``, ``namespace``);
- ``+``, ``*``, ``**``, ``%`` and ``~`` check the size of what they would make before making it;
- the output stops at ``max_output`` characters and the render at ``max_seconds`` (a line
  tracer in the rendering thread, only in template code);
- a refused attribute raises instead of printing nothing, so an attack fails loudly.

Errors come back as ``TemplateError`` with the line (when Jinja knows it) and a reason."""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2 import pass_eval_context
from jinja2.filters import sync_do_join
from jinja2.exceptions import SecurityError, TemplateError as JinjaTemplateError
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from ..errors import InputError

MAX_SOURCE = 64_000  # characters of one template
MAX_OUTPUT = 256_000  # characters of one rendered part
MAX_SECONDS = 0.5
MAX_RANGE = 1_000
MAX_INT_BITS = 4_096  # about 1,200 decimal digits: far beyond any mail, far below a slow big-int operation
_TEMPLATE_FILE = "<template>"

_STR_METHODS = frozenset({"lower", "upper", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
                          "endswith", "split", "splitlines", "isdigit", "isalpha", "count", "find"})
_ALLOWED = {
    str: _STR_METHODS,
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"index", "count"}),
    LoopContext: frozenset({"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem",
                            "nextitem", "cycle", "depth", "depth0", "changed"}),
}
_REMOVED_FILTERS = ("format", "center", "indent", "pprint", "slice", "wordwrap", "xmlattr", "urlize", "filesizeformat")


class TemplateError(InputError):
    """A template that does not compile, or that failed or was stopped while rendering."""

    code = "template_invalid"

    def __init__(self, message: str, *, line: int | None = None, part: str | None = None, lang: str | None = None,
                 hint: str | None = None):
        super().__init__(message, hint=hint or "Fix the template at the line given; see the template rules in the README.")
        self.line, self.part, self.lang = line, part, lang
        self.details = [{"lang": lang, "part": part, "line": line, "reason": message}]


class _Stop(Exception):
    """Raised inside the render when a limit is reached."""


class _Refusing(ChainableUndefined):
    """A missing variable prints as nothing; a refused (unsafe) attribute raises when used."""

    __slots__ = ()

    def _refused(self) -> bool:
        return self._undefined_exception is SecurityError and self._undefined_hint is not None

    def __str__(self) -> str:
        if self._refused():
            self._fail_with_undefined_error()
        return ""

    def __iter__(self):
        if self._refused():
            self._fail_with_undefined_error()
        return iter(())

    def __bool__(self) -> bool:
        if self._refused():
            self._fail_with_undefined_error()
        return False


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple, bytes)) else 0


def _deep_size(value: Any, limit: int) -> int:
    """Items and characters inside ``value`` (a scalar counts one), nested containers counted in full, the count stopped
    once it passes ``limit`` (so a list of huge lists cannot hide behind a short outer length)."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, (list, tuple)):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.values())
        else:
            total += 1  # a number or other scalar: at least a character when printed
    return total


def _big(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS


def _replace_size(text: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    if not isinstance(text, str) or not isinstance(old, str) or not isinstance(new, str):
        return 0
    return len(text) + (text.count(old) if old else len(text) + 1) * len(new)


# Filters whose output can be far larger than their input: the size is estimated before they run.
_GROWTH = {"replace": _replace_size}


class _Generator(CodeGenerator):
    """Jinja's own code generator, with ``~`` (concatenation) routed through a size check."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("), context.eval_ctx.autoescape)")


class _Sandbox(SandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset({"+", "-", "*", "**", "%", "//"})

    def __init__(self, *, autoescape: bool, max_output: int):
        super().__init__(autoescape=autoescape, undefined=_Refusing, loader=None, auto_reload=False,
                         keep_trailing_newline=True)
        self.max_output = max_output
        self.globals.clear()
        self.globals["range"] = self._range
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters["join"] = self._join
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}
        self.tests.pop("callable", None)

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise SecurityError(f"range() may make at most {MAX_RANGE} items.")
        return numbers

    @pass_eval_context
    def _join(self, eval_ctx, value, d: str = "", attribute: Any = None) -> str:
        """``join``, counting as it goes: the items may come from a generator."""
        items, size = [], 0
        for item in value:
            size += (_sized(item) or 20) + _sized(d)
            if size > self.max_output:
                raise SecurityError(f"join would make more than {self.max_output} characters.")
            items.append(item)
        return sync_do_join(eval_ctx, items, d, attribute)

    def _bounded(self, name: str, function):
        limit = self.max_output

        first = 2 if getattr(function, "jinja_pass_arg", None) else 1  # the value filtered is no parameter
        grows = _GROWTH.get(name)

        @functools.wraps(function)
        def bounded(*args, **kwargs):
            for value in (*args[first:], *kwargs.values()):
                if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
                    raise SecurityError(f"a number above {limit} given to the filter {name}.")
            if grows is not None and grows(*args[first - 1:], **kwargs) > limit:
                raise SecurityError(f"the filter {name} would make more than {limit} characters.")
            result = function(*args, **kwargs)
            if _sized(result) > limit:
                raise SecurityError(f"the filter {name} made more than {limit} characters.")
            return result

        return bounded

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, Undefined):
            return True  # a missing variable's attribute is missing too
        for kind, allowed in _ALLOWED.items():
            if isinstance(obj, kind):
                return attr in allowed
        return not callable(value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            return self.unsafe_undefined(obj, attribute)
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]  # an event field named "items" is the field, not dict.items
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("_"):
            return self.unsafe_undefined(obj, argument)
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any):
        return None  # str.format is refused by is_safe_attribute instead of being sandboxed

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        limit = self.max_output
        if operator == "%" and isinstance(left, str):
            raise SecurityError("%-formatting of strings is not allowed in templates.")
        if operator == "**" and (not isinstance(right, (int, float)) or abs(right) > 64 or _sized(left)):
            raise SecurityError("** is allowed only with a small number as the exponent.")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 \
                and max(left.bit_length(), 1) * right > MAX_INT_BITS:
            raise SecurityError(f"** would make a number of more than {MAX_INT_BITS} bits.")
        if operator == "*" and isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError(f"* would make a number of more than {MAX_INT_BITS} bits.")
        if operator == "*" and isinstance(left, int) and _sized(right):
            left, right = right, left
        if operator == "*" and _sized(left) and isinstance(right, int) \
                and _deep_size(left, limit) * max(right, 0) > limit:
            raise SecurityError(f"* would make more than {limit} characters.")
        if operator == "+" and _deep_size(left, limit) + _deep_size(right, limit) > limit:
            raise SecurityError(f"+ would make more than {limit} characters.")
        result = super().call_binop(context, operator, left, right)
        if _big(result):
            raise SecurityError(f"a number of more than {MAX_INT_BITS} bits.")
        return result

    def concat(self, parts) -> str:
        """Every captured block (``set`` … ``endset``, macros, ``call`` and ``filter`` blocks) is
        joined here: it counts as it goes, so text built inside a block obeys the output limit too."""
        pieces, size = [], 0
        for piece in parts:
            size += len(piece)
            if size > self.max_output:
                raise SecurityError(f"a block would make more than {self.max_output} characters.")
            pieces.append(piece)
        return "".join(pieces)

    def checked_concat(self, parts: tuple, autoescape: bool) -> str:
        pieces = [self.finalize_text(p, autoescape) for p in parts]
        if sum(len(p) for p in pieces) > self.max_output:
            raise SecurityError(f"~ would make more than {self.max_output} characters.")
        return Markup("").join(pieces) if autoescape else "".join(pieces)

    @staticmethod
    def finalize_text(part: Any, autoescape: bool) -> str:
        if autoescape:
            return Markup.escape(part)
        return str(part)


@dataclass(frozen=True, slots=True)
class Limits:
    max_output: int = MAX_OUTPUT
    max_seconds: float = MAX_SECONDS


_ENVIRONMENTS: dict[tuple[bool, int], _Sandbox] = {}


def _environment(html: bool, limits: Limits) -> _Sandbox:
    key = (html, limits.max_output)
    if key not in _ENVIRONMENTS:
        _ENVIRONMENTS[key] = _Sandbox(autoescape=html, max_output=limits.max_output)
    return _ENVIRONMENTS[key]


_OTHER_FILES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool, max_output: int):
    environment = _environment(html, Limits(max_output=max_output))
    tree = environment.parse(source)
    for node in tree.find_all(_OTHER_FILES):
        raise TemplateSyntaxError("a template cannot include, import or extend another template or file",
                                  node.lineno)
    return environment.from_string(tree)


def compile_template(source: str, *, html: bool = False, limits: Limits = Limits(), part: str | None = None,
                     lang: str | None = None):
    """The compiled template, or ``TemplateError`` with the line of the syntax error."""
    if len(source) > MAX_SOURCE:
        raise TemplateError(f"The template is longer than {MAX_SOURCE} characters.", part=part, lang=lang)
    try:
        return _compiled(source, html, limits.max_output)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"line {exc.lineno}: {exc.message}", line=exc.lineno, part=part, lang=lang) from None


def render(source: str, variables: dict[str, Any], *, html: bool = False, limits: Limits = Limits(),
           part: str | None = None, lang: str | None = None) -> str:
    """Render with the limits; raises ``TemplateError`` (with the line where known)."""
    template = compile_template(source, html=html, limits=limits, part=part, lang=lang)
    deadline = time.monotonic() + limits.max_seconds
    watch = _Watch(deadline)
    out: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(watch.call)
    try:
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > limits.max_output:
                raise _Stop(f"the output is longer than {limits.max_output} characters")
            out.append(chunk)
    except _Stop as exc:
        raise TemplateError(f"stopped: {exc}", line=_line_of(exc), part=part, lang=lang,
                            hint="Make the template produce less, or loop over fewer items.") from None
    except SecurityError as exc:
        raise TemplateError(f"refused: {exc}", line=_line_of(exc), part=part, lang=lang,
                            hint="Templates may use the event's fields and simple filters, not Python internals.") from None
    except (JinjaTemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        raise TemplateError(f"{exc.__class__.__name__}: {exc}", line=_line_of(exc), part=part,
                            lang=lang) from None
    finally:
        sys.settrace(previous)
    return "".join(out)


class _Watch:
    """A line tracer for template frames only: stops the render after its deadline."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float):
        self.deadline = deadline

    def call(self, frame, event, arg):
        if frame.f_code.co_filename != _TEMPLATE_FILE:
            return None
        return self.step

    def step(self, frame, event, arg):
        if time.monotonic() > self.deadline:
            raise _Stop("the render took longer than its time limit")
        return self.step


def _line_of(exc: BaseException) -> int | None:
    """The template line from the traceback (Jinja rewrites frames to template lines)."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
