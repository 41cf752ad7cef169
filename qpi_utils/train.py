"""Training: step 1 (kernel VAE), step 2 (latent alignment) and the one-step baselines, all through
:func:`fit` (checkpoints, exact resume, selection on validation); :data:`TRAINERS` is the one
table of them. See ``docs/library.md``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoints import (check_fingerprint, check_weights, load_blob, load_data,
                          load_kernel_vae, load_realistic_data, save_blob, step_fingerprint)
from .config import TRAIN_SECTIONS, Profile, TrainConfig, resolve_init
from .data import KernelDataset, ObservationDataset, stack_pairs
from .errors import QpiError
from .files import write_csv
from .losses import alignment_loss, kl_loss, reconstruction_loss, symmetric_loss
from .models import (KIT_PRIOR, ModelConfigError, ModelInfo, build_kernel_vae,
                     build_observation_encoder, build_one_step, kernel_latents, latent_shape, load_kit_prior,
                     to_model_scale)
from .prior import check_held_out
from .runs import STEPS, RunLayout, as_layout
from .simulate import KERNEL_ORIGIN

__all__ = ["STEPS", "TrainingError", "SELECTION_RULE", "Validation", "kernel_vae_loss", "alignment_loss_fn",
           "one_step_loss", "augment_noise", "reconstruct", "cpu_has_native_bf16", "train_kernel_vae",
           "train_alignment", "train_one_step", "train_one_step_paper", "resolve_mixed_precision", "TRAINERS",
           "train_step", "fit"]

log = logging.getLogger(__name__)
LOG_EVERY = 50  # steps between reading the running loss back from the device (and checking it)
CHECKPOINT_SECONDS = 15 * 60  # a checkpoint at least this often, whatever TrainConfig.checkpoint_every says


class TrainingError(QpiError, RuntimeError):
    """Training cannot start or continue; the message says why and what to do."""


def _check_finite(loss_sum: torch.Tensor, step: str, epoch: int, when: str, optimizer) -> None:
    """Stop before a diverged model is ever saved."""
    if not torch.isfinite(loss_sum).all():
        raise TrainingError(f"{step}: the loss became {float(loss_sum):g} in epoch {epoch + 1} ({when}): training "
                            f"diverged (lr {optimizer.param_groups[0]['lr']:g}); lower {step}.lr and rerun with --restart")


def resolve_mixed_precision(setting: str) -> str:
    """``auto`` -> fp16 on CUDA (why the fp16-fix VAE exists), bf16 on a CPU with native bf16,
    else ``no``. fp16 needs a GPU; bf16 without native support would be slower than fp32."""
    cuda = torch.cuda.is_available()
    if setting == "auto":
        return "fp16" if cuda else ("bf16" if cpu_has_native_bf16() else "no")
    if not cuda and (setting == "fp16" or (setting == "bf16" and not cpu_has_native_bf16())):
        log.warning("mixed precision %s requested without a GPU%s: training in fp32", setting,
                    "" if setting == "fp16" else " or a CPU with native bf16")
        return "no"
    return setting


class EpochShuffle(torch.utils.data.Sampler):
    """A fresh permutation per epoch drawn from (seed, epoch): resumable and reproducible."""

    def __init__(self, n: int, seed: int, max_samples: int | None = None):
        self.n, self.seed, self.max_samples, self.epoch = n, seed, max_samples, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        return iter(perm[: self.max_samples].tolist() if self.max_samples else perm.tolist())

    def __len__(self) -> int:
        return min(self.n, self.max_samples) if self.max_samples else self.n


# ------------------------------------------------------------------------------------------
# the shared loop


SELECTION_RULE = ("before training (epoch 0, the start) and after every epoch, the mean per-sample kernel RMSE on "
                  "[0, 1] over the validation split (validation kernels for step 1; for step 2 and one-step, equal "
                  "numbers of validation observations of training kernels and of validation kernels; the validation "
                  "corpus for the prior); the epoch with the lowest value is kept, and training stops after "
                  "`patience` epochs without a lower one")


@dataclass
class Validation:
    """What :func:`fit` selects on: ``predict(model, x) -> kernel`` on the model scale, run on
    ``inputs`` (N, C, 64, 64) and compared with ``kernels`` (N, 1, 64, 64), both [-1, 1]."""

    predict: Callable
    inputs: torch.Tensor
    kernels: torch.Tensor
    name: str

    @torch.no_grad()
    def rmse(self, model, device, autocast, batch_size: int = 128) -> float:
        """Mean over samples of the per-sample RMSE on [0, 1] (the table's metric)."""
        total = 0.0
        for start in range(0, len(self.inputs), batch_size):
            x = self.inputs[start:start + batch_size].to(device)
            k = self.kernels[start:start + batch_size].to(device)
            with autocast():
                pred = self.predict(model, x)
            total += float(((pred.float() - k) ** 2).flatten(1).mean(1).sqrt().sum()) / 2.0  # [-1,1] -> [0,1]
        return total / len(self.inputs)


def cpu_has_native_bf16() -> bool:
    """True when this CPU runs bf16 matrix maths natively (AVX-512 BF16 or AMX), where oneDNN
    makes bf16 autocast about twice as fast as fp32 (``benchmarks/bench_train.py``)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train_step(model: torch.nn.Module, batch: dict, loss_fn: Callable, optimizer, accelerator, grad_clip: float):
    """One optimisation step, all the method does in training: forward (``loss_fn(model, batch) ->
    (loss, parts)`` under the accelerator's autocast), backward, gradient clipping, optimiser step.
    Returns (loss, parts, batch size), the loss still on the device (reading it back every step
    would stall a GPU)."""
    batch = {k: (v.to(accelerator.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
    with accelerator.autocast():
        loss, parts = loss_fn(model, batch)
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss, parts, len(batch["kernel"])


def _already_trained(step: str, model, tcfg: TrainConfig, layout: RunLayout, fingerprint: dict) -> dict | None:
    """The summary (with history) of a finished model file for this very configuration, its weights
    loaded into ``model``; None when it is to be extended to more epochs (from its checkpoint)."""
    model_path, ckpt_path = layout.model(step), layout.checkpoint(step)
    blob = load_blob(model_path, step, fingerprint)
    summary = blob["summary"]
    trained = int(summary["epochs"])
    if trained == tcfg.epochs or (summary.get("stopped_early") and trained < tcfg.epochs):
        check_weights(blob["state_dict"], model, model_path)
        model.load_state_dict(blob["state_dict"])
        done = "already trained" if trained == tcfg.epochs else f"stopped early at epoch {summary['epochs_run']}"
        print(f"{step}: {done} ({layout.display(model_path)}); use --restart to train again")
        return {**summary, "history": blob["history"]}
    if trained > tcfg.epochs or not ckpt_path.is_file():
        why = "more than" if trained > tcfg.epochs else "and its checkpoint to extend from is missing; asked for"
        raise TrainingError(f"{layout.display(model_path)} was trained for {trained} epochs, {why} "
                            f"{tcfg.epochs}: use --restart to train {tcfg.epochs} epochs afresh")
    print(f"{step}: extending from {trained} to {tcfg.epochs} epochs")
    return None


def fit(*, step: str, model: torch.nn.Module, train_set, validation: Validation, loss_fn: Callable,
         tcfg: TrainConfig, layout: RunLayout, fingerprint: dict, info: ModelInfo, extra: dict | None = None,
         progress: bool = True, restart: bool = False, stop_after: int | None = None, to_device=()) -> dict:
    """Train ``model`` (the trainable module) with ``loss_fn(model, batch) -> (loss, parts)``,
    keeping the weights of the epoch with the lowest validation RMSE (:data:`SELECTION_RULE`).

    ``stop_after``: stop after this many epochs in this call, as if interrupted (the checkpoint
    is kept and the next call resumes). ``to_device``: frozen modules the loss or validation
    uses, moved to the training device. Returns the summary (also stored in the model file) with
    the per-epoch ``history`` (rows of ``logs/<step>.csv``) added.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    model_path, ckpt_path, log_path = layout.model(step), layout.checkpoint(step), layout.log(step)
    if model_path.is_file() and not restart:
        done = _already_trained(step, model, tcfg, layout, fingerprint)
        if done is not None:
            return done

    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(tcfg.mixed_precision))
    for module in to_device:
        module.to(accelerator.device)
    sampler = EpochShuffle(len(train_set), tcfg.seed, tcfg.max_train_samples)
    loader = torch.utils.data.DataLoader(train_set, batch_size=tcfg.batch_size, sampler=sampler, num_workers=0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=tcfg.lr)
    per_batch = tcfg.schedule == "onecycle"
    if per_batch:
        total = tcfg.epochs * max(len(loader), 1)
        # warm-up over 5 % of the steps, but at least 2 steps: torch divides by the phase lengths
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=tcfg.lr, total_steps=max(total, 4),
                                                        pct_start=min(0.5, max(0.05, 2.5 / max(total, 4))))
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=tcfg.lr_step_size, gamma=tcfg.lr_gamma)

    start_epoch, history, elapsed = 0, [], 0.0
    best = {"epoch": 0, "val_rmse": float("inf"), "state_dict": None}
    if ckpt_path.is_file() and not restart:
        ck = load_blob(ckpt_path)
        check_fingerprint(ck.get("fingerprint", {}), fingerprint, ckpt_path)
        check_weights(ck["state_dict"], model, ckpt_path)
        model.load_state_dict(ck["state_dict"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start_epoch, history, elapsed, best = ck["epoch"], ck["history"], ck["elapsed"], ck["best"]
        if start_epoch > tcfg.epochs:
            raise TrainingError(f"{layout.display(ckpt_path)} holds {start_epoch} epochs, more than the {tcfg.epochs} "
                                "asked for: raise the epoch count, or use --restart")
        print(f"{step}: resuming from epoch {start_epoch} of {tcfg.epochs} ({layout.display(ckpt_path)})")
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if start_epoch == 0:  # epoch 0 is the start: a network that starts from trained weights (a prior, the
        # step-1 VAE) is kept as it was when no epoch of training improves on it
        model.eval()
        torch.manual_seed(tcfg.seed)
        plain = accelerator.unwrap_model(model)
        start = validation.rmse(plain, accelerator.device, accelerator.autocast)
        best = {"epoch": 0, "val_rmse": start, "start_val_rmse": start,
                "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in plain.state_dict().items()}}

    def converged(epoch: int) -> bool:
        return tcfg.patience is not None and epoch - best["epoch"] >= tcfg.patience

    done_now, last_save, saved_epoch, stopped_early = 0, time.perf_counter(), start_epoch, converged(start_epoch)
    try:
        for epoch in range(start_epoch, tcfg.epochs):
            if stopped_early:
                break
            t0 = time.perf_counter()
            # accelerate's prepared loader keeps its own epoch counter and pushes it into the sampler
            # when iterated; set it to the true epoch so a resumed run sees the same order
            (loader.set_epoch if hasattr(loader, "set_epoch") else sampler.set_epoch)(epoch)
            torch.manual_seed(tcfg.seed * 1_000_003 + epoch)  # the VAE's sampling noise, per epoch
            model.train()
            # running sums stay on the device: reading a loss back to the host every step would
            # stall a GPU; they are read (and checked) every LOG_EVERY steps and at the epoch's end
            sums: dict[str, torch.Tensor] = {}
            count = 0
            bar = tqdm(loader, desc=f"{step} epoch {epoch + 1}/{tcfg.epochs}", disable=not progress, leave=False)
            for i, batch in enumerate(bar):
                loss, parts, n = train_step(model, batch, loss_fn, optimizer, accelerator, tcfg.grad_clip)
                if per_batch:
                    scheduler.step()
                count += n
                for k, v in {"loss": loss.detach(), **parts}.items():
                    sums[k] = sums.get(k, 0.0) + v.float() * n
                if (i + 1) % LOG_EVERY == 0:
                    _check_finite(sums["loss"], step, epoch, f"by batch {i + 1}", optimizer)
                    bar.set_postfix(loss=f"{float(sums['loss']) / count:.4g}")
            sums = {k: float(v) for k, v in sums.items()}
            _check_finite(torch.tensor(sums.get("loss", 0.0)), step, epoch, "by the end of the epoch", optimizer)
            lr = optimizer.param_groups[0]["lr"]
            if not per_batch:
                scheduler.step()
            model.eval()
            torch.manual_seed(tcfg.seed)
            val_rmse = validation.rmse(accelerator.unwrap_model(model), accelerator.device, accelerator.autocast)
            seconds = time.perf_counter() - t0
            elapsed += seconds
            row = {"epoch": epoch + 1, **{f"train_{k}": v / max(count, 1) for k, v in sums.items()},
                   "val_rmse": val_rmse, "lr": lr, "seconds": round(seconds, 3)}
            history.append(row)
            bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
            if bad or not np.isfinite(val_rmse):
                raise TrainingError(f"{step}: {'weights ' + bad[0] if bad else 'the validation error'} became "
                                    f"non-finite in epoch {epoch + 1}: training diverged; lower {step}.lr and rerun "
                                    "with --restart")
            if val_rmse < best["val_rmse"]:
                state = accelerator.unwrap_model(model).state_dict()
                best = {**best, "epoch": epoch + 1, "val_rmse": val_rmse,
                        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in state.items()}}
            stopped_early = converged(epoch + 1)
            done_now += 1
            stopping = stop_after is not None and done_now >= stop_after
            due = ((epoch + 1) % tcfg.checkpoint_every == 0 or epoch + 1 == tcfg.epochs or stopping or stopped_early
                   or time.perf_counter() - last_save > CHECKPOINT_SECONDS)
            if accelerator.is_main_process and due:  # a checkpoint per epoch would be ~1 GB each at paper size
                save_blob({"step": step, "fingerprint": fingerprint, "epoch": epoch + 1,
                           "state_dict": accelerator.unwrap_model(model).state_dict(),
                           "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                           "history": history, "elapsed": elapsed, "best": best}, ckpt_path)
                last_save, saved_epoch = time.perf_counter(), epoch + 1
            if accelerator.is_main_process:
                write_csv(log_path, history)
            if progress:
                mark = " *" if best["epoch"] == epoch + 1 else ""
                print(f"{step} epoch {epoch + 1}/{tcfg.epochs}: train {row['train_loss']:.5f}  "
                      f"validation RMSE {val_rmse:.4f}{mark}  ({seconds:.1f} s)")
            if stopped_early and progress:
                print(f"{step}: no better validation RMSE for {tcfg.patience} epochs: stopping; keeping epoch "
                      f"{best['epoch']} ({best['val_rmse']:.4f})")
            if stopping and epoch + 1 < tcfg.epochs and not stopped_early:
                return {"interrupted_after_epoch": epoch + 1}
    except KeyboardInterrupt:
        print(f"\n{step}: interrupted; {saved_epoch} of {tcfg.epochs} epochs are saved in the checkpoint: rerun the "
              "same command (or cell) to resume from there")
        raise

    epochs_run = len(history)
    summary = {"step": step, "epochs": tcfg.epochs, "epochs_run": epochs_run, "stopped_early": bool(stopped_early),
               "best_epoch": best["epoch"], "best_val_rmse": best["val_rmse"], "selection": SELECTION_RULE,
               "start_val_rmse": best.get("start_val_rmse"),
               "patience": tcfg.patience, "validation": validation.name, "wall_seconds": round(elapsed, 2),
               "train_samples_per_second": round(epochs_run * len(sampler) / max(elapsed, 1e-9), 2),
               "final_train_loss": history[-1]["train_loss"], "model_info": info.to_dict(),
               "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device), **(extra or {})}
    if accelerator.is_main_process:
        save_blob({"step": step, "fingerprint": fingerprint, "summary": summary,
                   "state_dict": best["state_dict"], "history": history}, model_path)
    accelerator.unwrap_model(model).load_state_dict(best["state_dict"])
    return {**summary, "history": history}


def _prepare(profile: Profile, run):
    """The run's layout, dataset and splits: what every training starts from. A profile that
    starts from a kit prior is refused when this dataset's held-out kernels are too close to the
    prior's corpus (:func:`qpi_utils.prior.check_held_out`). A dataset read from files (the
    authors') records no kernel parameters: the prior, simulated from the kit's family, never saw its
    kernels, and there is no distance to check."""
    layout = as_layout(run, profile)
    ds, splits = load_data(profile, layout)
    simulated = isinstance(ds.meta.get("simulation"), dict)
    if simulated and profile.model.pretrained and profile.model.pretrained.startswith(KIT_PRIOR):
        _, made, corpus = load_kit_prior(profile.model)
        held = np.concatenate([splits.val_kernels, splits.ood_kernels])
        params = {name: np.asarray(ds.arrays[f"param_{name}"]) for name in corpus}
        check_held_out(corpus, params, held, profile.simulation, made["prior"]["min_distance"], profile.model.pretrained)
    return layout, ds, splits


VALIDATION_CAP = 512  # validation observations evaluated after each epoch (half seen, half unseen kernels)


def _kernel_validation(ds, kernel_ids) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.from_numpy(np.asarray(ds.kernels[np.asarray(kernel_ids)], np.float32))[:, None]
    return to_model_scale(k), to_model_scale(k)


def _observation_validation(ds, splits, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = splits.validation_pairs(VALIDATION_CAP, seed)
    kernels = torch.from_numpy(np.asarray(ds.kernels[pairs[:, 0]], np.float32))[:, None]
    return to_model_scale(stack_pairs(ds, pairs)), to_model_scale(kernels)


def augment_noise(observation: torch.Tensor, snr_db: tuple[float, float]) -> torch.Tensor:
    """Noise augmentation of a (B, 2, 64, 64) batch of (Y, M) on [0, 1]: white Gaussian noise on
    Y at an SNR drawn uniformly from ``snr_db`` per sample (20 log10 std(Y) / std(noise), as
    :func:`qpi_utils.simulate.add_noise`), then Y min-max scaled back to [0, 1] as the dataset
    stores it. M is untouched. Uses torch's global generator (seeded per epoch by training)."""
    y, m = observation[:, :1], observation[:, 1:]
    b = len(y)
    snr = torch.empty(b, 1, 1, 1, device=y.device).uniform_(*snr_db)
    std = y.flatten(1).std(1).view(b, 1, 1, 1) / 10 ** (snr / 20)
    noisy = y + std * torch.randn_like(y)
    lo, hi = noisy.amin((2, 3), keepdim=True), noisy.amax((2, 3), keepdim=True)
    return torch.cat([(noisy - lo) / (hi - lo).clamp_min(1e-12), m], dim=1)


def _observation_data(profile: Profile, layout, ds, tcfg: TrainConfig, progress: bool):
    """The dataset step 2 or the one-step baseline trains and selects its epoch on: ``ds`` itself,
    or its realistic copy (same kernels, defects and splits) when ``tcfg.realistic_data``."""
    return load_realistic_data(profile, layout, tcfg, ds, progress=progress) if tcfg.realistic_data else ds


def _observations(batch, tcfg: TrainConfig) -> torch.Tensor:
    """The batch's (Y, M) on the model scale, noise-augmented if the config asks."""
    obs = batch["observation"]
    if tcfg.augment_snr_db is not None:
        obs = augment_noise(obs, tcfg.augment_snr_db)
    return to_model_scale(obs)


# ------------------------------------------------------------------------------------------
# step 1


def kernel_vae_loss(tcfg: TrainConfig, origin: float = KERNEL_ORIGIN):
    """Step 1's loss, ``loss_fn(vae, batch) -> (loss, parts)``: MSE + alpha sym + beta KL; the
    symmetric loss rotates about ``origin``, the kernels' scatterer pixel."""
    def loss_fn(vae, batch):
        x = to_model_scale(batch["kernel"])
        posterior = vae.encode(x).latent_dist
        rec = vae.decode(posterior.sample()).sample
        mse = reconstruction_loss(rec, x)
        sym = (symmetric_loss(rec.float(), x, batch["symmetry"], origin=origin, angle_set=tcfg.sym_angles) if tcfg.alpha > 0
               else torch.zeros((), device=x.device))
        kl = kl_loss(posterior.mean.float(), posterior.logvar.float(), tcfg.kl_reduction)
        return mse + tcfg.alpha * sym + tcfg.beta * kl, {"mse": mse.detach(), "sym": sym.detach(), "kl": kl.detach()}

    return loss_fn


def reconstruct(vae, x: torch.Tensor) -> torch.Tensor:
    """The VAE's deterministic reconstruction (decoder of the latent mean), model scale."""
    return vae.decode(vae.encode(x).latent_dist.mean).sample


def train_kernel_vae(profile: Profile, run: RunLayout | str | Path, progress: bool = True, restart: bool = False,
                     stop_after: int | None = None) -> dict:
    """Step 1: fine-tune the kernel VAE on the training kernels only (MSE + alpha sym + beta KL),
    keeping the epoch that reconstructs the validation kernels best. The training-only kernels
    (``simulation.extra_train_kernels``) are left to the networks that read observations: the
    prior already reconstructs kernels it never saw, and step 1 stays the paper's."""
    layout, ds, splits = _prepare(profile, run)
    vae, info = build_kernel_vae(profile.model)
    tcfg = profile.kernel_vae
    validation = Validation(reconstruct, *_kernel_validation(ds, splits.val_kernels), "validation kernels")
    kernels = splits.train_kernels[splits.train_kernels < profile.simulation.n_kernels]
    return fit(step="kernel_vae", model=vae, train_set=KernelDataset(ds, kernels), validation=validation,
                loss_fn=kernel_vae_loss(tcfg, ds.kernel_origin), tcfg=tcfg, layout=layout,
                fingerprint=step_fingerprint(profile, "kernel_vae", ds), info=info, progress=progress,
                restart=restart, stop_after=stop_after)


# ------------------------------------------------------------------------------------------
# step 2


class _AlignmentData(torch.utils.data.Dataset):
    """Observation pairs plus their kernel's precomputed target latent."""

    def __init__(self, ds, pairs, target_mean, target_logvar):
        self.obs = ObservationDataset(ds, pairs)
        self.mean, self.logvar = target_mean, target_logvar

    def __len__(self):
        return len(self.obs)

    def __getitem__(self, i):
        item = self.obs[i]
        k = item["kernel_id"]
        return {**item, "target_mean": self.mean[k], "target_logvar": self.logvar[k]}


def alignment_loss_fn(tcfg: TrainConfig):
    """Step 2's loss, ``loss_fn(encoder, batch) -> (loss, parts)``: latent mean and log-variance MSE."""
    def loss_fn(encoder, batch):
        mean, logvar = encoder(_observations(batch, tcfg))
        return alignment_loss(mean.float(), logvar.float(), batch["target_mean"], batch["target_logvar"]), {}

    return loss_fn


def train_alignment(profile: Profile, run: RunLayout | str | Path, progress: bool = True, restart: bool = False,
                    stop_after: int | None = None) -> dict:
    """Step 2: train the observation encoder so that its latent distribution for (Y, M) matches
    the frozen kernel encoder's for the true kernel. The decoder is never run while training;
    it decodes the validation observations to select the epoch."""
    layout, ds, splits = _prepare(profile, run)
    vae, kernel_info = load_kernel_vae(profile, layout, ds)
    tcfg = profile.alignment
    warm = resolve_init(profile, "alignment") == "kernel_encoder"
    encoder, info = build_observation_encoder(profile.model, vae if warm else None, kernel_info if warm else None)
    k_shape = latent_shape(lambda x: vae.encode(x), 1)
    o_shape = latent_shape(encoder, 2)
    if k_shape != o_shape:
        raise ModelConfigError(f"latent shapes differ: kernel encoder {k_shape}, observation encoder {o_shape}")
    t_mean, t_logvar = kernel_latents(vae, ds.kernels)
    seen = _observation_data(profile, layout, ds, tcfg, progress)
    validation = Validation(lambda enc, x: vae.decode(enc(x)[0]).sample,
                            *_observation_validation(seen, splits, tcfg.seed), "validation observations")
    return fit(step="alignment", model=encoder, train_set=_AlignmentData(seen, splits.train, t_mean, t_logvar),
                validation=validation, loss_fn=alignment_loss_fn(tcfg), tcfg=tcfg, layout=layout,
                fingerprint=step_fingerprint(profile, "alignment", ds), info=info,
                extra={"latent_shape": list(k_shape)}, progress=progress, restart=restart, stop_after=stop_after,
                to_device=(vae,))


# ------------------------------------------------------------------------------------------
# one-step baseline


def one_step_loss(tcfg: TrainConfig):
    """The baseline's loss, ``loss_fn(model, batch) -> (loss, parts)``: MSE to the kernel of the
    decoded latent mean (a deterministic encoder-decoder, as at inference) + beta KL."""
    def loss_fn(model, batch):
        posterior = model.encode(_observations(batch, tcfg)).latent_dist
        pred = model.decode(posterior.mean).sample
        mse = reconstruction_loss(pred, to_model_scale(batch["kernel"]))
        kl = kl_loss(posterior.mean.float(), posterior.logvar.float(), tcfg.kl_reduction)
        return mse + tcfg.beta * kl, {"mse": mse.detach(), "kl": kl.detach()}

    return loss_fn


def train_one_step(profile: Profile, run: RunLayout | str | Path, progress: bool = True, restart: bool = False,
                   stop_after: int | None = None, step: str = "one_step") -> dict:
    """The baseline: the same VAE family with 2 channels in, trained (Y, M) -> kernel directly with
    the ``one_step`` section's settings. ``step``: ``"one_step"``, the kit's, started from the
    step-1 VAE, or ``"one_step_paper"``, the paper's, started from the model section's weights
    (:func:`qpi_utils.config.resolve_init`)."""
    layout, ds, splits = _prepare(profile, run)
    tcfg = getattr(profile, TRAIN_SECTIONS[step])
    model, info = _one_step_start(profile, layout, ds, step)
    if not restart and not layout.model(step).is_file():
        twin = _twin_training(profile, layout, ds, step, model, info)
        if twin is not None:
            return twin
    seen = _observation_data(profile, layout, ds, tcfg, progress)
    validation = Validation(reconstruct, *_observation_validation(seen, splits, tcfg.seed), "validation observations")
    return fit(step=step, model=model, train_set=ObservationDataset(seen, splits.train), validation=validation,
                loss_fn=one_step_loss(tcfg), tcfg=tcfg, layout=layout,
                fingerprint=step_fingerprint(profile, step, ds), info=info, progress=progress,
                restart=restart, stop_after=stop_after)


def _one_step_start(profile: Profile, layout: RunLayout, ds, step: str):
    """(model, ModelInfo): where one-step baseline ``step`` starts, the step-1 VAE or the model
    section's weights (:func:`qpi_utils.config.resolve_init`)."""
    if resolve_init(profile, step) == "kernel_vae":
        vae, kernel_info = load_kernel_vae(profile, layout, ds)
        return build_one_step(profile.model, vae, kernel_info)
    return build_one_step(profile.model)


def _twin_training(profile: Profile, layout: RunLayout, ds, step: str, model, info: ModelInfo) -> dict | None:
    """The other one-step baseline's finished training, written as ``step``'s, when training ``step``
    would repeat it number for number: the same settings (all but where it starts), the same data
    and bit for bit the same starting weights (``model``). Training is deterministic per seed and
    epoch, so where step 1 kept the prior itself the kit's baseline and the paper's are one network,
    and training it twice costs a one-step training for nothing. The summary says
    ``same_training_as``. None when they differ in anything, or the other is not trained."""
    other = "one_step_paper" if step == "one_step" else "one_step"
    path = layout.model(other)
    mine, theirs = getattr(profile, TRAIN_SECTIONS[step]), getattr(profile, TRAIN_SECTIONS[other])
    if not path.is_file() or replace(mine, init=theirs.init) != theirs:
        return None
    blob = load_blob(path, other)
    summary = blob.get("summary", {})
    epochs = summary.get("epochs", 0)
    finished = epochs == mine.epochs or (summary.get("stopped_early") and epochs < mine.epochs)
    if blob.get("fingerprint") != step_fingerprint(profile, other, ds) or not finished:
        return None
    start, _ = _one_step_start(profile, layout, ds, other)
    a, b = model.state_dict(), start.state_dict()
    if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
        return None
    check_weights(blob["state_dict"], model, path)
    summary = {**summary, "step": step, "model_info": info.to_dict(), "same_training_as": other}
    save_blob({"step": step, "fingerprint": step_fingerprint(profile, step, ds), "summary": summary,
               "state_dict": blob["state_dict"], "history": blob["history"]}, layout.model(step))
    write_csv(layout.log(step), blob["history"])
    model.load_state_dict(blob["state_dict"])
    print(f"{step}: the same training as {other} (the same settings, data and starting weights, bit for bit): "
          f"its weights are kept as {layout.display(layout.model(step))}")
    return {**summary, "history": blob["history"]}


def train_one_step_paper(profile: Profile, run: RunLayout | str | Path, progress: bool = True, restart: bool = False,
                         stop_after: int | None = None) -> dict:
    """The paper's one-step baseline: :func:`train_one_step` started from the model section's
    weights (the pretrained VAE where the profile names one, else random), never from step 1."""
    return train_one_step(profile, run, progress, restart, stop_after, step="one_step_paper")


# the one table of trainers, in training order (qpi_utils.runs.STEPS): step name -> trainer
TRAINERS = {"kernel_vae": train_kernel_vae, "alignment": train_alignment, "one_step": train_one_step,
            "one_step_paper": train_one_step_paper}
