"""Provenance: what made a result (profile, seeds, data hash, versions, commit, machine).

Every results table of the kit is written with a ``provenance.json`` from :func:`provenance`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from qpi_utils.config import TRAIN_SECTIONS, Profile
from qpi_utils.data import QPIDataset
from qpi_utils.runs import STEPS
from qpi_utils.train import cpu_has_native_bf16

__all__ = ["git_commit", "same_code", "provenance"]


# what makes results (notebooks, figures and results are made by it); the manifest of committed
# results is written from the results, so it is not code that makes them
CODE_PATHS = ("qpi_utils", "qpi_lab", "pyproject.toml", ":(exclude)qpi_utils/committed_files.json")


def git_commit() -> str | None:
    """The checkout's commit; when the code (:data:`CODE_PATHS`) differs from it, ``+dirty-`` and
    a hash of that diff, so a result can be traced to exact code. The chain's own outputs
    (notebooks, figures, tables), rewritten while it runs, do not count. None outside git."""
    try:
        here = Path(__file__).resolve().parent
        run = lambda *args: subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10)
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        root = run("rev-parse", "--show-toplevel").stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", *CODE_PATHS], cwd=root, capture_output=True,
                              timeout=10).stdout
        return head.stdout.strip() + (f"+dirty-{hashlib.sha256(diff).hexdigest()[:12]}" if diff else "")
    except (OSError, subprocess.SubprocessError):
        return None


def same_code(made_at: str | None) -> bool:
    """Whether the checkout's code is the code that ran at ``made_at`` (a :func:`git_commit` value):
    both clean, and the same commit or commits whose code (:data:`CODE_PATHS`) is the same, so that
    a commit touching only pages or results in between does not count as a change. False outside
    git, for uncommitted code, or for a commit this checkout does not have."""
    now = git_commit()
    if not made_at or not now or "+dirty" in made_at or "+dirty" in now:
        return False
    if made_at == now:
        return True
    try:
        here = Path(__file__).resolve().parent
        root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                              timeout=10).stdout.strip()  # CODE_PATHS are relative to the top level
        same = subprocess.run(["git", "diff", "--quiet", made_at, now, "--", *CODE_PATHS], cwd=root,
                              capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(root) and same.returncode == 0


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what platform reports): bf16 training
    takes other paths on other CPUs, so a result names the one that made it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Platform, CPU model, core and torch thread counts, CPU bf16 support, and the GPU if any."""
    return {"platform": platform.platform(), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cpu_native_bf16": cpu_has_native_bf16(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def provenance(profile: Profile, ds: QPIDataset | None, extra: dict | None = None) -> dict:
    """Profile, seeds, data hash (when one dataset made the result), versions, git commit, machine."""
    import accelerate
    import diffusers

    return {
        "profile": profile.to_dict(),
        "dataset": None if ds is None else {"content_hash": ds.meta.get("content_hash"),
                                            "source": ds.meta.get("source"), "seed": ds.meta.get("seed")},
        "seeds": {"simulation": profile.simulation.seed, "splits": profile.simulation.split_seed,
                  **{s: getattr(profile, TRAIN_SECTIONS[s]).seed for s in STEPS}},
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "accelerate": accelerate.__version__},
        "git_commit": git_commit(),
        "machine": machine(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
