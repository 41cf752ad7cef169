"""The forward model Y = crop(M (*) A) as one linear operator (forward and exact adjoint, numpy or
torch), built from activation maps or continuous positions. See ``docs/library.md``."""

from __future__ import annotations

import numpy as np

from .errors import InputError

from .simulate import IMAGE_SIZE, KERNEL_ORIGIN, scatterer_spectrum

__all__ = ["PAD", "ConvolutionOperator"]

PAD = 128  # linear convolution of two 64x64 images fits a 128x128 periodic grid without wrap
SIZE = IMAGE_SIZE


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _fft(x, inverse: bool = False):
    """rfft2 (or its inverse) on the padded grid, in the library of ``x``."""
    if _is_torch(x):
        import torch

        fft = torch.fft
    else:
        from scipy import fft
    kwargs = {} if _is_torch(x) else {"workers": -1}
    return (fft.irfft2 if inverse else fft.rfft2)(x, s=(PAD, PAD), **kwargs)


class ConvolutionOperator:
    """``A(B) = crop(M (*) B)`` for a batch of N images; see ``docs/library.md``.

    ``spectrum``: (N, 128, 65) complex, the rfft2 of the defect distribution on the 128 grid
    (numpy or torch). Inputs of :meth:`forward` and :meth:`adjoint` are (N, 64, 64) and may be of
    either library; the result is of the input's library (torch: on its device, float64 unless
    the input is float32).
    """

    def __init__(self, spectrum):
        if tuple(spectrum.shape[-2:]) != (PAD, PAD // 2 + 1) or len(spectrum.shape) != 3:
            raise InputError(f"spectrum must be (N, {PAD}, {PAD // 2 + 1}), got {tuple(spectrum.shape)}")
        self.spectrum = spectrum
        self._cache: dict = {}

    @classmethod
    def from_maps(cls, maps) -> "ConvolutionOperator":
        """From (N, 64, 64) activation maps (defects per pixel); numpy or torch."""
        if tuple(maps.shape[-2:]) != (SIZE, SIZE) or len(maps.shape) != 3:
            raise InputError(f"activation maps must be (N, {SIZE}, {SIZE}), got {tuple(maps.shape)}")
        return cls(_fft(maps.double() if _is_torch(maps) else np.asarray(maps, np.float64)))

    @classmethod
    def from_positions(cls, positions: np.ndarray, weights: np.ndarray | None = None) -> "ConvolutionOperator":
        """From (N, S, 2) continuous defect positions (x, y) in pixels of the field of view (NaN =
        unused slot), optional (N, S) weights. The kernel is shifted to each position exactly
        (band-limited interpolation); the Nyquist row and column are dropped, as the simulator
        drops them, which keeps the operator real and its adjoint exact."""
        spec = scatterer_spectrum(positions, weights, grid=PAD, dtype=np.complex128)
        ky = np.fft.fftfreq(PAD, d=1.0 / PAD)
        keep = (np.abs(ky) < PAD // 2)[:, None] & (np.arange(PAD // 2 + 1) < PAD // 2)[None, :]
        return cls(spec * keep)

    @classmethod
    def from_positions_torch(cls, positions, valid=None) -> "ConvolutionOperator":
        """:meth:`from_positions` for a (N, S, 2) torch tensor of positions (x, y) in pixels,
        differentiable with respect to them (the hybrid refines the positions a defect finder
        reported). ``valid``: (N, S) bool, the used slots (default: the finite ones); unused
        slots may hold anything finite. float64 on the positions' device."""
        import torch

        pos = positions.double()
        if pos.ndim != 3 or pos.shape[-1] != 2:
            raise InputError(f"positions must be (N, S, 2), got {tuple(pos.shape)}")
        if valid is None:
            valid = torch.isfinite(pos).all(-1)
        pos = torch.where(valid[..., None], pos, torch.zeros_like(pos))
        k = torch.fft.fftfreq(PAD, d=1.0 / PAD, dtype=torch.float64, device=pos.device)  # FFT order
        ky = k[None, None, :]
        kx = torch.arange(PAD // 2 + 1, dtype=torch.float64, device=pos.device)[None, None, :]
        ey = torch.polar(valid[..., None].double(), (-2 * torch.pi / PAD) * pos[..., 1:2] * ky)  # (N, S, PAD)
        ex = torch.exp((-2j * torch.pi / PAD) * pos[..., 0:1] * kx)  # (N, S, PAD // 2 + 1)
        spec = ey.transpose(1, 2) @ ex
        # the Nyquist row and column dropped, as in from_positions
        keep = (k.abs() < PAD // 2)[:, None] & (torch.arange(PAD // 2 + 1, device=pos.device) < PAD // 2)[None, :]
        return cls(spec * keep)

    def __len__(self) -> int:
        return int(self.spectrum.shape[0])

    @property
    def n_defects(self) -> np.ndarray:
        """(N,) number (total weight) of defects per image: the spectrum at zero frequency."""
        dc = self.spectrum[:, 0, 0].real
        return dc.detach().cpu().numpy() if _is_torch(dc) else np.asarray(dc)

    def _spectrum_for(self, x):
        """The spectrum in the library (and on the device) of ``x``."""
        if _is_torch(x) == _is_torch(self.spectrum):
            return self.spectrum if not _is_torch(x) else self.spectrum.to(x.device)
        key = (str(getattr(x, "device", "numpy")),)
        if key not in self._cache:
            if _is_torch(x):
                import torch

                self._cache[key] = torch.from_numpy(np.asarray(self.spectrum)).to(x.device)
            else:
                self._cache[key] = self.spectrum.detach().cpu().numpy()
        return self._cache[key]

    def _check(self, name: str, x):
        if tuple(x.shape) != (len(self), SIZE, SIZE):
            raise InputError(f"{name} must be ({len(self)}, {SIZE}, {SIZE}) for this operator, got {tuple(x.shape)}")

    def forward(self, kernels):
        """(N, 64, 64) kernels (scatterer on pixel (32, 32)) -> (N, 64, 64) images."""
        self._check("kernels", kernels)
        full = _fft(self._spectrum_for(kernels) * _fft(kernels), inverse=True)
        return full[:, KERNEL_ORIGIN:KERNEL_ORIGIN + SIZE, KERNEL_ORIGIN:KERNEL_ORIGIN + SIZE]

    def adjoint(self, images):
        """The adjoint of :meth:`forward`: (N, 64, 64) images -> (N, 64, 64) kernels (the
        correlation of the images with the defect distribution)."""
        self._check("images", images)
        if _is_torch(images):
            import torch

            padded = torch.zeros((len(self), PAD, PAD), dtype=images.dtype, device=images.device)
        else:
            padded = np.zeros((len(self), PAD, PAD))
        padded[:, KERNEL_ORIGIN:KERNEL_ORIGIN + SIZE, KERNEL_ORIGIN:KERNEL_ORIGIN + SIZE] = images
        spec = self._spectrum_for(images)
        return _fft(_fft(padded) * spec.conj(), inverse=True)[:, :SIZE, :SIZE]

    A = forward
    A_adjoint = adjoint
