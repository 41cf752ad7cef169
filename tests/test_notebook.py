import pytest

from qpi_utils.notebook import REQUIRES, ensure, setup
from qpi_utils.runs import MissingArtefactError


def test_setup_gives_the_profile_and_a_notebook_layout(tmp_path, capsys):
    profile, run = setup("smoke", tmp_path)
    assert profile.name == "smoke" and run.root == tmp_path.resolve() and run.context == "notebook"
    assert "profile: smoke" in capsys.readouterr().out


def test_missing_pieces_are_named_or_made(tmp_path, capsys):
    profile, run = setup("smoke", tmp_path / "a", quiet=True)
    with pytest.raises(MissingArtefactError, match="run notebook 01_simulate.ipynb first"):
        ensure(profile, run, "kernel_vae", make_missing=False)
    setup("smoke", tmp_path / "a", requires=("data",), quiet=True)
    assert "the simulated dataset is missing: making it now, as notebook 01_simulate does" in capsys.readouterr().out
    assert run.data.joinpath("meta.json").is_file()
    with pytest.raises(MissingArtefactError, match="run notebook 02_kernel_vae.ipynb first"):
        ensure(profile, run, "alignment", make_missing=False)  # the data are there now; step 1 is not
    with pytest.raises(ValueError, match="unknown artefact"):
        setup("smoke", tmp_path / "a", requires=("tsne",), quiet=True)


def test_every_artefact_knows_what_it_needs():
    assert REQUIRES["alignment"] == ("data", "kernel_vae") and REQUIRES["data"] == ()
    assert all(need in REQUIRES for needs in REQUIRES.values() for need in needs)
