"""The paper's numbers (qpi_utils.paper): where the paper repeats a number the kit holds it once,
and every hyperparameter names its source."""
from qpi_utils.paper import HYPERPARAMETERS, TABLE1_RMSE, TABLE1_TEXT_OOD_ONE_STEP, TABLE2_RMSE, TABLE3_RMSE, V1


def test_the_numbers_the_paper_repeats_agree():
    # Table 2's "with symmetric loss" row is Table 1's two-step OOD result
    assert TABLE2_RMSE["with"] == TABLE1_RMSE[("OOD", "two_step")]
    # the one place the paper contradicts itself is kept, labelled, beside the table's number
    assert TABLE1_TEXT_OOD_ONE_STEP != TABLE1_RMSE[("OOD", "one_step_paper")]


def test_the_papers_claims_are_what_the_kit_tests():
    assert TABLE1_RMSE[("ID", "two_step")] < TABLE1_RMSE[("ID", "one_step_paper")]
    assert TABLE1_RMSE[("OOD", "two_step")] < TABLE1_RMSE[("OOD", "one_step_paper")]
    assert TABLE2_RMSE["with"] < TABLE2_RMSE["without"] and TABLE3_RMSE["pretrained"] < TABLE3_RMSE["scratch"]


def test_every_hyperparameter_names_its_source():
    assert {source for _, _, source in HYPERPARAMETERS} <= {f"{V1}, text", "authors' code"}
