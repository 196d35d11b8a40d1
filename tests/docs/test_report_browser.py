"""The parity report as a person sees it: opened from disk in headless Chromium.

Chromium is Debian's package (CI installs it: ``apt-get install -y chromium``); when it is missing the tests
skip and say so: a test never installs packages itself. A probe script is injected into a copy of the page: it
records script errors and failed resource loads from the first moment, and after ``load`` writes how many images
are decoded into the DOM, which ``--dump-dom`` then shows. Console output is read from Chromium's log
(``--enable-logging=stderr``): the report has no scripts, so any console line but the probe's is an error."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the parity report in Chromium

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PROBE = """<script>
window.__probeErrors = [];
window.addEventListener("error", function (e) {
  window.__probeErrors.push(e.message || ("failed to load " + ((e.target && (e.target.src || e.target.href)) || "?")));
}, true);
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; });
  var d = document.createElement("div");
  d.id = "parity-probe";
  d.setAttribute("data-images", String(imgs.length));
  d.setAttribute("data-decoded", String(ok.length));
  d.setAttribute("data-errors", String(window.__probeErrors.length));
  d.setAttribute("data-sections", String(document.querySelectorAll("section").length));
  d.setAttribute("data-backlinks", String(document.querySelectorAll('section a[href="#summary"]').length));
  d.setAttribute("data-summary", String(document.querySelectorAll("#summary").length));
  // images drawn smaller than their natural size (their text would shrink below its size in pixels)
  d.setAttribute("data-shrunk", String(ok.filter(function (i) { return i.width < i.naturalWidth; }).length));
  document.body.appendChild(d);
  console.log("parity-probe-ran");
});
</script>"""


def find_chromium() -> str | None:
    """The Chromium binary, or None when it is not installed (nothing is installed here)."""
    for path in (CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if path and os.path.exists(path):
            return path
    return None


SKIP_REASON = (f"Chromium is not installed ({CHROMIUM} missing): install it with 'apt-get install -y chromium' "
               f"(.ci/run does) to run the browser tests")


@pytest.fixture(scope="module")
def chromium():
    found = find_chromium()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found


def test_missing_chromium_is_a_skip_not_an_install(monkeypatch):
    """Without Chromium the fixture finds nothing and runs nothing (no apt-get from a test)."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a!r}"))
    assert find_chromium() is None
    assert "apt-get install -y chromium" in SKIP_REASON


def _run_chromium(binary: str, args: list[str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


def inspect_page(binary: str, page: Path) -> dict:
    """Load ``page`` (a copy with the probe injected) and return what the probe and the console saw."""
    text = page.read_text(encoding="utf-8")
    probed = page.with_name(page.stem + ".probe.html")
    head = re.search(r"<head[^>]*>", text)
    assert head, "the page has no <head>"
    probed.write_text(text[: head.end()] + PROBE + text[head.end():], encoding="utf-8")
    proc = _run_chromium(binary, ["--enable-logging=stderr", "--v=0", "--window-size=1280,2000",
                                  "--virtual-time-budget=10000",
                                  "--dump-dom", probed.as_uri()])
    probe = re.search(r'<div id="parity-probe"([^>]*)>', proc.stdout)
    attrs = dict(re.findall(r'data-([a-z]+)="(\d+)"', probe.group(1))) if probe else {}
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return {
        "probe": {k: int(v) for k, v in attrs.items()},
        "console_errors": [line for line in console if "parity-probe-ran" not in line],
        "probe_logged": any("parity-probe-ran" in line for line in console),
    }


def screenshot(binary: str, page: Path, out: Path) -> None:
    proc = _run_chromium(binary, ["--window-size=1280,2000", "--hide-scrollbars", "--virtual-time-budget=10000",
                                  f"--screenshot={out}", page.as_uri()])
    assert out.exists(), f"no screenshot written: {proc.stderr[-2000:]}"


def test_probe_detects_broken_pages(chromium, tmp_path):
    """The check itself can fail: a page with an undecodable image and a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><section>x</section>'
                   '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ'
                   'DwAEhQGAhKmMIQAAAABJRU5ErkJggg=="><img src="data:image/png;base64,AAAA">'
                   "<script>undefinedFunction();</script></body></html>", encoding="utf-8")
    seen = inspect_page(chromium, bad)
    assert seen["probe_logged"]
    assert seen["probe"]["images"] == 2 and seen["probe"]["decoded"] == 1
    assert seen["probe"]["errors"] >= 1
    assert any("undefinedFunction" in line for line in seen["console_errors"])


def test_report_opens_in_chromium(chromium, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "parity", "report", "--out", str(out), "--only", "OneCycleLR"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = out / "index.html"
    html = page.read_text(encoding="utf-8")
    n_cases = len(re.findall(r"<section id=", html))
    assert n_cases >= 5
    # self-contained: every image is embedded, nothing is fetched from anywhere
    assert not re.search(r'<img[^>]+src="(?!data:image/png;base64,)', html)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)

    seen = inspect_page(chromium, page)
    assert seen["probe_logged"], "the probe script did not run: the page did not finish loading"
    assert seen["probe"]["sections"] == n_cases
    assert seen["probe"]["images"] == n_cases
    assert seen["probe"]["decoded"] == seen["probe"]["images"], seen
    assert seen["probe"]["errors"] == 0, seen
    assert seen["console_errors"] == []
    # every case links back to the table; plots are shown at their natural size (legend text stays >= 10 px)
    assert seen["probe"]["summary"] == 1 and seen["probe"]["backlinks"] == n_cases, seen
    assert seen["probe"]["shrunk"] == 0, seen

    shot = tmp_path / "report.png"
    screenshot(chromium, page, shot)
    keep = os.environ.get("PARITY_SCREENSHOT")  # set to a path to keep the screenshot and look at it
    if keep:
        shutil.copy(shot, keep)
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    # a rendered table and plots, not a blank or error page: many distinct colours
    assert colours is not None and len(colours) > 50
