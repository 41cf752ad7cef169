"""Provenance: what made a result (profile, seeds, data hash, versions, commit, machine).

Every results table of the kit is written with a ``provenance.json`` from :func:`provenance`.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .config import Profile
from .data import QPIDataset
from .runs import STEPS

__all__ = ["git_commit", "provenance"]


def git_commit() -> str | None:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (out.stdout.strip() + ("+dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(profile: Profile, ds: QPIDataset, extra: dict | None = None) -> dict:
    """Profile, seeds, data hash, versions, git commit, machine."""
    import accelerate
    import diffusers

    return {
        "profile": profile.to_dict(),
        "dataset": {"content_hash": ds.meta.get("content_hash"), "source": ds.meta.get("source"),
                    "seed": ds.meta.get("seed")},
        "seeds": {"simulation": profile.simulation.seed, "splits": profile.simulation.split_seed,
                  **{s: getattr(profile, s).seed for s in STEPS}},
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "accelerate": accelerate.__version__},
        "git_commit": git_commit(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
