"""The kernel explorer (qpi_utils.widgets) seen working in a real JupyterLab: notebook 01 runs at
the smoke profile in headless Chromium, one slider moves, and the figure changes."""
from __future__ import annotations

import base64
import os
import secrets
import shutil
import time

import pytest

pytest.importorskip("playwright", reason="Playwright's Python package is missing: pip install -e '.[dev]'")

from .conftest import ROOT, free_port, start_server, stop_server

pytest.importorskip("jupyterlab", reason="JupyterLab is missing: pip install -e '.[dev]'")


@pytest.fixture
def lab(tmp_path, shared_data_dir):
    """JupyterLab serving a copy of notebook 01, with the smoke profile and a run directory of its
    own, its configuration and runtime files kept in ``tmp_path`` (nothing of the user's is read)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_simulate.ipynb", work)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "QPI_PROFILE": "smoke", "QPI_RUN_DIR": str(tmp_path / "run"), "QPI_DATA_DIR": shared_data_dir,
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
           "IPYTHONDIR": str(tmp_path / "ipython"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    env.pop("QPI_STATIC_WIDGETS", None)  # live widgets, as a user gets them
    args = ["-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}", "--allow-root",  # CI containers run as root
            # offline and quiet: no news feed, no update check, no extension index on the network
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly"]
    process, out = start_server(args, work, env, f"http://127.0.0.1:{port}/api?token={token}", tmp_path / "lab.log")
    yield f"http://127.0.0.1:{port}", token
    stop_server(process, out)


def _figure(page) -> bytes:
    """The PNG the explorer's output area shows now."""
    src = page.locator(".widget-interact .jp-OutputArea-output img").first.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,"), src
    return base64.b64decode(src.split(",", 1)[1])


def _start_the_notebooks_kernel(page, url: str, token: str, timeout: float = 120.0) -> None:
    """Until the server has an idle kernel for the notebook: a fresh JupyterLab may ask which
    kernel to start (the notebook's own, Python 3 in the kit's environment, is preselected), or
    start it without asking. The toolbar's execution indicator reads "idle" before any kernel
    exists, so the server's sessions tell first; then the page's own connection: the debugger's
    button, which the toolbar shows once the notebook has a kernel, and the indicator idle again."""
    choose = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if choose.is_visible():
            choose.click()
        sessions = page.request.get(f"{url}/api/sessions?token={token}").json()
        if any(s["path"].endswith("01_simulate.ipynb") and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions) and not choose.is_visible():
            break
        time.sleep(0.25)
    else:
        pytest.fail(f"no idle kernel for the notebook within {timeout:.0f} s; sessions: {sessions}")
    page.locator(".jp-NotebookPanel-toolbar .jp-DebuggerBugButton").wait_for(state="attached")
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()


def test_moving_a_slider_redraws_the_explorer(browser, lab):
    url, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(int(os.environ.get("QPI_BROWSER_TIMEOUT_MS", 120_000)))
    page.goto(f"{url}/lab/tree/01_simulate.ipynb?token={token}")
    page.locator(".jp-Notebook").wait_for()
    _start_the_notebooks_kernel(page, url, token)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    frequency = page.locator(".widget-interact .widget-slider").filter(has_text="frequency")
    try:
        frequency.wait_for()
    except Exception:
        page.screenshot(path=os.environ.get("QPI_SCREENSHOT", "/tmp/qpi-lab-failure.png"), full_page=True)
        raise
    page.locator(".widget-interact .jp-OutputArea-output img").first.wait_for()
    before = _figure(page)
    readout = frequency.locator(".widget-readout")
    shown = lambda: readout.evaluate("e => (e.value !== undefined ? e.value : e.textContent).trim()")
    assert shown() == "0.120"  # the explorer's first state

    readout.click()  # type a new value into the slider's readout, as a user can
    page.keyboard.press("Control+A")
    page.keyboard.type("0.200")
    page.keyboard.press("Enter")
    page.wait_for_function(
        """(before) => {
             const img = document.querySelector('.widget-interact .jp-OutputArea-output img');
             return img && img.src !== before;
           }""", arg="data:image/png;base64," + base64.b64encode(before).decode())
    after = _figure(page)
    assert shown() == "0.200"
    assert after != before and len(after) > 1000, "the figure did not change when the frequency slider moved"
    page.close()
