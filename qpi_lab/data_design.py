"""How many training-only kernels a profile simulates, chosen on validation (issue 29).

The learning curves (``results/quick/learning_curves.csv``) say out-of-domain accuracy grows with
the number of training kernels, and the simulator makes kernels for free. The dataset keeps the
paper's 100 kernels and splits (so every test set stays the same), and adds
``simulation.extra_train_kernels`` training-only kernels, drawn away from every validation and OOD
kernel (:func:`qpi_utils.prior.extra_kernel_params`), with ``simulation.extra_train_observations``
training observations each. The networks that read observations (step 2, both one-step baselines)
train on them; step 1 keeps the paper's training kernels.

The rule (:data:`RULE`): for each candidate of :data:`CANDIDATES`, two-step is trained on the first
seed's data with the profile's every other setting (step 1, then step 2 with its schedule); the
candidate with the lowest best validation RMSE of step 2 wins (the kit's selection metric: equal
numbers of validation observations of training kernels and of validation kernels), ties within
:data:`TIE` going to the one with fewer training observations (the cheaper for every network).
Every candidate's error on the two halves of validation (``val_id``, ``val_ood``) is kept beside it.
The choice is made with two-step only: the data are the problem's, not a method's, and every
method then trains on them. ``qpi data-design --profile P`` writes ``results/<P>/data_design.json``.
A profile adopts the choice only together with every result made again with it: the extra kernels
change what every network after step 1 trains on.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from qpi_utils.checkpoints import load_data, load_kernel_vae, load_observation_encoder
from qpi_utils.config import get_profile
from qpi_utils.data import save_dataset, simulate_dataset
from qpi_utils.methods import predict_dataset, predict_two_step
from qpi_utils.metrics import errors
from qpi_utils.runs import RunLayout
from qpi_utils.train import TRAINERS

# (training-only kernels, training observations of each): the paper's data alone; about as many
# observations again from 280 more kernels; about twice as many again, from 560 kernels with 18
# each or from 1,120 with 9 each (the same count: which matters, kernels or observations?)
CANDIDATES = ((0, 0), (280, 18), (560, 18), (1120, 9))
TIE = 0.02
RULE = ("per candidate (extra_train_kernels, extra_train_observations), two-step trained on the first seed's data with "
        "the profile's other settings; the lowest best validation RMSE [0,1] of step 2 wins, ties within "
        "%g %% go to the candidate with fewer training observations" % (TIE * 100))


def candidate_overrides(extra: int, observations: int) -> dict:
    return {"simulation.extra_train_kernels": extra, "simulation.extra_train_observations": observations}


def _choose(rows: list[dict]) -> dict:
    best = min(r["best_val_rmse"] for r in rows)
    return min((r for r in rows if r["best_val_rmse"] <= best * (1 + TIE)), key=lambda r: r["train_observations"])


def validation_halves(profile, layout: RunLayout) -> dict:
    """Two-step's mean per-sample RMSE on [0, 1] over every validation observation of training
    kernels (``val_id``) and of validation kernels (``val_ood``)."""
    ds, splits = load_data(profile, layout)
    vae, _ = load_kernel_vae(profile, layout, ds)
    encoder, _ = load_observation_encoder(profile, layout, ds)
    out = {}
    with torch.no_grad():
        for name in ("val_id", "val_ood"):
            pairs = splits.pairs(name)
            pred = predict_dataset(lambda x: predict_two_step(encoder, vae, x), ds, pairs)
            out[name] = float(errors(pred, np.asarray(ds.kernels)[pairs[:, 0]])["rmse"].mean())
    return out


def choose_data_design(profile_name: str, root: str | Path, candidates=None, overrides: dict | None = None,
                       progress: bool = True) -> dict:
    """Run the rule over ``candidates`` (default :data:`CANDIDATES`; each trained in
    ``<root>/extra-<kernels>x<observations>``, resumed from its checkpoints); returns the rule, one
    row per candidate and the chosen one."""
    rows = []
    for extra, observations in candidates or CANDIDATES:
        prof = get_profile(profile_name, {**(overrides or {}), **candidate_overrides(extra, observations)})
        layout = RunLayout(Path(root) / f"extra-{extra}x{observations}", prof.name, "cli")
        t0 = time.perf_counter()
        if not (layout.data / "meta.json").is_file():
            save_dataset(simulate_dataset(prof.simulation, profile=prof.name, progress=progress), layout.data)
        seconds = {"simulate": round(time.perf_counter() - t0, 1)}
        summaries = {}
        for step in ("kernel_vae", "alignment"):
            t0 = time.perf_counter()
            summaries[step] = TRAINERS[step](prof, layout, progress=progress)
            seconds[step] = round(time.perf_counter() - t0, 1)
        _, splits = load_data(prof, layout)
        row = {"extra_train_kernels": extra, "extra_train_observations": observations,
               "train_kernels": len(splits.train_kernels), "train_observations": len(splits.train),
               "best_val_rmse": float(summaries["alignment"]["best_val_rmse"]),
               "best_epoch": summaries["alignment"]["best_epoch"],
               "kernel_vae_best_val_rmse": float(summaries["kernel_vae"]["best_val_rmse"]),
               **validation_halves(prof, layout), "seconds": seconds}
        print(f"data design {extra} x {observations}: {row['train_observations']} training observations, best "
              f"validation RMSE {row['best_val_rmse']:.4f} (val_id {row['val_id']:.4f}, val_ood {row['val_ood']:.4f})",
              flush=True)
        rows.append(row)
    chosen = _choose(rows)
    return {"rule": RULE, "candidates": rows,
            "chosen": {"extra_train_kernels": chosen["extra_train_kernels"],
                       "extra_train_observations": chosen["extra_train_observations"]}}
