"""A fresh install of the kit with uv against pip, both by the Makefile's own recipe.

    python3 benchmarks/bench_install.py [--out results/benchmarks/install.json] [--repeats 1]

Runs ``make .venv/.installed`` in a temporary folder, once with ``INSTALLER=pip`` (the reference)
and once with ``INSTALLER=uv``, each with empty pip and uv caches of its own (temporary folders:
the user's caches are neither read nor touched), one after the other, and checks that both venvs
hold the same packages at the same versions (uv itself and pip's own version aside). Prints the
seconds and the ratio uv / pip; with ``--out`` writes them with the commit and the machine. Run it
with the system Python on a quiet machine: the cores must be free.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from record_time import commit, cpu_model  # noqa: E402  (the system Python: the kit is not installed)

INSTALLERS = ("pip", "uv")  # the reference first


def install(installer: str, folder: Path) -> tuple[float, dict[str, str]]:
    """Seconds of ``make .venv/.installed INSTALLER=installer`` into ``folder``, and its packages."""
    venv = folder / "venv"
    env = {**os.environ, "PIP_CACHE_DIR": str(folder / "pip-cache"), "UV_CACHE_DIR": str(folder / "uv-cache")}
    t0 = time.perf_counter()
    subprocess.run(["make", "-s", f"VENV={venv}", f"INSTALLER={installer}", f"{venv}/.installed"], cwd=ROOT,
                   env=env, check=True)
    seconds = time.perf_counter() - t0
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                            text=True, check=True).stdout
    packages = {p["name"].lower(): p["version"] for p in json.loads(listed) if p["name"].lower() not in ("pip", "uv")}
    return seconds, packages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    seconds = {name: [] for name in INSTALLERS}
    packages = {}
    for _ in range(args.repeats):
        for name in INSTALLERS:
            with tempfile.TemporaryDirectory(prefix=f"qpi-install-{name}-") as tmp:
                took, packages[name] = install(name, Path(tmp))
            seconds[name].append(round(took, 1))
            print(f"{name}: {took:.1f} s", flush=True)
    differ = sorted(k for k in set(packages["pip"]) | set(packages["uv"]) if packages["pip"].get(k) != packages["uv"].get(k))
    if differ:
        print("the two installs differ: " + ", ".join(f"{k} pip {packages['pip'].get(k)} uv {packages['uv'].get(k)}"
                                                      for k in differ[:10]))
        return 1
    best = {name: min(v) for name, v in seconds.items()}
    ratio = best["uv"] / best["pip"]
    print(f"uv / pip: {ratio:.2f}x ({len(packages['uv'])} packages, identical versions)")
    if args.out:
        record = {"what": "make .venv/.installed on a fresh folder with empty caches, INSTALLER=pip then uv",
                  "command": "python3 benchmarks/bench_install.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "seconds": seconds, "uv_over_pip": round(ratio, 3), "packages": len(packages["uv"]),
                  "git_commit": commit(), "machine": {"cpu": cpu_model(), "logical_cores": os.cpu_count()},
                  "date": datetime.date.today().isoformat()}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
