"""A probe of hostile input: what a careless or unlucky user does to the kit, at the smoke profile.

    python tests/probe_hostile.py [--out results/probe/hostile_smoke.txt]

About 200 cases over the classes of issue 28: the public API (arrays of every wrong shape, dtype
and value), profile values, ownership of folders and files, settings a run's data were not made
with, damaged models, headers of real STM files, sizes, and faults (full disks, killed writers,
broken notebooks). Each case is judged by what a user would see:

* ``clear``: a QpiError (or a CLI exit 2 with one line on stderr) whose message names the problem;
* ``correct``: a result that passes the case's check;
* ``traceback``: any other exception, or a CLI run printing a traceback;
* ``silent``: a result that fails the case's check (a wrong answer without an error);
* ``data loss``: a file the user made was changed or removed;
* ``leftover``: a temporary file was left behind;
* ``skipped``: the case cannot be probed here (a read-only folder, as root).

The probe passes when there is no data loss, no silent result, no leftover and at most 5
tracebacks; it prints every case that is not ``clear`` or ``correct``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qpi_utils.errors import QpiError  # noqa: E402

CASES: list[tuple[str, str, object]] = []  # (class, description, function(tmp) -> outcome or None)
PLANTED: list[Path] = []  # a case's own user files with temporary-looking names: not leftovers


def case(klass: str, description: str):
    def register(fn):
        CASES.append((klass, description, fn))
        return fn
    return register


class Silent(Exception):
    """The case's check failed on a returned result."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Silent(what)


def cli(*argv: str) -> tuple[int, str]:
    """Run `qpi ARGV` in-process: (exit code, stderr)."""
    from qpi_lab.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return int(code or 0), err.getvalue()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------
# the public API: arrays of any shape, dtype and value

HOSTILE_ARRAYS = {
    "2-D where a batch is expected": lambda: np.random.default_rng(0).random((64, 64)),
    "32x32 images": lambda: np.random.default_rng(0).random((2, 32, 32)),
    "an empty batch": lambda: np.zeros((0, 64, 64)),
    "NaN pixels": lambda: np.where(np.eye(64, dtype=bool)[None], np.nan, 0.5) * np.ones((2, 1, 1)),
    "inf pixels": lambda: np.full((2, 64, 64), np.inf),
    "float16": lambda: np.random.default_rng(0).random((2, 64, 64)).astype(np.float16),
    "int64": lambda: np.ones((2, 64, 64), np.int64),
    "bool": lambda: np.ones((2, 64, 64), bool),
    "a nested list": lambda: np.random.default_rng(0).random((1, 64, 64)).tolist(),
    "a string": lambda: "observations.npy",
    "None": lambda: None,
    "complex": lambda: np.ones((2, 64, 64), complex),
    "5-D": lambda: np.ones((1, 1, 1, 64, 64)),
    "1e300 values": lambda: np.full((2, 64, 64), 1e300),
}


def _maps(n: int) -> np.ndarray:
    m = np.zeros((n, 64, 64))
    m[:, 20, 20] = m[:, 40, 33] = 1
    return m


def _api_cases():
    from qpi_utils import baselines, metrics, realdata

    good_y = np.random.default_rng(1).random((2, 64, 64))
    for label, make in HOSTILE_ARRAYS.items():
        def ls(tmp, make=make):
            x = make()
            out = baselines.least_squares(x, _maps(2), iterations=5)
            expect(np.isfinite(out).all() and out.shape[-2:] == (64, 64), "least squares gave non-finite kernels")
        case("API", f"least_squares(observations={label})")(ls)

        def da(tmp, make=make):
            out = baselines.defect_average(good_y, make())
            expect(np.isfinite(out).all(), "defect average gave non-finite kernels")
        case("API", f"defect_average(maps={label})")(da)

        def err(tmp, make=make):
            x = make()
            out = metrics.errors(x, x)
            expect(np.ndim(x) == 3 and np.allclose(out["rmse"], 0), "errors of an array with itself are not 0")
        case("API", f"errors({label}, itself)")(err)

        def period(tmp, make=make):
            x = make()
            out = realdata.estimate_period_nm(x[0] if np.ndim(x) == 3 and len(x) else x, 0.1)
            expect(np.isfinite(out) and out > 0, "a period that is not a positive number")
        case("API", f"estimate_period_nm({label})")(period)

        def net(tmp, make=make):
            from qpi_utils.methods import predict_one_step
            x = make()
            out = predict_one_step(_one_step_network(), np.stack([x, x], 1) if np.ndim(x) == 3 else x)
            expect(torch_finite(out), "the network's output is not finite")
        case("API", f"predict_one_step({label}, stacked as Y and M)")(net)


def torch_finite(t) -> bool:
    import torch
    return bool(torch.isfinite(t).all())


_NET = {}


def _one_step_network():
    if "net" not in _NET:
        from qpi_utils.config import get_profile
        from qpi_utils.models import build_one_step
        _NET["net"] = build_one_step(get_profile("smoke").model)[0].eval()
    return _NET["net"]


@case("API", "estimate_period_nm of an all-zero map")
def _(tmp):
    from qpi_utils import realdata
    realdata.estimate_period_nm(np.zeros((64, 64)), 0.1)
    raise Silent("a zero map got a period")


@case("API", "dominant_frequency with inverted bounds")
def _(tmp):
    from qpi_utils import realdata
    realdata.dominant_frequency(np.random.default_rng(0).random((64, 64)), fmin=0.3, fmax=0.1)
    raise Silent("inverted bounds gave a frequency")


@case("API", "estimate_period_nm with a negative pixel size")
def _(tmp):
    from qpi_utils import realdata
    realdata.estimate_period_nm(np.random.default_rng(0).random((64, 64)), -0.1)
    raise Silent("a negative pixel size gave a period")


@case("API", "least_squares with a NaN lambda")
def _(tmp):
    from qpi_utils import baselines
    baselines.least_squares(np.random.default_rng(0).random((2, 64, 64)), _maps(2), lam=float("nan"))
    raise Silent("a NaN lambda was used")


@case("API", "least_squares with maps that hold no defect")
def _(tmp):
    from qpi_utils import baselines
    baselines.least_squares(np.random.default_rng(0).random((2, 64, 64)), np.zeros((2, 64, 64)))
    raise Silent("no defect, yet a kernel")


@case("API", "least_squares with negative maps")
def _(tmp):
    from qpi_utils import baselines
    baselines.least_squares(np.random.default_rng(0).random((2, 64, 64)), -_maps(2))
    raise Silent("negative defect counts were used")


@case("API", "kernel_image with symmetry 5")
def _(tmp):
    from qpi_utils import simulate
    simulate.kernel_image(simulate.KernelParams(symmetry=5, frequency=0.1))
    raise Silent("a 5-fold kernel was drawn, which the kit's family does not have")


@case("API", "kernel_image with a negative frequency")
def _(tmp):
    from qpi_utils import simulate
    img = simulate.kernel_image(simulate.KernelParams(symmetry=4, frequency=-0.1))
    expect(np.isfinite(img).all(), "non-finite kernel")


# ------------------------------------------------------------------------------------------
# profile values

BAD_OVERRIDES = [
    "simulation.n_kernels=0", "simulation.n_kernels=-5", "simulation.n_kernels=abc", "simulation.n_kernels=2.5",
    "simulation.n_observations=1", "simulation.max_scatterers=0", "simulation.min_scatterers=50",
    "simulation.snr_db=-1e6", "simulation.snr_db=NaN", "simulation.seed=-1", "simulation.seed=18446744073709551616",
    "simulation.frequency_range=[0.3, 0.1]", "simulation.frequency_range=[0.1]", "simulation.decay_range=[0, 5]",
    "simulation.supersample=0", "simulation.outside_margin=40", "simulation.position_error=-1",
    "simulation.ood_fraction=1.0", "simulation.image_size=32", "model.norm_num_groups=0", "model.norm_num_groups=3",
    "model.block_out_channels=[8, 16]", "model.block_out_channels=[0, 16, 16, 16]", "model.latent_channels=8",
    "model.layers_per_block=0", "model.architecture=resnet", "kernel_vae.lr=0", "kernel_vae.lr=-1",
    "kernel_vae.epochs=0", "kernel_vae.batch_size=0", "kernel_vae.seed=99999999999999999999",
    "kernel_vae.schedule=cosine", "kernel_vae.mixed_precision=fp8", "kernel_vae.alpha=-1",
    "alignment.init=kernel_vae", "one_step.augment_snr_db=[30, 0]", "one_step.augment_snr_db=[-1e6, 0]",
    "physics.ls_lambda_grid=[0]", "physics.sweep_snr_db=[1e9]", "physics.hybrid_steps=-1", "nosection.key=1",
    "simulation.nokey=1", "simulation=1",
]
for _override in BAD_OVERRIDES:
    def _bad(tmp, override=_override):
        from qpi_utils.config import get_profile
        get_profile("smoke", [override])
        raise Silent(f"{override} was accepted")
    case("settings", f"--set {_override}")(_bad)


@case("sizes", "a dataset of 10**7 kernels")
def _(tmp):
    from qpi_utils.config import get_profile
    from qpi_utils.data import simulate_dataset
    simulate_dataset(get_profile("smoke", {"simulation.n_kernels": 10**7}).simulation, progress=False)
    raise Silent("simulated 10**7 kernels")


@case("sizes", "a dataset of 10**4 x 10**6 observations via qpi simulate")
def _(tmp):
    code, err = cli("simulate", "--profile", "smoke", "--out", str(tmp / "d"), "--no-progress",
                    "--set", "simulation.n_kernels=10000", "--set", "simulation.n_observations=1000000")
    return _cli_outcome(code, err)


@case("sizes", "a network of 16384 channels")
def _(tmp):
    from qpi_utils.config import get_profile
    from qpi_utils.models import build_one_step
    build_one_step(get_profile("smoke", {"model.block_out_channels": [4096, 8192, 16384, 16384]}).model)
    raise Silent("built a network of 16384 channels")


@case("sizes", "a network with 1000 layers per block")
def _(tmp):
    from qpi_utils.config import get_profile
    from qpi_utils.models import build_one_step
    build_one_step(get_profile("smoke", {"model.block_out_channels": [512, 1024, 2048, 2048],
                                         "model.layers_per_block": 1000, "model.norm_num_groups": 4}).model)
    raise Silent("built a network with 1000 layers per block")


@case("sizes", "max_scatterers of 10**9")
def _(tmp):
    from qpi_utils.config import get_profile
    from qpi_utils.data import simulate_dataset
    simulate_dataset(get_profile("smoke", {"simulation.max_scatterers": 10**9}).simulation, progress=False)
    raise Silent("simulated with 10**9 scatterer slots")


def _cli_outcome(code: int, err: str) -> str:
    if "Traceback" in err or code not in (0, 2):
        raise RuntimeError(f"exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    if code == 2 and err.strip():
        return "clear"
    return "correct"


# ------------------------------------------------------------------------------------------
# ownership: a user's folders and files


def _smoke_run(tmp: Path) -> Path:
    run = tmp / "run"
    code, err = cli("simulate", "--profile", "smoke", "--run-dir", str(run), "--no-progress")
    assert code == 0, err
    return run


def _user_folder(tmp: Path) -> Path:
    folder = tmp / "mine"
    folder.mkdir()
    (folder / "notes.md").write_text("my notes")
    (folder / "meta.json").write_text('{"my": "meta"}')
    (folder / "figure.png").write_bytes(b"\x89PNG")
    return folder


def _guard(tmp: Path, folder: Path, action) -> str:
    before = snapshot(folder)
    outcome = action()
    after = snapshot(folder)
    lost = [k for k, v in before.items() if after.get(k) != v]
    if lost:
        raise DataLoss(f"changed or removed: {lost}")
    return outcome


class DataLoss(Exception):
    pass


@case("ownership", "qpi simulate --out a user's folder that holds a meta.json")
def _(tmp):
    folder = _user_folder(tmp)
    return _guard(tmp, folder, lambda: _cli_outcome(*cli("simulate", "--profile", "smoke", "--out", str(folder),
                                                          "--no-progress")))


@case("ownership", "qpi simulate into a dataset folder a user added a file to")
def _(tmp):
    run = _smoke_run(tmp)
    (run / "data" / "my_notes.txt").write_text("mine")
    before = (run / "data" / "my_notes.txt").read_text()
    outcome = _cli_outcome(*cli("simulate", "--profile", "smoke", "--run-dir", str(run), "--no-progress"))
    if not (run / "data" / "my_notes.txt").is_file() or (run / "data" / "my_notes.txt").read_text() != before:
        raise DataLoss("the user's file in the dataset folder is gone")
    return outcome


for _name in (".data.tmp-1_abc", ".data.old-1", ".data.tmp-99999999_x", "data.tmp-1"):
    def _lookalike(tmp, name=_name):
        run = _smoke_run(tmp)
        look = run / name
        look.mkdir()
        PLANTED.append(look)
        (look / "precious.txt").write_text("mine")
        cli("check", "--profile", "smoke", "--run-dir", str(run))
        cli("simulate", "--profile", "smoke", "--run-dir", str(run), "--no-progress", "--force")
        if not (look / "precious.txt").is_file():
            raise DataLoss(f"a user's folder named {name} beside the dataset was deleted")
        return "correct"
    case("ownership", f"a user's folder named {_name} beside a dataset, then check and simulate --force")(_lookalike)

for _file in ("table.md", "table.csv", "per_sample.csv", "provenance.json", "scores.json"):
    def _results(tmp, name=_file):
        run = _trained_smoke_run(tmp)
        out = tmp / "myresults"
        out.mkdir()
        (out / name).write_text("mine")
        return _guard(tmp, out, lambda: _cli_outcome(*cli("evaluate", "--profile", "smoke", "--run-dir", str(run),
                                                            "--results-dir", str(out), "--no-progress")))
    case("ownership", f"qpi evaluate --results-dir a folder with the user's {_file}")(_results)


@case("ownership", "qpi simulate --out a file")
def _(tmp):
    f = tmp / "file.txt"
    f.write_text("mine")
    return _guard(tmp, tmp, lambda: _cli_outcome(*cli("simulate", "--profile", "smoke", "--out", str(f), "--no-progress")))


@case("ownership", "qpi simulate --out the current folder")
def _(tmp):
    (tmp / "keep.txt").write_text("mine")
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        return _guard(tmp, tmp, lambda: _cli_outcome(*cli("simulate", "--profile", "smoke", "--out", ".", "--no-progress")))
    finally:
        os.chdir(cwd)


_TRAINED = {}


def _trained_smoke_run(tmp: Path) -> Path:
    """A trained smoke run (made once, copied per case)."""
    if "run" not in _TRAINED:
        base = Path(tempfile.mkdtemp(prefix="qpi-probe-trained-"))
        run = _smoke_run(base)
        for step in ("train-kernel-vae", "train-alignment", "train-one-step", "train-one-step-paper"):
            code, err = cli(step, "--profile", "smoke", "--run-dir", str(run), "--no-progress")
            if code != 0 and "one-step-paper" not in step:
                raise RuntimeError(err)
        _TRAINED["run"] = run
    dst = tmp / "trained"
    shutil.copytree(_TRAINED["run"], dst)
    return dst


# ------------------------------------------------------------------------------------------
# settings the run's data were not made with

for _override in ("simulation.n_observations=4", "simulation.max_scatterers=12", "simulation.snr_db=10",
                  "simulation.seed=3", "simulation.position_error=0.5", "simulation.outside_margin=8"):
    for _command in ("check", "train-kernel-vae"):
        def _mismatch(tmp, override=_override, command=_command):
            run = _smoke_run(tmp)
            code, err = cli(command, "--profile", "smoke", "--run-dir", str(run), "--no-progress", "--set", override)
            if code == 0:
                raise Silent(f"{command} ran with {override} on data made without it")
            return _cli_outcome(code, err)
        case("settings", f"qpi {_command} --set {_override} on a run with data")(_mismatch)


# ------------------------------------------------------------------------------------------
# damaged models

def _damage(tmp: Path, how: str) -> Path:
    import torch
    run = _trained_smoke_run(tmp)
    path = run / "models" / "alignment.pt"
    if how == "empty":
        path.write_bytes(b"")
    elif how == "random bytes":
        path.write_bytes(os.urandom(2000))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif how == "a checkpoint copied over it":
        shutil.copy(run / "checkpoints" / "alignment.pt", path)
    else:
        blob = torch.load(path, weights_only=False)
        state = blob["state_dict"]
        key = next(k for k, v in state.items() if v.is_floating_point())
        if how == "a NaN weight":
            state[key] = state[key].clone().fill_(float("nan"))
        elif how == "a missing key":
            state.pop(key)
        elif how == "a wrong shape":
            state[key] = torch.zeros(3, 3)
        elif how == "no summary":
            blob.pop("summary")
        torch.save(blob, path)
    return run


for _how in ("empty", "random bytes", "truncated", "a checkpoint copied over it", "a NaN weight", "a missing key",
             "a wrong shape", "no summary"):
    for _command in ("check", "evaluate"):
        def _damaged(tmp, how=_how, command=_command):
            run = _damage(tmp, how)
            code, err = cli(command, "--profile", "smoke", "--run-dir", str(run), "--no-progress")
            if code == 0:
                raise Silent(f"qpi {command} accepted a model file with {how}")
            return _cli_outcome(code, err)
        case("damaged models", f"qpi {_command} with a step-2 model file: {_how}")(_damaged)


# ------------------------------------------------------------------------------------------
# headers and payloads of real STM files

def _shared() -> Path:
    return Path(os.environ.get("QPI_DATA_DIR") or ROOT.parent / "shared" / "data")


CREATEC_MUTATIONS = [
    (b"Length x[A]=1087.5332", b"Length x[A]=-5"), (b"Length x[A]=1087.5332", b"Length x[A]=0"),
    (b"Length x[A]=1087.5332", b"Length x[A]=nan"), (b"Length y[A]=1087.5332", b"Length y[A]=abc"),
    (b"GainZ / GainZ=3", b"GainZ / GainZ=0"), (b"Dacto[A]z=0.00018", b"Dacto[A]z=0"),
    (b"Num.X / Num.X=512", b"Num.X / Num.X=0"), (b"Num.X / Num.X=512", b"Num.X / Num.X=-512"),
    (b"Num.X / Num.X=512", b"Num.X / Num.X=99999999"), (b"Num.Y / Num.Y=512", b"Num.Y / Num.Y=7.5"),
    (b"Channels / Channels=4", b"Channels / Channels=0"), (b"Channels / Channels=4", b"Channels / Channels=1e400"),
    (b"Num.X / Num.X=512", b""), (b"BiasVoltage / BiasVolt.[mV]=50.00", b"BiasVoltage / BiasVolt.[mV]=inf"),
]
for _old, _new in CREATEC_MUTATIONS:
    def _createc(tmp, old=_old, new=_new):
        from qpi_utils import realdata
        raw = (_shared() / "Cu111_createc_terrace.dat").read_bytes()
        path = tmp / "mutated.dat"
        path.write_bytes(raw.replace(old, new, 1))
        img = realdata.read_stm(path)
        expect(np.isfinite(img.data).all() and min(img.pixel_nm) > 0 and np.ptp(img.data) > 0,
               "an image with non-finite, flat data or a non-positive pixel size")
        return "correct"
    case("headers", f"Createc header {_old.decode()} -> {_new.decode() or '(removed)'}")(_createc)


@case("headers", "a Createc file cut after its header")
def _(tmp):
    from qpi_utils import realdata
    raw = (_shared() / "Cu111_createc_terrace.dat").read_bytes()
    path = tmp / "cut.dat"
    path.write_bytes(raw[: raw.find(b"DATA") + 10])
    realdata.read_stm(path)
    raise Silent("read a file with no payload")


@case("headers", "a Createc payload of random bytes")
def _(tmp):
    from qpi_utils import realdata
    raw = (_shared() / "Cu111_createc_terrace.dat").read_bytes()
    i = raw.find(b"DATA") + 4
    path = tmp / "noise.dat"
    path.write_bytes(raw[:i] + os.urandom(len(raw) - i))
    realdata.read_stm(path)
    raise Silent("read random bytes as an image")


for _cut in (100, 2000, 50000):
    def _sxm(tmp, cut=_cut):
        from qpi_utils import realdata
        raw = (_shared() / "FeSe_topography.sxm").read_bytes()
        path = tmp / "cut.sxm"
        path.write_bytes(raw[:cut])
        realdata.read_stm(path, channel="Z")
        raise Silent(f"read an .sxm cut at {cut} bytes")
    case("headers", f"a Nanonis .sxm cut at {_cut} bytes")(_sxm)


@case("headers", "a .txt file given to read_stm")
def _(tmp):
    from qpi_utils import realdata
    (tmp / "notes.txt").write_text("hello")
    realdata.read_stm(tmp / "notes.txt")
    raise Silent("read a text file as an STM image")


@case("headers", "an upper-case .SXM extension")
def _(tmp):
    from qpi_utils import realdata
    path = tmp / "FESE.SXM"
    shutil.copy(_shared() / "FeSe_topography.sxm", path)
    img = realdata.read_stm(path, channel="Z")
    expect(np.isfinite(img.data).all(), "non-finite data")
    return "correct"


# ------------------------------------------------------------------------------------------
# faults


@case("faults", "a full disk while training step 1")
def _(tmp):
    import torch
    run = _smoke_run(tmp)
    real = torch.save

    def full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0: file write failed")
    torch.save = full
    try:
        return _cli_outcome(*cli("train-kernel-vae", "--profile", "smoke", "--run-dir", str(run), "--no-progress"))
    finally:
        torch.save = real


@case("faults", "a full disk while writing the dataset")
def _(tmp):
    real = np.save

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    np.save = full
    try:
        return _cli_outcome(*cli("simulate", "--profile", "smoke", "--run-dir", str(tmp / "run"), "--no-progress"))
    finally:
        np.save = real


@case("faults", "a checkpoint save killed half-way (a partial .tmp file), then qpi check")
def _(tmp):
    import subprocess
    run = _trained_smoke_run(tmp)
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True).stdout)
    (run / "checkpoints" / f".alignment.tmp-{pid}.pt").write_bytes(b"half")
    code, err = cli("check", "--profile", "smoke", "--run-dir", str(run))
    code2, err2 = cli("train-alignment", "--profile", "smoke", "--run-dir", str(run), "--no-progress", "--restart")
    if (run / "checkpoints" / f".alignment.tmp-{pid}.pt").exists():
        raise Leftover("a killed writer's partial file was never removed")
    return _cli_outcome(code2, err2)


class Leftover(Exception):
    pass


@case("faults", "a notebook with merge markers in the chain")
def _(tmp):
    from qpi_lab.chain import NOTEBOOKS
    nbs = tmp / "nbs"
    nbs.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", nbs)
    p = nbs / "03_alignment.ipynb"
    p.write_text("<<<<<<< HEAD\n" + p.read_text() + "=======\n>>>>>>> theirs\n")
    code, err = cli("reproduce", "--profile", "smoke", "--run-dir", str(tmp / "run"), "--notebooks-dir", str(nbs),
                    "--results-dir", str(tmp / "res"), "--figures-dir", str(tmp / "fig"), "--no-progress")
    expect("03_alignment.ipynb" in err, "the error does not name the notebook")
    return _cli_outcome(2 if code else 0, err)


@case("faults", "a read-only run folder")
def _(tmp):
    run = tmp / "ro"
    run.mkdir()
    os.chmod(run, 0o500)
    try:
        if os.geteuid() == 0:
            return "skipped"  # root writes anyway: nothing to probe here
        return _cli_outcome(*cli("simulate", "--profile", "smoke", "--run-dir", str(run), "--no-progress"))
    finally:
        os.chmod(run, 0o700)


# ------------------------------------------------------------------------------------------


def run_case(fn, tmp: Path) -> tuple[str, str]:
    try:
        outcome = fn(tmp) or "correct"
        detail = ""
    except QpiError as exc:
        outcome, detail = "clear", str(exc).splitlines()[0][:140]
    except Silent as exc:
        outcome, detail = "silent", str(exc)
    except DataLoss as exc:
        outcome, detail = "data loss", str(exc)
    except Leftover as exc:
        outcome, detail = "leftover", str(exc)
    except Exception as exc:  # what a user would see as a raw traceback
        outcome = "traceback"
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:140] if str(exc) else ''}"
        detail += " | " + traceback.format_exc().strip().splitlines()[-3].strip()[:100]
    leftovers = [str(p.relative_to(tmp)) for p in tmp.rglob("*.tmp-*")
                 if not any(p == q or q in p.parents for q in PLANTED)]
    if leftovers and outcome not in ("data loss",):
        outcome, detail = "leftover", f"{leftovers[:3]} ({outcome}: {detail})"
    return outcome, detail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="also write the report here")
    ap.add_argument("--only", default=None, help="run only the cases whose class or description contains this")
    args = ap.parse_args()
    os.environ.setdefault("QPI_DATA_DIR", str(_shared()))
    _api_cases()
    counts: dict[str, dict[str, int]] = {}
    lines = []
    for klass, description, fn in CASES:
        if args.only and args.only not in klass and args.only not in description:
            continue
        with tempfile.TemporaryDirectory(prefix="qpi-probe-") as d:
            outcome, detail = run_case(fn, Path(d))
        counts.setdefault(klass, {}).setdefault(outcome, 0)
        counts[klass][outcome] += 1
        if outcome not in ("clear", "correct", "skipped"):
            lines.append(f"  [{outcome}] {klass}: {description}: {detail}")
        print(f"{outcome:>10}  {klass}: {description}", flush=True)
    total = {o: sum(c.get(o, 0) for c in counts.values()) for o in
             ("clear", "correct", "skipped", "traceback", "silent", "data loss", "leftover")}
    report = [f"hostile-input probe (tests/probe_hostile.py), {sum(total.values())} cases, smoke profile", ""]
    report += [f"{k:>15}: " + ", ".join(f"{o} {n}" for o, n in sorted(c.items())) for k, c in counts.items()]
    report += ["", "total: " + ", ".join(f"{o} {n}" for o, n in total.items()), ""]
    report += ["cases that are neither clear nor correct:"] + (lines or ["  none"])
    ok = total["data loss"] == 0 and total["silent"] == 0 and total["leftover"] == 0 and total["traceback"] <= 5
    report += ["", "PASS" if ok else "FAIL: the probe allows no data loss, silent result or leftover, and at most 5 tracebacks"]
    text = "\n".join(report) + "\n"
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
