import subprocess
import sys

import pytest

from qpi_utils.cli import main
from qpi_utils.data import load_dataset


def test_simulate_writes_a_loadable_dataset(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["simulate", "--profile", "smoke", "--out", str(out), "--no-progress",
                 "--set", "simulation.n_observations=3"]) == 0
    ds = load_dataset(out, verify=True)
    assert ds.observations.shape == (10, 3, 64, 64)
    assert "content hash" in capsys.readouterr().out


def test_bad_override_is_a_clear_error(tmp_path, capsys):
    code = main(["simulate", "--profile", "smoke", "--out", str(tmp_path / "d"), "--set", "simulation.n_kernel=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown key(s) simulation.n_kernel" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_every_help_page_prints(capsys):
    """`qpi --help` and each command's --help print (a literal % in a command's help once made
    argparse raise a TypeError for the top-level page)."""
    from qpi_utils.cli import COMMANDS

    for argv in (["--help"], *([name, "--help"] for name in COMMANDS)):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0, argv
        out = capsys.readouterr().out
        assert "usage: qpi" in out, argv
        if argv == ["--help"]:
            assert "95 % interval" in out and all(name in out for name in COMMANDS)


def test_console_script_help_explains_itself():
    out = subprocess.run([sys.executable, "-m", "qpi_utils.cli", "simulate", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--profile" in out and "--out" in out and "smoke" in out
