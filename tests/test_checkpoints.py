"""The realistic copy of a run's dataset, and what a model's fingerprint holds."""

import dataclasses

import numpy as np
import pytest

from qpi_utils.checkpoints import fingerprint, load_realistic_data, realistic_simulation
from qpi_utils.config import get_profile
from qpi_utils.data import DatasetError, load_dataset
from qpi_utils.runs import RunLayout


def _realistic(profile, **kw):
    return dataclasses.replace(profile.alignment, realistic_data=True, **kw)


def test_realistic_copy_keeps_kernels_and_defects_and_adds_what_real_maps_have(run_dir, smoke_profile, tiny_dataset):
    tcfg = _realistic(smoke_profile, realistic_position_error=0.5, realistic_line_noise=0.2, realistic_outside_margin=8.0)
    copy = load_realistic_data(smoke_profile, run_dir, tcfg, tiny_dataset, progress=False)
    base = tiny_dataset
    # the splits index both alike: same kernels, same defect counts
    assert np.array_equal(np.asarray(copy.kernels), np.asarray(base.kernels))
    assert np.array_equal(np.asarray(copy.n_scatterers), np.asarray(base.n_scatterers))
    # the labelled positions are the true ones plus errors of the asked std
    err = (np.asarray(copy.positions, np.float64) - np.asarray(base.positions, np.float64))
    err = err[np.isfinite(err)]
    assert 0.4 < err.std() < 0.6 and abs(err.mean()) < 0.1
    # unlabelled defects outside the view, and observations that differ from the clean ones
    outside = np.asarray(copy.arrays["outside_positions"])
    assert np.isfinite(outside).any() and np.asarray(base.arrays["outside_positions"]).shape[2] == 0
    assert np.abs(np.asarray(copy.observations) - np.asarray(base.observations)).mean() > 0.02
    # scan-line offsets: the row means of Y - clean vary more than its column means
    diff = np.asarray(copy.observations, np.float64) - np.asarray(base.observations, np.float64)
    assert diff.mean(-1).std() > diff.mean(-2).std()


def test_realistic_copy_is_made_once_and_remade_when_its_settings_change(run_dir, smoke_profile, tiny_dataset):
    layout = RunLayout(run_dir, "smoke")
    tcfg = _realistic(smoke_profile)
    load_realistic_data(smoke_profile, layout, tcfg, tiny_dataset, progress=False)
    stamp = (layout.data_realistic / "meta.json").stat().st_mtime_ns
    load_realistic_data(smoke_profile, layout, tcfg, tiny_dataset, progress=False)
    assert (layout.data_realistic / "meta.json").stat().st_mtime_ns == stamp  # reused
    other = load_realistic_data(smoke_profile, layout, _realistic(smoke_profile, realistic_position_error=1.0),
                                tiny_dataset, progress=False)
    assert other.meta["simulation"]["position_error"] == 1.0
    assert load_dataset(layout.data_realistic).meta["derived_from"] == tiny_dataset.meta["content_hash"]


def test_realistic_copy_of_a_dataset_from_other_settings_is_refused(run_dir, smoke_profile, tiny_dataset):
    other = get_profile("smoke", {"simulation.seed": 5})  # its copy would hold other kernels
    with pytest.raises(DatasetError, match="other kernels or defect counts"):
        load_realistic_data(other, run_dir, _realistic(other), tiny_dataset, progress=False)


def test_realistic_simulation_changes_only_the_corruption(smoke_profile):
    cfg = realistic_simulation(smoke_profile.simulation, _realistic(smoke_profile))
    changed = {f.name for f in dataclasses.fields(cfg)
               if getattr(cfg, f.name) != getattr(smoke_profile.simulation, f.name)}
    assert changed == {"line_noise", "outside_margin", "position_error"}


def test_fingerprint_holds_the_realistic_settings_only_when_they_act(smoke_profile, tiny_dataset):
    clean = fingerprint(smoke_profile, "alignment", tiny_dataset)
    assert not any(k.startswith("realistic_") for k in clean["train"])  # models made before the option match
    moved = dataclasses.replace(smoke_profile, alignment=dataclasses.replace(smoke_profile.alignment,
                                                                             realistic_position_error=2.0))
    assert fingerprint(moved, "alignment", tiny_dataset) == clean  # a setting that does not act
    on = dataclasses.replace(smoke_profile, alignment=_realistic(smoke_profile))
    fp = fingerprint(on, "alignment", tiny_dataset)
    assert fp != clean and fp["train"]["realistic_position_error"] == smoke_profile.alignment.realistic_position_error


def _damaged_copies(trained_run, tmp_path):
    """A copy of the trained smoke run, and a function that rewrites one of its model files."""
    import shutil

    import torch

    src, _ = trained_run
    run = tmp_path / "run"
    shutil.copytree(src, run, symlinks=True)

    def damage(step, edit):
        path = run / "models" / f"{step}.pt"
        blob = torch.load(path, weights_only=True)
        edit(blob)
        torch.save(blob, path)
        return path

    return run, damage


@pytest.mark.parametrize("edit, message", [
    (lambda b: b["state_dict"].__setitem__("decoder.conv_out.bias", b["state_dict"]["decoder.conv_out.bias"] * float("nan")),
     "weight decoder.conv_out.bias holds NaN or inf"),
    (lambda b: b["state_dict"].pop("encoder.conv_in.weight"), "do not fit this network .1 missing"),
    (lambda b: b["state_dict"].__setitem__("decoder.conv_out.bias", b["state_dict"]["decoder.conv_out.bias"].repeat(2)),
     r"weight decoder.conv_out.bias has shape \(2,\), this network needs \(1,\)"),
    (lambda b: b.pop("summary"), "without its training summary"),
])
def test_a_damaged_model_is_refused_on_load_and_by_qpi_check(trained_run, tmp_path, smoke_profile, capsys, edit, message):
    """One rule for every stored network (checkpoints.check_weights): a NaN weight, a missing or
    extra key, a wrong shape or a checkpoint copied over a model file is a CheckpointError naming
    the file, when evaluation loads it and when `qpi check` looks at it; never a torch traceback."""
    from qpi_lab.cli import main
    from qpi_utils.checkpoints import CheckpointError, load_one_step
    from qpi_utils.data import load_dataset

    run, damage = _damaged_copies(trained_run, tmp_path)
    path = damage("one_step", edit)
    with pytest.raises(CheckpointError, match=message) as err:
        load_one_step(smoke_profile, run, load_dataset(run / "data"))
    assert str(path) in str(err.value)
    assert main(["check", "--profile", "smoke", "--run-dir", str(run)]) == 2
    out = capsys.readouterr()
    assert "one_step.pt" in out.err and "Traceback" not in out.err


# --- settings that disagree with the run's data: one rule (check_simulation_settings) -------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from qpi_utils.checkpoints import SPLIT_KEYS, SettingsMismatchError, check_simulation_settings, load_data  # noqa: E402

_CHANGES = {"n_observations": 4, "max_scatterers": 12, "snr_db": 10.0, "line_noise": 0.1, "outside_margin": 8.0,
            "frequency_range": (0.07, 0.15), "decay_range": (5.0, 9.0), "supersample": 2, "position_error": 0.5,
            "seed": 7, "min_scatterers": 2, "n_kernels": 12}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(_CHANGES)))
def test_a_simulation_setting_the_data_were_not_made_with_is_refused_naming_both_values(run_dir, smoke_profile, key):
    profile = get_profile("smoke", {f"simulation.{key}": _CHANGES[key]})
    with pytest.raises(SettingsMismatchError) as info:
        load_data(profile, run_dir)
    made = load_dataset(run_dir / "data").meta["simulation"][key]
    wanted = _CHANGES[key]
    message = str(info.value)
    assert f"simulation.{key}: the data have {made!r}, the profile asks for" in message
    assert repr(list(wanted) if isinstance(wanted, tuple) else wanted) in message


@pytest.mark.parametrize("key, value", [("split_seed", 3), ("val_fraction", 0.15), ("ood_fraction", 0.3)])
def test_split_settings_apply_from_the_profile_and_pass(run_dir, key, value):
    assert key in SPLIT_KEYS
    ds, splits = load_data(get_profile("smoke", {f"simulation.{key}": value}), run_dir)
    assert ds.n_kernels == 10


def test_data_that_record_no_simulation_pass(tiny_dataset, smoke_profile):
    ds = dataclasses.replace(tiny_dataset, meta={k: v for k, v in tiny_dataset.meta.items() if k != "simulation"})
    check_simulation_settings(get_profile("smoke", {"simulation.snr_db": 5.0}), ds, "real maps")
