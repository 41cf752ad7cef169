"""Real-browser tests: headless Chromium from the Debian packages, driven by Playwright's Python
package against that system browser (no browser download). `.ci/run` installs the package
(`apt-get install chromium`) where it can; where no browser can be found these tests skip and
say why."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the flags a container needs (no user namespaces, no GPU) and none that reach the network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio"]


def chromium_path() -> str | None:
    """$QPI_CHROMIUM, else Debian's chromium on the PATH."""
    for candidate in (os.environ.get("QPI_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: install Debian's package (apt-get install chromium, as .ci/run does) or set "
                    "QPI_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python package is missing: pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    """Poll ``url`` until it answers; fail with the server's log if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"server did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def start_server(args: list[str], cwd: Path, env: dict, url: str, log: Path, timeout: float = 90.0):
    out = open(log, "w")
    process = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(url, process, timeout, log)
    except BaseException:
        process.kill()
        raise
    return process, out


def stop_server(process: subprocess.Popen, out) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    out.close()
