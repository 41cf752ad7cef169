"""No test observation or OOD kernel reaches any training or selection step.

The dataset a run loads is poisoned: every ID-test and OOD-test observation, its defect positions
and every OOD kernel image is NaN. If any training step, its validation (epoch selection) or the least-squares lambda
choice read one of them, its loss or score would be NaN and training stops with an error. The
test sets are then read only by evaluation, which this test does not run.
"""

import numpy as np
import pytest

import qpi_utils.checkpoints as checkpoints
from qpi_utils.config import get_profile
from qpi_utils.data import load_dataset
from qpi_utils.methods import load_models
from qpi_utils.splits import splits_for
from qpi_utils.train import train_alignment, train_kernel_vae, train_one_step, train_one_step_paper


@pytest.fixture
def poisoned(monkeypatch):
    def load_poisoned(path, *args, **kwargs):
        ds = load_dataset(path, mmap=False)
        prof = get_profile("smoke")
        sp = splits_for(prof.simulation, ds.symmetry, ds.n_observations)
        obs, kernels = np.array(ds.arrays["observations"]), np.array(ds.arrays["kernels"])
        positions = np.array(ds.arrays["positions"])
        for pairs in (sp.id_test, sp.ood_test):
            obs[pairs[:, 0], pairs[:, 1]] = np.nan
            positions[pairs[:, 0], pairs[:, 1]] = np.nan
        kernels[sp.ood_kernels] = np.nan
        ds.arrays["observations"], ds.arrays["kernels"], ds.arrays["positions"] = obs, kernels, positions
        return ds

    monkeypatch.setattr(checkpoints, "load_dataset", load_poisoned)


def test_training_and_every_choice_never_read_a_test_set(run_dir, poisoned):
    prof = get_profile("smoke", {"physics.ls_calibration_observations": 4})
    summaries = [train_kernel_vae(prof, run_dir, progress=False), train_alignment(prof, run_dir, progress=False),
                 train_one_step(prof, run_dir, progress=False), train_one_step_paper(prof, run_dir, progress=False)]
    for s in summaries:
        assert np.isfinite(s["best_val_rmse"]) and 0 <= s["best_epoch"] <= s["epochs_run"]  # 0: the start
    models = load_models(prof, run_dir)
    assert np.isfinite(list(models.ls_scores.values())).all() and models.ls_lambda in prof.physics.ls_lambda_grid
    assert np.isfinite(list(models.ls_subpixel_scores.values())).all()
    assert models.ls_subpixel_lambda in prof.physics.ls_lambda_grid


def test_the_poison_would_be_noticed(run_dir, poisoned):
    """The check above can fail: a model that trains on test data meets the NaNs."""
    ds, splits = checkpoints.load_data(get_profile("smoke"), run_dir)
    assert np.isnan(ds.observations[splits.id_test[0][0], splits.id_test[0][1]]).all()
    assert np.isnan(ds.kernels[splits.ood_kernels]).all()
    assert np.isfinite(ds.observations[splits.train[:, 0], splits.train[:, 1]]).all()
