"""Every benchmark script runs end to end at a tiny size and prints what its committed output holds.

The speed figures of docs/speed.md come from ``benchmarks/`` (their outputs are committed under
``results/benchmarks/``); a script that no longer runs against today's ``qpi_utils`` could not
regenerate them. Each runs here as a user runs it (``python benchmarks/NAME.py``, from the
checkout; its ``__main__`` in the test's interpreter, see :func:`_run`), at the smoke profile or
the smallest sizes its arguments allow; a refusal is checked for its message, and in a process of its
own where its exit code and the absence of a traceback are what matters. Not run here:
``bench_threads.py``, which starts eight worker processes and waits for them to settle (minutes
whatever the size), and ``bench_install.py``, two fresh installs of every dependency (its rule is
tested on stand-in installs).
"""

import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATIO = re.compile(r"\d+\.\d+x")


def _run(script: str, *args: str) -> str:
    """What ``python benchmarks/SCRIPT ARGS`` prints, run from the checkout as Python runs a script
    (its ``__main__``, with the benchmarks folder first on the import path) but in this interpreter:
    starting Python, torch and diffusers again for each script costs more than most of them run.
    A script that fails fails the test with its exception; one that exits non-zero, with its code;
    one that exits with a message raises that SystemExit for the test to check."""
    path = ROOT / "benchmarks" / script
    out, argv, sys_path, cwd = io.StringIO(), sys.argv, list(sys.path), os.getcwd()
    sys.argv, sys.path[:0] = [str(path), *args], [str(path.parent)]
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a refusal with its message: the caller checks it
            raise
        assert not exc.code, f"{script} {' '.join(args)} exited with {exc.code}:\n{out.getvalue()[-3000:]}"
    finally:
        sys.argv, sys.path[:] = argv, sys_path
        os.chdir(cwd)
    return out.getvalue()


@pytest.mark.parametrize("script, args, expect", [
    ("bench_simulate.py", ["--kernels", "2", "--observations", "3", "--loop-observations", "2"], RATIO),
    ("bench_train.py", ["--profile", "smoke", "--batches", "1"], RATIO),
    ("bench_layouts.py", ["--profile", "smoke", "--batches", "1"], RATIO),
    ("bench_batch_size.py", ["--profile", "smoke", "--sizes", "4", "--batches", "1"], RATIO),
    ("bench_evaluate.py", ["--profile", "smoke", "--images", "50", "--repeats", "1"], RATIO),  # >= 5 per kernel: the splits need them
    ("bench_widgets.py", ["--repeats", "1"], RATIO),
    ("bench_least_squares.py", ["--profile", "smoke", "--images", "4"], RATIO),
    ("chain_breakdown.py", ["--profile", "quick"], re.compile(r"notebook chain .*min")),
])
def test_a_benchmark_runs_and_prints_its_measurements(script, args, expect):
    assert expect.search(_run(script, *args))


def test_the_hybrid_benchmarks_run_on_a_trained_run(trained_run, smoke_profile):
    run, _ = trained_run
    out = _run("hybrid_variants.py", "--profile", "smoke", "--run-dir", str(run), "--per-kernel", "1")
    assert "hybrid_subpixel, latent only" in out and "0.5 px and 20 dB" in out
    out = _run("edge_check.py", "--profile", "smoke", "--run-dir", str(run), "--per-kernel", "1")
    assert "all four (realistic copy)" in out and re.search(r"^chosen: (EdgeCheck\(|None)", out, re.M)
    out = _run("hybrid_precision.py", "--profile", "smoke", "--run-dir", str(run), "--per-kernel", "1")
    assert "realistic copy | hybrid_subpixel" in out and RATIO.search(out)
    assert re.search(r"^decoder autocast kept: (True|False)$", out, re.M)
    # smoke keeps the sub-pixel hybrid's position refinement on: the realistic-data benchmark, which
    # reads the acceptance rule off the output, refuses it with the reason instead of misreading it
    assert smoke_profile.physics.hybrid_position_lr > 0
    # (in this interpreter: a message given to SystemExit is what Python prints to stderr, with exit code 1)
    with pytest.raises(SystemExit, match="hybrid_position_lr"):
        _run("hybrid_realistic.py", "--profile", "smoke", "--run-dir", str(run), "--per-kernel", "1")


def test_least_squares_variants_write_their_tables(trained_run, tmp_path):
    run, _ = trained_run
    out = _run("least_squares_variants.py", "--profile", "smoke", "--run-dir", str(run), "--out", str(tmp_path),
               "--snr-db", "10")
    assert "lambda chosen on validation" in out and (tmp_path / "clean").is_dir()


def test_the_precision_rule_keeps_autocast_only_within_its_tolerance(monkeypatch):
    """benchmarks/hybrid_precision.py's rule: autocast stays only if no (hybrid, condition) loses
    more than 1 % of float32's mean RMSE (the README and DECODER_AUTOCAST rest on it)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from hybrid_precision import verdict

    assert verdict([0.1, 0.02], [0.1005, 0.0199]) is True
    assert verdict([0.1, 0.02], [0.1005, 0.0203]) is False  # 1.5 % worse in one case is enough to drop it
    with pytest.raises(ValueError, match="one float32 and one autocast RMSE per case"):
        verdict([0.1], [])


def test_the_patience_replay_follows_the_stopping_rule(monkeypatch, tmp_path):
    """benchmarks/patience_replay.py replays the kit's rule (keep the lowest validation RMSE, stop
    after `patience` epochs without a lower one) on recorded curves; the README's statement that a
    patience of 3 keeps the same epochs rests on it."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from patience_replay import replay

    curve = [0.3, 0.2, 0.1, 0.15, 0.12, 0.11, 0.09, 0.2]
    assert replay(curve, 1) == (4, 3)  # the first epoch without a lower value stops it
    assert replay(curve, 3) == (6, 3)
    assert replay(curve, 4) == (8, 7)  # epoch 7 improves within the patience: it runs on to the end
    with pytest.raises(ValueError, match="empty"):
        replay([], 2)
    with pytest.raises(ValueError, match="patience must be >= 1"):
        replay(curve, 0)
    logs = tmp_path / "seed-0" / "logs"
    logs.mkdir(parents=True)
    (logs / "one_step.csv").write_text("epoch,val_rmse,seconds\n" + "".join(
        f"{i + 1},{v},{10.0}\n" for i, v in enumerate(curve)))
    out = _run("patience_replay.py", "--run-dir", str(tmp_path), "--patience", "3", "4")
    assert re.search(r"seed-0 +one_step +3 +6 +3 +0\.10000 +60\.0 +0\.75x", out)
    assert re.search(r"seed-0 +one_step +4 +8 +7 +0\.09000 +80\.0 +1\.00x", out)
    (logs / "alignment.csv").write_text("epoch,loss\n1,0.5\n")  # not a qpi training log: named, not a KeyError
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "patience_replay.py"), "--run-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "alignment.csv" in bad.stderr and "seconds, val_rmse" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_time_to_accuracy_counts_seconds_to_the_before_runs_best(tmp_path):
    """benchmarks/time_to_accuracy.py: the target is the before run's best validation RMSE; each
    run's seconds are summed up to its first epoch at or below it, step 1 added where a network
    starts from it; runs of different data are refused."""
    def run(name, curves):
        (tmp_path / name / "logs").mkdir(parents=True)
        (tmp_path / name / "data").mkdir()
        (tmp_path / name / "data" / "meta.json").write_text('{"content_hash": "abc"}')
        for step, (vals, secs) in curves.items():
            (tmp_path / name / "logs" / f"{step}.csv").write_text("epoch,val_rmse,seconds\n" + "".join(
                f"{i + 1},{v},{secs}\n" for i, v in enumerate(vals)))
    run("old", {"kernel_vae": ([0.3, 0.2], 5.0), "alignment": ([0.5, 0.4, 0.3], 10.0)})
    run("new", {"kernel_vae": ([0.25, 0.1], 2.0), "alignment": ([0.35, 0.3, 0.2], 4.0),
                "one_step_paper": ([0.9], 1.0)})
    out = _run("time_to_accuracy.py", "--before", str(tmp_path / "old"), "--after", str(tmp_path / "new"))
    assert "| kernel_vae | 0.2000 | 10 | 4 | 0.1000 | 4 |" in out
    assert "| alignment | 0.3000 | 40 | 12 | 0.2000 | 16 |" in out  # step 1's 10 s / 4 s included
    assert "| one_step_paper | - | not trained before |" in out
    (tmp_path / "new" / "data" / "meta.json").write_text('{"content_hash": "xyz"}')
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "time_to_accuracy.py"), "--before",
                          str(tmp_path / "old"), "--after", str(tmp_path / "new")], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "different datasets" in bad.stderr and "Traceback" not in bad.stderr


def test_the_install_benchmark_compares_like_with_like(monkeypatch, tmp_path, capsys):
    """benchmarks/bench_install.py: the ratio is uv's time over pip's, written with the machine;
    two installs that do not hold the same package versions are a failure, not a speed-up."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_install

    times = {"pip": 50.0, "uv": 30.0}
    monkeypatch.setattr(bench_install, "install", lambda name, folder: (times[name], {"torch": "2.13.0+cpu"}))
    assert bench_install.main(["--out", str(tmp_path / "install.json")]) == 0
    record = json.loads((tmp_path / "install.json").read_text())
    assert record["uv_over_pip"] == 0.6 and record["seconds"] == {"pip": [50.0], "uv": [30.0]}
    assert record["machine"]["logical_cores"] >= 1 and "bench_install.py" in record["command"]
    monkeypatch.setattr(bench_install, "install", lambda name, folder: (times[name], {"torch": name}))
    assert bench_install.main([]) == 1
    assert "the two installs differ: torch pip pip uv uv" in capsys.readouterr().out
