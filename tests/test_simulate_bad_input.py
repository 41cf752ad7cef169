"""Physics API misuse: clear errors instead of silently wrong images (one case a line)."""
import numpy as np
import pytest

from qpi_utils.data import simulate_dataset
from qpi_utils.simulate import KernelParams, kernel_spectrum, render_observations

GOOD = {"symmetry": [0], "orientation": [0.0], "frequency": [0.1], "phase": [0.0], "decay": [8.0]}
SPEC = kernel_spectrum(KernelParams(symmetry=0))[0]

PARAM_CASES = [
    ({"decay": [0.0]}, "decay must be a finite number > 0"),
    ({"decay": [np.inf]}, "decay must be a finite number > 0"),
    ({"symmetry": [5]}, "symmetry must be one of"),
    ({"frequency": [0.6]}, "below Nyquist"),
    ({"frequency": [np.nan]}, "below Nyquist"),
    ({"orientation": [np.nan]}, "orientation and phase must be finite"),
    ({"phase": [np.inf]}, "orientation and phase must be finite"),
    ({"phase": [0.0, 1.0]}, "one length"),
]


@pytest.mark.parametrize("change, message", PARAM_CASES)
def test_kernel_spectrum_checks_every_parameter(change, message):
    with pytest.raises(ValueError, match=message):
        kernel_spectrum({**GOOD, **change})


@pytest.mark.parametrize("change, message", PARAM_CASES[:5])
def test_given_dataset_kernels_are_checked(smoke_profile, change, message):
    import dataclasses

    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=1, n_observations=2)
    with pytest.raises(ValueError, match=message):
        simulate_dataset(cfg, progress=False, params={**GOOD, **change})


RENDER_CASES = [
    (dict(positions=np.array([[[200.0, 10.0]]])), "would wrap into the view"),
    (dict(positions=np.array([[[-40.0, 10.0]]])), "would wrap into the view"),
    (dict(positions=np.zeros((1, 3, 2)), size=200), "too large for a spectrum"),
    (dict(positions=np.zeros((1, 3, 2)), weights=np.ones((1, 4))), "weights must have shape"),
    (dict(positions=np.zeros((3, 2))), "positions must have shape"),
]


@pytest.mark.parametrize("kwargs, message", RENDER_CASES)
def test_render_observations_refuses_what_it_cannot_render(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_observations(SPEC, **kwargs)


def test_scatterers_just_outside_the_view_are_fine():
    assert render_observations(SPEC, np.array([[[-31.5, 10.0], [94.0, 5.0]]])).shape == (1, 64, 64)
