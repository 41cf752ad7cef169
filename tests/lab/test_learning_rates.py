"""Tests of the learning-rate rule (qpi_lab.learning_rates): chosen on validation, the same for
every network, and the quick profile names what the committed run of the rule chose."""
import json

import pytest
from hypothesis import given, strategies as st

from qpi_lab.learning_rates import GRID, TIE, _choose, choose_learning_rates
from qpi_utils.config import TRAIN_SECTIONS, get_profile
from qpi_utils.runs import RunLayout, project_root


@given(st.dictionaries(st.sampled_from([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]),
                       st.floats(0.001, 1.0, allow_nan=False), min_size=1))
def test_choice_is_the_smallest_rate_within_the_tie_of_the_best(scores):
    chosen = _choose(scores)
    best = min(scores.values())
    assert scores[chosen] <= best * (1 + TIE)
    assert all(lr >= chosen for lr, v in scores.items() if v <= best * (1 + TIE))


def test_every_trained_network_has_a_grid_of_the_same_size_after_step_1():
    assert set(GRID) == set(TRAIN_SECTIONS)
    assert len({len(GRID[s]) for s in GRID if s != "kernel_vae"}) == 1  # the same tuning budget


def test_rule_runs_on_validation_and_trials_stay_in_their_variants(run_dir):
    """At smoke: every grid rate trains, in its own variant; the run's own models are untouched."""
    profile = get_profile("smoke")
    layout = RunLayout.for_profile(profile, run_dir)
    out = choose_learning_rates(profile, layout, progress=False)
    assert set(out["steps"]) == set(GRID)
    for step, rec in out["steps"].items():
        assert rec["chosen"] in GRID[step]
        assert set(rec["best_val_rmse"]) == {f"{lr:g}" for lr in GRID[step]}
        assert rec["chosen"] == _choose({float(k): v for k, v in rec["best_val_rmse"].items()})
    assert not layout.model("alignment").exists()
    chosen_step1 = out["steps"]["kernel_vae"]["chosen"]
    for lr in GRID["alignment"]:  # step 2's trials start from the chosen step-1 VAE, copied once
        assert layout.variant(f"lr-alignment-{lr:g}").model("kernel_vae").is_file()
    assert layout.variant(f"lr-kernel_vae-{chosen_step1:g}").model("kernel_vae").is_file()


def test_quick_profile_names_the_rates_its_committed_rule_run_chose():
    path = project_root() / "results" / "quick" / "learning_rates.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `qpi learning-rates --profile quick`")
    chosen = {step: rec["chosen"] for step, rec in json.loads(path.read_text())["steps"].items()}
    quick = get_profile("quick")
    assert chosen == {step: getattr(quick, TRAIN_SECTIONS[step]).lr for step in GRID}
