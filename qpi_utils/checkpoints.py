"""Loading what a run made: the dataset with its splits and the trained networks, each checked
against the fingerprint of what made it. See ``docs/library.md``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import TRAIN_SECTIONS, Profile, SimulationConfig, TrainConfig, resolve_init
from .data import DatasetError, QPIDataset, load_dataset, save_dataset, simulate_dataset
from .errors import QpiError
from .files import DiskError, atomic_path
from .models import ModelConfigError, ModelInfo, ObservationEncoder, autoencoder_config
from .prior import check_extra_kernels
from .runs import RunLayout, as_layout
from .simulate import PARAM_NAMES
from .splits import Splits, splits_for

__all__ = ["CheckpointError", "SettingsMismatchError", "check_simulation_settings", "fingerprint", "digest", "save_blob", "load_blob", "check_fingerprint", "load_data",
           "load_kernel_vae", "load_observation_encoder", "load_one_step", "step_fingerprint", "realistic_simulation",
           "load_realistic_data", "free_train_keys", "check_weights", "LOADERS"]


class CheckpointError(QpiError, ValueError):
    """A model or checkpoint file cannot be read; the message names it and what to do."""


def free_train_keys(train: dict) -> tuple[str, ...]:
    """Training settings a checkpoint may be resumed or extended with: the checkpoint interval and
    the epoch cap (not under the one-cycle schedule, whose shape depends on the epoch count)."""
    return ("checkpoint_every",) if train.get("schedule") == "onecycle" else ("epochs", "checkpoint_every")


def fingerprint(profile: Profile, step: str, ds: QPIDataset) -> dict:
    """What a checkpoint must match to be resumed or used: profile, model, step config (all but
    the epoch count, so a run can be extended by raising it, and the checkpoint interval), data."""
    train = asdict(getattr(profile, TRAIN_SECTIONS[step]))
    train["init"] = resolve_init(profile, step)  # what "auto" means for this step
    for free in free_train_keys(train):  # may change between calls: extend a run, save less often
        train.pop(free)
    if not train["realistic_data"]:  # clean data, as every model before this option saw: its
        # settings do not act, so they do not change the model's identity
        for key in [k for k in train if k.startswith("realistic_")]:
            train.pop(key)
    return {
        "profile": profile.name,
        "model": asdict(profile.model),
        "train": train,
        "dataset_hash": ds.meta.get("content_hash"),
        "splits": {k: getattr(profile.simulation, k) for k in
                   ("split_seed", "ood_fraction", "id_test_fraction", "val_kernel_fraction", "val_fraction")
                   # a learning curve's smaller training set (absent at the full size: older models stay valid)
                   + tuple(k for k in ("train_kernel_fraction", "train_observation_fraction")
                           if getattr(profile.simulation, k) != 1.0)
                   + (("extra_train_observations",) if profile.simulation.extra_train_observations else ())},
    }


def digest(obj) -> str:
    """Short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def step_fingerprint(profile: Profile, step: str, ds: QPIDataset) -> dict:
    """The fingerprint of ``step``; step 2's (and a one-step baseline started from the step-1
    VAE) also pins the step-1 VAE it depends on."""
    fp = fingerprint(profile, step, ds)
    if step == "alignment" or resolve_init(profile, step) == "kernel_vae":
        fp["kernel_vae"] = digest(fingerprint(profile, "kernel_vae", ds))
    return fp


def save_blob(obj: dict, path: Path) -> Path:
    """``torch.save`` atomically (temporary file, then rename); a failed write (a full disk) is a
    :class:`~qpi_utils.files.DiskError` naming the file, and leaves nothing behind."""
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch reports a short write as "PytorchStreamWriter failed writing file ..."
            raise DiskError(f"cannot write {path}: {str(exc).splitlines()[0][:160]}; is the disk full?") from None
    return Path(path)


def check_fingerprint(found: dict, expected: dict, path: Path) -> None:
    if found == expected:
        return
    diffs = [k for k in sorted(set(found) | set(expected)) if found.get(k) != expected.get(k)]
    hint = ""
    if "profile" in diffs:
        hint = f" (made with profile {found.get('profile')!r}, this run uses {expected.get('profile')!r})"
    raise ModelConfigError(f"{path} was made with a different configuration{hint}: {', '.join(diffs)} differ. "
                           "Use another --run-dir, or --restart to train afresh.")


def load_blob(path: Path, expect_step: str | None = None, expected_fingerprint: dict | None = None) -> dict:
    """A saved model or checkpoint file; checks its step and (optionally) its fingerprint."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many kinds for a truncated or foreign file
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot be read ({detail}); the file is damaged or incomplete: "
                              "delete it, or rerun with --restart to train afresh") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise CheckpointError(f"{path}: not a qpi-kit model or checkpoint (no weights in it): delete it, "
                              "or rerun with --restart to train afresh")
    if expect_step and blob.get("step") != expect_step:
        raise ModelConfigError(f"{path} holds step {blob.get('step')!r}, expected {expect_step!r}")
    if expected_fingerprint is not None:
        check_fingerprint(blob.get("fingerprint", {}), expected_fingerprint, path)
    return blob


def check_weights(state: dict, model: torch.nn.Module, path: Path) -> None:
    """The one check every stored network passes before use: its weights fit ``model`` (the same
    names, the same shapes) and are all finite. A :class:`CheckpointError` names the file and the
    first problem; nothing is loaded when one is found."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{path}: the weights do not fit this network ({len(missing)} missing, e.g. "
                              f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}): another "
                              "architecture or a damaged file; rerun with --restart to train afresh")
    for name, value in state.items():
        if not torch.is_tensor(value) or tuple(value.shape) != tuple(expected[name].shape):
            shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            raise CheckpointError(f"{path}: weight {name} has shape {shape}, this network needs "
                                  f"{tuple(expected[name].shape)}; rerun with --restart to train afresh")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: weight {name} holds NaN or inf: the file is damaged or its training "
                                  "diverged; rerun with --restart to train afresh")


class SettingsMismatchError(QpiError, ValueError):
    """A run holds data made with other simulation settings than the profile asks for."""


# simulation settings that only choose the splits (applied from the profile when the data are
# read), not what the simulator made: they may differ from the dataset's record
SPLIT_KEYS = ("ood_fraction", "id_test_fraction", "val_kernel_fraction", "val_fraction", "split_seed",
              "train_kernel_fraction", "train_observation_fraction", "extra_train_observations")


def check_simulation_settings(profile: Profile, ds: QPIDataset, path: Path | str) -> None:
    """The one rule for settings that would silently not apply: a run's dataset must have been
    simulated with the profile's simulation settings (those it records; a dataset that records
    none, such as one read from files, is not simulated and passes). Raises
    :class:`SettingsMismatchError` naming every differing key with both values."""
    made = ds.meta.get("simulation")
    if not isinstance(made, dict):
        return
    want = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(profile.simulation).items()}
    differ = [f"simulation.{k}: the data have {made[k]!r}, the profile asks for {want[k]!r}"
              for k in sorted(want) if k in made and k not in SPLIT_KEYS and made[k] != want[k]]
    if differ:
        raise SettingsMismatchError(
            f"{path} was simulated with other settings than profile '{profile.name}' asks for ("
            + "; ".join(differ) + "): training or evaluating would use the old data. Simulate the run's "
            "data again (`qpi simulate --force` with the same --set overrides), use another --run-dir, "
            "or drop the overrides")


def load_data(profile: Profile, run: RunLayout | str | Path) -> tuple[QPIDataset, Splits]:
    """The run's dataset (memory-mapped) and the profile's splits, checked for leakage and for
    settings the data were not made with (:func:`check_simulation_settings`)."""
    layout = as_layout(run, profile)
    layout.require("data")
    ds = load_dataset(layout.data)
    check_simulation_settings(profile, ds, layout.display(layout.data))
    splits = splits_for(profile.simulation, ds.symmetry, ds.n_observations)
    check_extra_kernels(profile.simulation, {k: ds.arrays[f"param_{k}"] for k in PARAM_NAMES},
                        np.concatenate([splits.val_kernels, splits.ood_kernels]), layout.display(layout.data))
    return ds, splits


def realistic_simulation(cfg: SimulationConfig, tcfg: TrainConfig) -> SimulationConfig:
    """The simulation settings of the realistic copy of the dataset ``cfg`` makes: the same seed,
    hence the same kernels, defect counts and positions (the simulator draws them before any
    corruption), rendered with ``tcfg``'s scan-line offsets, outside defects and position errors."""
    return dataclasses.replace(cfg, line_noise=tcfg.realistic_line_noise, outside_margin=tcfg.realistic_outside_margin,
                               position_error=tcfg.realistic_position_error)


def load_realistic_data(profile: Profile, run: RunLayout | str | Path, tcfg: TrainConfig, ds: QPIDataset,
                        progress: bool = True) -> QPIDataset:
    """The realistic copy of the run's dataset ``ds`` (:func:`realistic_simulation`), made once
    under ``<run>/data-realistic`` and reused while its settings and its base dataset are the same.
    Same kernels and defect counts as ``ds`` (checked), so the profile's splits index both alike."""
    layout = as_layout(run, profile)
    cfg = realistic_simulation(profile.simulation, tcfg)
    want = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    base_hash = ds.meta.get("content_hash")
    path = layout.data_realistic
    if (path / "meta.json").is_file():
        copy = load_dataset(path)
        if copy.meta.get("simulation") == want and copy.meta.get("derived_from") == base_hash:
            return copy
    copy = simulate_dataset(cfg, profile=profile.name, progress=progress)
    if not (np.array_equal(np.asarray(copy.kernels), np.asarray(ds.kernels))
            and np.array_equal(np.asarray(copy.n_scatterers), np.asarray(ds.n_scatterers))):
        raise DatasetError(f"the realistic copy of {layout.display(layout.data)} has other kernels or defect counts: "
                           "the run's dataset was not made from this profile's simulation settings")
    copy.meta["derived_from"] = base_hash
    save_dataset(copy, path, force=True)
    return load_dataset(path)


def _load_into(profile: Profile, run, step: str, ds: QPIDataset, model: torch.nn.Module):
    """The trained weights of ``step`` loaded into ``model`` (eval mode, frozen), and its ModelInfo;
    the file is checked first (:func:`load_blob`, :func:`check_weights`, its summary)."""
    path = as_layout(run, profile).require(step)
    blob = load_blob(path, step, step_fingerprint(profile, step, ds))
    if not isinstance(blob.get("summary"), dict) or "model_info" not in blob["summary"]:
        raise CheckpointError(f"{path}: a checkpoint or a file without its training summary, not a finished model: "
                              "finish the training (rerun the same command), or --restart")
    check_weights(blob["state_dict"], model, path)
    model.load_state_dict(blob["state_dict"])
    return model.eval().requires_grad_(False), ModelInfo(**blob["summary"]["model_info"])


def _autoencoder(profile: Profile, in_channels: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(**autoencoder_config(profile.model, in_channels, 1))


def load_kernel_vae(profile: Profile, run: RunLayout | str | Path, ds: QPIDataset):
    """The trained step-1 VAE (eval mode, frozen) and its ModelInfo."""
    return _load_into(profile, run, "kernel_vae", ds, _autoencoder(profile, 1))


def load_observation_encoder(profile: Profile, run: RunLayout | str | Path, ds: QPIDataset):
    """The trained step-2 observation encoder (eval mode, frozen) and its ModelInfo."""
    return _load_into(profile, run, "alignment", ds, ObservationEncoder(profile.model))


def load_one_step(profile: Profile, run: RunLayout | str | Path, ds: QPIDataset, step: str = "one_step"):
    """A trained one-step baseline (eval mode, frozen) and its ModelInfo: the kit's (``one_step``)
    or the paper's (``one_step_paper``)."""
    return _load_into(profile, run, step, ds, _autoencoder(profile, 2))


# trained step -> (loader, an untrained network of its architecture for checking checkpoints)
LOADERS = {"kernel_vae": (load_kernel_vae, lambda p: _autoencoder(p, 1)),
           "alignment": (load_observation_encoder, lambda p: ObservationEncoder(p.model)),
           "one_step": (load_one_step, lambda p: _autoencoder(p, 2)),
           "one_step_paper": (lambda p, l, d: load_one_step(p, l, d, "one_step_paper"), lambda p: _autoencoder(p, 2))}
