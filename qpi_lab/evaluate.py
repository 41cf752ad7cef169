"""The ``qpi evaluate`` table: :func:`qpi_utils.evaluate.score` written with provenance.

:func:`evaluate` loads a run, scores it (:mod:`qpi_utils.evaluate`) and writes the table, the
per-sample errors, the two-step diagnostics and ``provenance.json``; with ``reuse`` it returns the
rows already written for this very evaluation (same code, profile, data, networks, test sets).
"""

from __future__ import annotations

import json
from pathlib import Path

from qpi_utils.checkpoints import load_blob
from qpi_utils.config import Profile
from qpi_utils.data import QPIDataset, load_dataset
from qpi_utils.evaluate import RESULTS_FILES, score, write_scores
from qpi_utils.files import check_results, read_csv, write_text
from qpi_utils.methods import METHODS, TrainedModels, load_models
from qpi_utils.runs import STEPS, RunLayout, as_layout

from .provenance import provenance, same_code

__all__ = ["evaluate", "previous_rows", "write_provenance"]


def _training_summaries(layout: RunLayout) -> dict:
    return {step: load_blob(layout.model(step), step)["summary"] for step in STEPS if layout.model(step).is_file()}


def previous_rows(profile: Profile, run: RunLayout | str | Path, methods: tuple[str, ...] = tuple(METHODS),
                  results_dir: str | Path | None = None, noise_snr_db: float | None = None,
                  test_data: QPIDataset | None = None) -> list[dict] | None:
    """The rows of ``table.csv`` in ``results_dir`` (default ``<run>/results``) if :func:`evaluate`
    wrote them for exactly this evaluation: the same code (:func:`qpi_lab.provenance.same_code`: a
    clean commit, or a later one that changed no code), profile, dataset, trained networks (their
    training summaries), methods and test sets (noise, realistic copy); otherwise None. ``qpi seeds``
    and ``qpi ablation``, run again after an interruption, read back what they scored before."""
    layout = as_layout(run, profile)
    folder = Path(results_dir) if results_dir else layout.results
    paths = [folder / name for name in ("provenance.json", "table.csv", "per_sample.csv")]
    if not all(p.is_file() for p in paths) or not layout.data.joinpath("meta.json").is_file():
        return None
    try:
        prov = json.loads(paths[0].read_text())
    except (OSError, ValueError):
        return None
    tests = "the run's dataset" if test_data is None else json.loads(json.dumps(
        {"simulation": test_data.meta.get("simulation"), "content_hash": test_data.meta.get("content_hash")}, default=str))
    same = {
        "code": same_code(prov.get("git_commit")),
        "profile": prov.get("profile") == json.loads(json.dumps(profile.to_dict(), default=str)),
        "dataset": (prov.get("dataset") or {}).get("content_hash") == load_dataset(layout.data).meta.get("content_hash"),
        "networks": prov.get("training") == json.loads(json.dumps(_training_summaries(layout), default=str)),
        "methods": prov.get("methods") == [m for m in METHODS if m in methods],
        "test sets": prov.get("test_noise_snr_db") == noise_snr_db and prov.get("test_data") == tests,
    }
    if not all(same.values()):
        return None
    rows = read_csv(paths[1])
    for r in rows:
        for key, value in r.items():
            if key == "n":
                r[key] = int(value)
            elif key == "pretrained":
                r[key] = {"True": True, "False": False}.get(value)
            elif key not in ("setting", "method"):
                r[key] = float(value)
    return rows


def evaluate(profile: Profile, run: RunLayout | str | Path, results_dir: str | Path | None = None,
             progress: bool = True, models: TrainedModels | None = None, methods: tuple[str, ...] = tuple(METHODS),
             noise_snr_db: float | None = None, test_data: QPIDataset | None = None,
             reuse: bool = False, force: bool = False) -> list[dict]:
    """Evaluate the trained ``methods`` on the ID and OOD test sets and write, under
    ``results_dir`` (default ``<run>/results``): ``table.csv``, ``table.md``, ``per_sample.csv``,
    ``diagnostics.json`` (when two-step is among them) and ``provenance.json``. With
    ``noise_snr_db`` every test observation gets white noise at that SNR first. ``test_data``: a
    dataset with the run's kernels and defect counts whose observations (Y, M, positions) replace
    the run's at the same test pairs, e.g. its realistic copy
    (:func:`qpi_utils.checkpoints.load_realistic_data`). ``reuse``: return the rows already in
    ``results_dir`` when :func:`previous_rows` finds they are this very evaluation. Files in
    ``results_dir`` the kit did not write are refused, unless ``force``. Returns the rows."""
    layout = as_layout(run, profile)
    if reuse:
        rows = previous_rows(profile, layout, methods if models is None else models.only, results_dir,
                             noise_snr_db, test_data)
        if rows is not None:
            return rows
    results_dir = Path(results_dir) if results_dir else layout.results
    check_results(results_dir, RESULTS_FILES, force=force)  # refuse before the minutes of scoring, not after
    m = models or load_models(profile, layout, methods, progress=progress)
    scores = score(m, progress=progress, noise_snr_db=noise_snr_db, test_data=test_data)
    write_scores(scores, m, results_dir, force=force)
    write_provenance(profile, layout, results_dir, m.ds, scores.record)
    return scores.rows


def write_provenance(profile: Profile, run: RunLayout | str | Path, results_dir: str | Path | None = None,
                     ds: QPIDataset | None = None, record: dict | None = None) -> Path:
    """``provenance.json`` beside a table the run's ``results/`` holds (default ``<run>/results``):
    :func:`~qpi_lab.provenance.provenance` with the networks' training summaries and the scoring
    record (``record``, else the ``scores.json`` that :func:`qpi_utils.evaluate.write_scores` wrote)."""
    layout = as_layout(run, profile)
    results_dir = Path(results_dir) if results_dir else layout.results
    record = record if record is not None else json.loads((results_dir / "scores.json").read_text())
    ds = ds if ds is not None else load_dataset(layout.data)
    prov = provenance(profile, ds, {"training": _training_summaries(layout), **record})
    return write_text(results_dir / "provenance.json", json.dumps(prov, indent=2, default=str))
