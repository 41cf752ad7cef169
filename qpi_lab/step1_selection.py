"""Is step 1's epoch selection costing in-domain accuracy? The kept epoch against the last one.

    python -m qpi_lab.step1_selection --profile quick --run-dir runs/quick-seeds --seeds 0 1 2

Step 1 keeps the epoch that reconstructs the *validation* kernels best (``train.SELECTION_RULE``);
step 2 then decodes latents of the *training* kernels. An audit (issue 30) found that rule, on
the old from-scratch profile, kept an epoch that reconstructed the training kernels worse than
the last epoch (0.0346 vs 0.0215 on [0, 1]) with OOD unchanged. This reads each seed's step-1
run: the kept weights (``models/kernel_vae.pt``) and the last epoch's (``checkpoints/kernel_vae.pt``),
and measures both on the training, validation and OOD kernels (the VAE's ceiling: decoding each
kernel's own latent mean, RMSE on [0, 1]), beside step 2's best validation RMSE for scale. OOD
kernels are read here only to report their ceiling; the decision reads validation and training
data alone.

:data:`DECISION` is the rule this measurement is read with; the result is written with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from qpi_utils.checkpoints import load_blob, load_data
from qpi_utils.config import get_profile
from qpi_utils.errors import QpiError
from qpi_utils.files import write_text
from qpi_utils.metrics import errors
from qpi_utils.models import build_kernel_vae, from_model_scale, kernel_latents
from qpi_utils.runs import RunLayout, project_root

from .provenance import provenance
from .seeds import seed_overrides

DECISION = ("keep the validation rule unless, over the seeds, the last epoch reconstructs the training kernels "
            "better than the kept one by more than a tenth of step 2's best validation RMSE (the error a better "
            "step 1 could at most give back to step 2 is its own gain) without reconstructing the validation "
            "kernels worse")


def ceilings(vae, ds, splits) -> dict[str, float]:
    """Mean per-kernel RMSE [0, 1] of the VAE decoding each kernel's own latent mean, per kernel split."""
    with torch.no_grad():
        mean, _ = kernel_latents(vae, ds.kernels)
        rec = from_model_scale(vae.decode(mean).sample).float().numpy()[:, 0]
    kernels = np.asarray(ds.kernels, dtype=np.float32)
    return {name: float(errors(rec[ids], kernels[ids])["rmse"].mean())
            for name, ids in (("train_kernels", splits.train_kernels), ("val_kernels", splits.val_kernels),
                              ("ood_kernels", splits.ood_kernels))}


def measure(profile, layout: RunLayout) -> dict:
    """The kept and the last epoch of one run's step 1, each measured by :func:`ceilings`."""
    ds, splits = load_data(profile, layout)
    kept, last = load_blob(layout.model("kernel_vae"), "kernel_vae"), load_blob(layout.checkpoint("kernel_vae"),
                                                                                "kernel_vae")
    out = {"kept_epoch": int(kept["summary"]["best_epoch"]), "last_epoch": int(last["epoch"]),
           "step2_best_val_rmse": float(load_blob(layout.model("alignment"), "alignment")["summary"]["best_val_rmse"])}
    for name, blob in (("kept", kept), ("last", last)):
        vae, _ = build_kernel_vae(profile.model)
        vae.load_state_dict(blob["state_dict"])
        out[name] = ceilings(vae.eval(), ds, splits)
    return out


def decide(rows: list[dict]) -> dict:
    """:data:`DECISION` applied to the per-seed measurements."""
    gain_train = float(np.mean([r["kept"]["train_kernels"] - r["last"]["train_kernels"] for r in rows]))
    loss_val = float(np.mean([r["last"]["val_kernels"] - r["kept"]["val_kernels"] for r in rows]))
    scale = float(np.mean([r["step2_best_val_rmse"] for r in rows])) / 10
    change = gain_train > scale and loss_val <= 0
    return {"train_kernels_last_minus_kept_mean": -gain_train, "val_kernels_last_minus_kept_mean": loss_val,
            "tenth_of_step2_val_rmse": scale, "change_the_rule": change}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--run-dir", type=Path, default=None, help="a `qpi seeds` run directory (default runs/<profile>-seeds)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=None, help="default results/<profile>/step1_selection.json")
    args = ap.parse_args(argv)
    root = args.run_dir or Path("runs") / f"{args.profile}-seeds"
    rows = []
    for seed in args.seeds:
        prof = get_profile(args.profile, seed_overrides(seed))
        layout = RunLayout(root / f"seed-{seed}", prof.name)
        try:
            row = {"seed": seed, **measure(prof, layout)}
        except (FileNotFoundError, QpiError) as exc:  # a run without its step 1, its checkpoint or its data
            print(f"step1_selection: error: seed {seed}: {exc}", file=sys.stderr)
            return 2
        rows.append(row)
        print(f"seed {seed}: kept epoch {row['kept_epoch']} of {row['last_epoch']}; training kernels "
              f"{row['kept']['train_kernels']:.4f} kept vs {row['last']['train_kernels']:.4f} last; validation "
              f"{row['kept']['val_kernels']:.4f} vs {row['last']['val_kernels']:.4f}; OOD "
              f"{row['kept']['ood_kernels']:.4f} vs {row['last']['ood_kernels']:.4f}; step 2's best validation "
              f"{row['step2_best_val_rmse']:.4f}", flush=True)
    verdict = decide(rows)
    out = args.out or project_root() / "results" / args.profile / "step1_selection.json"
    write_text(out, json.dumps(provenance(get_profile(args.profile), None, {
        "command": "python -m qpi_lab.step1_selection " + " ".join(argv if argv is not None else sys.argv[1:]),
        "decision_rule": DECISION, "seeds": rows, "verdict": verdict}), indent=2) + "\n")
    print(f"{'change' if verdict['change_the_rule'] else 'keep'} the rule ({DECISION}); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
