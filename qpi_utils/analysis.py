"""Looking inside the two-step method: where its error comes from, and what its latent spaces
look like (t-SNE). Both take the :class:`qpi_utils.methods.TrainedModels` of a run.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import stack_pairs
from .methods import TrainedModels
from .metrics import errors
from .models import from_model_scale, kernel_latents, to_model_scale

__all__ = ["two_step_diagnostics", "latent_embeddings", "class_agreement"]


@torch.no_grad()
def two_step_diagnostics(models: TrainedModels, n_pairs: int = 400) -> dict:
    """Where the two-step error comes from.

    * ``vae_ceiling_rmse``: RMSE of the frozen kernel VAE decoding the kernel's own latent mean:
      the best the two-step method can do if step 2 were perfect.
    * ``latent``: scale of the kernel latents (std of the means across kernels, log-variances).
    * ``alignment_mse``: step 2's remaining error on test observations, split into the part on
      the means (what inference uses) and on the log-variances (trained, but unused at
      inference), and the mean part relative to the variance of the target means.
    """
    ds, sp = models.ds, models.splits
    vae, enc = models.kernel_vae, models.observation_encoder
    k_mean, k_logvar = kernel_latents(vae, ds.kernels)
    rec = from_model_scale(vae.decode(k_mean.to(models.device)).sample).float().cpu().numpy()[:, 0]
    kernels = np.asarray(ds.kernels)
    out = {"vae_ceiling_rmse": {
        "train_kernels": float(errors(rec[sp.train_kernels], kernels[sp.train_kernels])["rmse"].mean()),
        "ood_kernels": float(errors(rec[sp.ood_kernels], kernels[sp.ood_kernels])["rmse"].mean())},
        "latent": {"mean_std_across_kernels": float(k_mean.std(0).mean()), "mean_abs": float(k_mean.abs().mean()),
                   "logvar_mean": float(k_logvar.mean()), "logvar_std": float(k_logvar.std())},
        "alignment_mse": {}}
    for setting, pairs in (("ID", sp.id_test), ("OOD", sp.ood_test)):
        pick = pairs[np.random.default_rng(0).permutation(len(pairs))[:n_pairs]]
        mean, logvar = enc(to_model_scale(stack_pairs(ds, pick)).to(models.device))
        t_mean, t_logvar = k_mean[pick[:, 0]], k_logvar[pick[:, 0]]
        mse_mean = float(((mean.float().cpu() - t_mean) ** 2).mean())
        out["alignment_mse"][setting] = {
            "mean": mse_mean, "logvar": float(((logvar.float().cpu() - t_logvar) ** 2).mean()),
            "mean_relative_to_target_variance": mse_mean / float(t_mean.var())}
    return out


@torch.no_grad()
def latent_embeddings(models: TrainedModels, per_kernel: int = 4, seed: int = 0, perplexity: float = 30.0) -> dict:
    """t-SNE (scikit-learn) of (a) the step-1 latent means of every kernel and (b) the aligned
    step-2 latent means of ``per_kernel`` test observations of every kernel (ID and OOD).

    Returns {"kernels": {...}, "observations": {...}}, each with ``embedding`` (N, 2),
    ``symmetry``, ``kernel_id``, ``frequency`` and ``ood`` (bool) arrays, and the
    :func:`class_agreement` of the latents (nearest-neighbour class agreement and its chance level).
    """
    from sklearn.manifold import TSNE

    ds, sp = models.ds, models.splits
    k_mean, _ = kernel_latents(models.kernel_vae, ds.kernels)
    ood_k = np.isin(np.arange(ds.n_kernels), sp.ood_kernels)
    rng = np.random.default_rng(seed)
    pairs = []
    for name in ("id_test", "ood_test"):
        p = sp.pairs(name)
        for k in np.unique(p[:, 0]):
            rows = p[p[:, 0] == k]
            pairs.append(rows[rng.permutation(len(rows))[:per_kernel]])
    pairs = np.concatenate(pairs)
    o_mean, _ = models.observation_encoder(to_model_scale(stack_pairs(ds, pairs)).to(models.device))

    def embed(x: np.ndarray) -> np.ndarray:
        perp = min(perplexity, max(2.0, (len(x) - 1) / 3))
        return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)

    frequency = np.asarray(ds.arrays["param_frequency"], np.float64)
    out = {}
    for name, latents, kernel_id in (("kernels", k_mean.reshape(ds.n_kernels, -1).numpy(), np.arange(ds.n_kernels)),
                                     ("observations", o_mean.float().cpu().reshape(len(pairs), -1).numpy(), pairs[:, 0])):
        symmetry = ds.symmetry[kernel_id]
        out[name] = {"embedding": embed(latents), "symmetry": symmetry, "kernel_id": kernel_id,
                     "frequency": frequency[kernel_id], "ood": ood_k[kernel_id],
                     **class_agreement(latents, symmetry, groups=kernel_id)}
    return out


def class_agreement(latents: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None) -> dict:
    """Do the latents cluster by class? The fraction of points whose nearest other point (in the
    latent space itself, not the t-SNE picture) has the same class, and that fraction for
    labels drawn at random with the same class sizes (chance: sum of squared class shares).
    ``groups`` (e.g. the kernel of each observation): neighbours of the same group are not
    counted, so several observations of one kernel cannot agree with each other trivially."""
    x = np.asarray(latents, np.float64).reshape(len(latents), -1)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    d[groups[:, None] == groups[None, :]] = np.inf
    nearest = d.argmin(1)
    labels = np.asarray(labels)
    shares = np.unique(labels, return_counts=True)[1] / len(labels)
    return {"nearest_neighbour_same_class": float((labels[nearest] == labels).mean()),
            "chance": float((shares ** 2).sum())}
