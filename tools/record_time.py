"""Time a command and record it, so a time the README quotes comes from a file a command wrote.

    python tools/record_time.py --out results/make_test_time.json -- bash .ci/run

Runs the command in the current folder, and only if it succeeds writes ``--out``: the wall
seconds, the command, the commit of the checkout it ran in (with ``+dirty`` if files differed),
the machine (CPU model, logical cores) and the date. A failed command writes nothing and exits
with its code.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def cpu_model() -> str:
    # qpi_lab.provenance.cpu_name does the same; this script runs with the system python before
    # `make test` has installed the kit, so it cannot import it
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return head + ("+dirty" if dirty.stdout.strip() else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given (put it after --)")
    out = args.out.resolve()
    at, t0 = commit(), time.perf_counter()
    done = subprocess.run(command)
    seconds = round(time.perf_counter() - t0, 1)
    if done.returncode != 0:
        print(f"record_time: {' '.join(command)} failed (exit {done.returncode}) after {seconds} s: nothing written",
              file=sys.stderr)
        return done.returncode
    record = {"command": " ".join(command), "seconds": seconds, "minutes": round(seconds / 60, 1), "git_commit": at,
              "machine": {"cpu": cpu_model(), "logical_cores": os.cpu_count()},
              "date": datetime.date.today().isoformat()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"{' '.join(command)}: {seconds} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
