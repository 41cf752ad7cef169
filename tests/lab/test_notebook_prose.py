"""The notebooks' prose cannot drift from the numbers: every decimal number a notebook's markdown
quotes comes from a source this test can read, and every running time a chapter card quotes
matches the committed chain times.

Sources of a quoted number, at the precision the markdown prints it: the notebook's own code and
committed outputs (a number read at execution time is printed there), the paper's numbers
(``qpi_utils.paper``), the ``quick`` profile's values, the simulator's constants, the surface-state
physics of ``qpi_utils.realdata`` (its constants and the standing-wave periods they give, over the
published effective-mass range), and the defaults of the kit's public functions the prose names.
"""

import inspect
import json
import re
from pathlib import Path

import pytest

from qpi_lab.chain import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?(?![\w.])")
TIME = re.compile(r"at the `quick` profile: (about (\d+) min|under a minute)")
ALL_NOTEBOOKS = NOTEBOOKS
CU111_MASSES = (0.38, 0.46)  # published effective masses of the Cu(111) surface state (notebook 08 cites them)


def _cells(name: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]


def _markdown(name: str) -> str:
    return "\n".join("".join(c["source"]) for c in _cells(name) if c["cell_type"] == "markdown")


def _code_and_outputs(name: str) -> str:
    texts = []
    for c in _cells(name):
        if c["cell_type"] != "code":
            continue
        texts.append("".join(c["source"]))
        for o in c.get("outputs", []):
            texts.append("".join(o.get("text", "")))
            texts += ["".join(o.get("data", {}).get(k, "")) for k in ("text/plain", "text/markdown")]
    return "\n".join(texts)


def _kit_numbers() -> list[float]:
    """Numbers the kit itself defines: the paper's, the quick profile's, the simulator's and the
    surface-state physics' constants, the defaults of public functions."""
    from qpi_utils import baselines, config, realdata, simulate

    values = [float(x) for x in NUMBER.findall((ROOT / "qpi_utils" / "paper.py").read_text())]
    values += [float(x) for x in NUMBER.findall(json.dumps(config.get_profile("quick").to_dict(), default=str))]
    values += [float(x) for x in NUMBER.findall(json.dumps(simulate.model_constants()))]
    for surface in (realdata.AG111, realdata.CU111):
        values += [abs(v) for v in surface.values()]
    values.append(realdata.standing_wave_period_nm(0.05, **realdata.AG111))
    values += [realdata.standing_wave_period_nm(0.05, realdata.CU111["band_bottom_eV"], m) for m in CU111_MASSES]
    values += list(CU111_MASSES)
    for module in (baselines, realdata, simulate):
        for _, fn in inspect.getmembers(module, inspect.isfunction):
            values += [float(p.default) for p in inspect.signature(fn).parameters.values()
                       if isinstance(p.default, float)]
    return values


def _matches(text: str, values) -> bool:
    decimals = len(text.split(".")[1].split("e")[0])
    x = float(text)
    return any(abs(v - x) <= 0.5 * 10 ** -decimals + 1e-12 for v in values)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_every_number_in_the_prose_has_a_source(name):
    kit = _kit_numbers()
    own = [float(x) for x in NUMBER.findall(_code_and_outputs(name))]
    missing = [n for n in NUMBER.findall(_markdown(name)) if not _matches(n, own + kit)]
    assert not missing, f"{name}: numbers in the prose that no result, output or constant holds: {missing}"


def test_the_prose_check_can_fail():
    assert not _matches("0.4321", _kit_numbers() + [float(x) for x in NUMBER.findall(_code_and_outputs("05_results"))])


def test_each_chapter_quotes_the_time_the_committed_chain_took():
    """The cards' ``quick`` times against ``results/quick/chain_times.json`` (the notebooks run in order
    from nothing by ``qpi reproduce``: training happens inside 02-04): "about N min" within a factor
    of 1.5 either way, "under a minute" below 60 s."""
    times = json.loads((ROOT / "results" / "quick" / "chain_times.json").read_text())
    for name in NOTEBOOKS:
        found = TIME.search(_markdown(name))
        assert found, f"{name}: the chapter card gives no quick time"
        seconds = times[name]
        if found.group(2) is None:
            assert seconds < 60, f"{name}: 'under a minute', but the chain took {seconds:.0f} s"
        else:
            minutes = int(found.group(2))
            assert minutes / 1.5 <= seconds / 60 <= minutes * 1.5, (
                f"{name}: 'about {minutes} min', but the chain took {seconds / 60:.1f} min")
