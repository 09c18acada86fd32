"""Batch explanation speed: ``postbote explain --json -`` over N replies (the labelled set of
real replies, repeated, half of them as JSON objects with their MX host). Prints one JSON line:
replies/s in process and through the command line end to end (process start included)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from postbote.explaining import explain_lines
from postbote.settings import load_settings

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "replies.toml"


def lines(count: int) -> list[str]:
    replies = tomllib.loads(DATA.read_text(encoding="utf-8"))["reply"]
    out = []
    for i in range(count):
        r = replies[i % len(replies)]
        text = " ".join(r["text"].split("\n"))
        out.append(json.dumps({"reply": text, "mx": r["mx"]}) if "mx" in r and i % 2 else text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=20000)
    args = parser.parse_args()
    batch = lines(args.replies)
    settings = load_settings()
    list(explain_lines(settings, batch[:200]))  # load rules and texts once, as the CLI does
    started = time.perf_counter()
    produced = sum(1 for _ in explain_lines(settings, batch))
    in_process = time.perf_counter() - started
    env = dict(os.environ, POSTBOTE_CONFIG=os.devnull)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "postbote", "explain", "--json", "-"], input="\n".join(batch),
                            capture_output=True, text=True, env=env, check=True)
    cli = time.perf_counter() - started
    assert produced == len(result.stdout.splitlines()) == args.replies
    print(json.dumps({
        "replies": args.replies,
        "in_process_replies_per_s": round(args.replies / in_process),
        "cli_seconds": round(cli, 2),
        "cli_replies_per_s": round(args.replies / cli),
    }))


if __name__ == "__main__":
    main()
