"""Bounce reading speed over Sisimai's corpus (tests/data/sisimai/eml, 435 real bounces,
complaints and auto-replies): bounces read per second in process — the reader alone, and reader
plus classification of every recipient — and through ``postbote inbound parse --json`` as a
process over all files at once (process start included). Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from postbote.inbound import parse_report
from postbote.inbound.meaning import classify_recipient

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "sisimai" / "eml"


def rate(messages: list[bytes], rounds: int, classify: bool) -> tuple[float, float]:
    """Bounces per second of wall-clock time and of this process's CPU time (the second is what
    one free core would do: on a shared machine the first also measures the other load)."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        for raw in messages:
            report = parse_report(raw)
            if classify:
                for recipient in report.recipients:
                    if recipient.action in ("failed", "delayed"):
                        classify_recipient(recipient)
    count = rounds * len(messages)
    return count / (time.perf_counter() - started), count / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the corpus in process")
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*.eml"))
    messages = [f.read_bytes() for f in files]
    rate(messages, 1, True)  # load the rules once, as a running receiver has
    reader = rate(messages, args.rounds, False)
    with_classifier = rate(messages, args.rounds, True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBOTE_")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "postbote", "inbound", "parse", "--json", *map(str, files)],
                            capture_output=True, env=env, check=True)
    cli = time.perf_counter() - started
    assert len(json.loads(result.stdout)) == len(files)
    print(json.dumps({
        "files": len(files),
        "megabytes": round(sum(map(len, messages)) / 1e6, 2),
        "reader_bounces_per_s": round(reader[0]),
        "reader_and_classifier_bounces_per_s": round(with_classifier[0]),
        "reader_bounces_per_cpu_s": round(reader[1]),
        "reader_and_classifier_bounces_per_cpu_s": round(with_classifier[1]),
        "cli_bounces_per_s": round(len(files) / cli),
        "cli_seconds": round(cli, 2),
    }))


if __name__ == "__main__":
    main()
