"""The book (`make book`: Jupyter Book from the committed notebooks and docs) in a real browser:
every page of its table of contents opens, shows its title and its figures, logs no console
error of its own and links to no missing page."""
from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

from .conftest import ROOT

pytest.importorskip("jupyter_book", reason="Jupyter Book is missing: pip install -e '.[dev]'")


def toc_pages() -> list[str]:
    """Every page of book/_toc.yml, as paths relative to the checkout without suffix."""
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            pages.append(chapter["file"])
    return pages


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The book built as `make book` builds it, served over HTTP on a free port."""
    out = tmp_path_factory.mktemp("book")
    build = subprocess.run([sys.executable, "-m", "qpi_lab.book", "--out", str(out)], cwd=ROOT,
                           capture_output=True, text=True)
    assert build.returncode == 0, f"the book did not build:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    html = out / "_build" / "html"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", html
    server.shutdown()


def test_every_page_renders_its_title_and_figures_without_errors(browser, site):
    base, html = site
    host = urlparse(base).netloc
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url', '')})") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url) if urlparse(r.url).netloc == host else None)
    refused: list[str] = []
    page.on("response", lambda r: refused.append(f"{r.url}: HTTP {r.status}")
            if urlparse(r.url).netloc == host and r.status >= 400 else None)
    links: set[str] = set()
    for name in toc_pages():
        errors.clear()
        url = urljoin(base, name + ".html")
        response = page.goto(url)
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
        page.wait_for_load_state("load")
        title = page.locator("main h1:visible").first
        assert title.count() == 1, f"{url}: no visible title"
        assert title.inner_text().strip(), f"{url}: empty title"
        images = page.evaluate("Array.from(document.querySelectorAll('main img')).map(i => "
                               "[i.currentSrc || i.src, i.complete && i.naturalWidth > 0])")
        local = [(src, ok) for src, ok in images if urlparse(src).netloc == host]
        assert all(ok for _, ok in local), f"{url}: images that did not load: {[s for s, ok in local if not ok]}"
        if name.startswith("notebooks/"):
            assert local, f"{url}: a chapter without a single figure"
        # the site's own errors only: the Colab badge and web fonts are outside it (offline here)
        own = [e for e in errors if host in e or not re.search(r"https?://", e)]
        assert not own, f"{url}: console errors: {own}"
        links |= {urldefrag(h)[0] for h in page.evaluate(
            "Array.from(document.querySelectorAll('a[href]')).map(a => a.href)") if urlparse(h).netloc == host}
    assert not refused, f"requests the site refused: {sorted(set(refused))}"
    # A request still pending when the next page.goto starts (the favicon, fetched after "load")
    # is aborted by the navigation, not by the site: only one that fails again on its own counts.
    still = [url for url in sorted(set(failed)) if not page.request.get(url).ok]
    assert not still, f"requests of the site that failed: {still}"
    missing = [link for link in sorted(links)
               if not (html / urlparse(link).path.lstrip("/")).exists()]
    assert not missing, f"links to pages the book does not have: {missing}"
    page.close()
