"""The API's one validation layer (qpi_utils.validate): for arrays of any shape, dtype and value,
each public function returns a correct result or raises a QpiError that names the argument;
never another exception."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from qpi_utils import baselines, metrics, realdata
from qpi_utils.errors import QpiError
from qpi_utils.validate import InputError, image_batch, network_batch

DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.uint8, np.bool_])
SHAPES = st.one_of(st.sampled_from([(64, 64), (1, 64, 64), (3, 64, 64), (2, 2, 64, 64), (0, 64, 64), (64,), (),
                                    (2, 64, 32), (32, 64)]),
                   hnp.array_shapes(min_dims=0, max_dims=4, max_side=5))


def arrays(shape_strategy=SHAPES):
    return st.tuples(shape_strategy, DTYPES, st.sampled_from(["random", "zeros", "nan", "inf", "huge"])).map(_make)


def _make(spec):
    shape, dtype, kind = spec
    rng = np.random.default_rng(0)
    x = rng.random(shape) if kind in ("random", "nan", "inf") else np.zeros(shape)
    if kind == "huge":
        x = x + 1e300
    if x.size and kind in ("nan", "inf"):
        x.flat[0] = np.nan if kind == "nan" else np.inf
    with np.errstate(all="ignore"):
        return x.astype(dtype) if np.issubdtype(np.dtype(dtype), np.floating) else (x * 3).astype(dtype)


def _named(exc: QpiError, *names: str) -> bool:
    return any(name in str(exc) for name in names)


@settings(max_examples=60, deadline=None)
@given(y=arrays(), m=arrays())
def test_least_squares_and_defect_average(y, m):
    for fn in (baselines.defect_average, lambda a, b: baselines.least_squares(a, b, iterations=3)):
        try:
            out = fn(y, m)
        except QpiError as exc:
            assert _named(exc, "observations", "activation map"), exc
            continue
        n = 1 if np.ndim(y) == 2 else len(y)
        assert out.shape == (n, 64, 64) and np.isfinite(out).all()


@settings(max_examples=60, deadline=None)
@given(pred=arrays(), target=arrays())
def test_errors(pred, target):
    try:
        out = metrics.errors(pred, target)
    except QpiError as exc:
        assert _named(exc, "predictions", "targets"), exc
        return
    assert np.ndim(pred) == 3 and out["rmse"].shape == (len(pred),) and np.isfinite(out["rmse"]).all()


@settings(max_examples=60, deadline=None)
@given(img=arrays(st.one_of(SHAPES, st.sampled_from([(16, 16), (40, 24)]))),
       fmin=st.one_of(st.floats(-1, 1), st.just(float("nan"))), fmax=st.one_of(st.floats(-1, 1), st.just(float("nan"))),
       pixel=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.1)))
def test_period_and_frequency(img, fmin, fmax, pixel):
    try:
        period = realdata.estimate_period_nm(img, pixel, fmin, fmax)
    except QpiError as exc:
        assert _named(exc, "image", "fmin", "fmax", "pixel_nm"), exc
        return
    assert np.isfinite(period) and period > 0 and 0 < fmin < fmax <= 0.5


class _Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 1, 3, padding=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=arrays(), as_tensor=st.booleans())
def test_network_input_is_converted_to_the_networks_dtype_and_device(x, as_tensor):
    net = _Conv()
    if as_tensor and x.dtype != np.bool_ and x.dtype != np.uint8:
        x = torch.from_numpy(np.ascontiguousarray(x))
    try:
        t = network_batch("observations", x, net, channels=2)
    except QpiError as exc:
        assert _named(exc, "observations"), exc
        return
    assert t.dtype == torch.float32 and t.shape[1:] == (2, 64, 64) and torch.isfinite(t).all()


def test_the_predictors_take_numpy_and_other_dtypes(trained_run):
    """The two networks' predictors accept numpy float64 and torch float16 alike (issue 28's
    'float16/float64, numpy input ... end in torch internals')."""
    from qpi_utils.methods import predict_one_step, predict_two_step

    _, models = trained_run
    x = np.random.default_rng(0).random((2, 2, 64, 64))
    a = predict_two_step(models.observation_encoder, models.kernel_vae, x)
    b = predict_two_step(models.observation_encoder, models.kernel_vae, torch.from_numpy(x).half())
    assert a.shape == (2, 1, 64, 64) and torch.allclose(a, b, atol=5e-3)
    assert predict_one_step(models.one_step, x[0]).shape == (1, 1, 64, 64)  # one image: a batch of one
    with pytest.raises(InputError, match=r"observations must be a batch of shape \(N, 2, 64, 64\)"):
        predict_one_step(models.one_step, x[:, :1])


def test_image_batch_refuses_an_empty_batch_and_names_nan_counts():
    with pytest.raises(InputError, match="the batch is empty"):
        image_batch("observations", np.zeros((0, 64, 64)))
    with pytest.raises(InputError, match="observations holds 1 NaN or inf"):
        image_batch("observations", np.where(np.eye(64, dtype=bool)[None] & (np.arange(64) == 0)[None, :, None],
                                             np.nan, 0.0))
