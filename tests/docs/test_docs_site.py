"""The documentation site: built in strict mode into a temporary folder, then opened in headless Chromium.

The build (``mkdocs build --strict``, the README's command) fails on a broken link or reference; this runs it
with the parity report limited to a few cases (``JAXSCHED_DOCS_PARITY_ONLY``) to stay fast. Then the site is
served on 127.0.0.1 and one Chromium run loads every hand-written page, the generated indexes and a sample of
schedule pages, each in an iframe of a harness page: a probe injected into each page records script errors
from its first moment, the harness counts the images decoded (``naturalWidth > 0``), the server records every
request that failed, and Chromium's log shows console errors. Without Chromium (``/usr/bin/chromium``, Debian's
``chromium`` package) the browser test skips and says so; the build checks still run.
"""

from __future__ import annotations

import atexit
import functools
import html as html_lib
import http.server
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("JAXSCHED_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PARITY_ONLY = "ConstantLR"
pytestmark = pytest.mark.slow   # the strict build takes about a minute

PROBE = """<script>
window.__probeErrors = [];
window.addEventListener("error", function (e) {
  window.__probeErrors.push(e.message || ("failed to load " + ((e.target && (e.target.src || e.target.href)) || "?")));
}, true);
</script>"""

HARNESS = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>harness</title>
</head><body>
<div id="out"></div>
<script>
var pages = %s, results = {}, left = pages.length;
function check(url, frame) {
  var doc = frame.contentDocument, win = frame.contentWindow;
  var imgs = Array.prototype.slice.call(doc.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; });
  results[url] = {title: doc.title, images: imgs.length, decoded: ok.length,
                  errors: (win.__probeErrors || []).slice(), h1: doc.querySelectorAll("h1").length};
  if (--left === 0) {
    var d = document.createElement("pre"); d.id = "results";
    d.textContent = JSON.stringify(results); document.body.appendChild(d);
  }
}
pages.forEach(function (url) {
  var f = document.createElement("iframe");
  f.width = 1000; f.height = 800;
  f.onload = function () { setTimeout(function () { check(url, f); }, 500); };
  f.src = url; document.body.appendChild(f);
});
</script></body></html>"""


@functools.lru_cache(maxsize=1)
def built_site() -> Path:
    """Build the site once per session (strict) into a temporary folder; return the folder."""
    out = Path(tempfile.mkdtemp(prefix="jaxsched-site-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    env = dict(os.environ, JAXSCHED_DOCS_PARITY_ONLY=PARITY_ONLY, NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out / "site")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return out / "site"


def catalogue():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        hooks = importlib.import_module("hooks")      # docs/hooks.py
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return hooks, hooks.catalogue()


def test_every_catalogued_schedule_has_a_page_with_a_plot():
    site = built_site()
    hooks, entries = catalogue()
    assert len(entries) >= 15
    for fw, _, cls in entries:
        page = site / "schedules" / fw / cls.__name__ / "index.html"
        assert page.exists(), page
        html = page.read_text(encoding="utf-8")
        assert f'src="../{cls.__name__}.png"' in html, f"{cls.__name__}: no plot ({hooks.example(cls)[1]})"
        assert (site / "schedules" / fw / f"{cls.__name__}.png").stat().st_size > 1000
        assert "doc-class" in html or "doc doc-object" in html, f"{cls.__name__}: no API block from the docstring"
    index = (site / "schedules" / "index.html").read_text(encoding="utf-8")
    assert all(f"{cls.__name__}</a>" in index for _, _, cls in entries)


def test_generated_pages_have_their_content():
    site = built_site()
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("jaxsched.optim.scheduled", "jaxsched.flax.TrainState", "jaxsched.checkpoint.save",
                 "jaxsched.Running"):
        assert name in api, name
    parity = (site / "parity" / "index.html").read_text(encoding="utf-8")
    assert "Partial build" in parity and "ConstantLR" in parity and re.search(r'src="plots/[^"]+\.png"', parity)
    bench = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "Targets met" in bench
    # the doctests render as code, not as Markdown links
    step = (site / "schedules" / "torch" / "StepLR" / "index.html").read_text(encoding="utf-8")
    assert "language-pycon" in step or "highlight" in step


class _Handler(http.server.SimpleHTTPRequestHandler):
    failures: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def send_error(self, code, message=None, explain=None):
        type(self).failures.append(f"{code} {self.path}")
        super().send_error(code, message, explain)


def _serve(folder: Path):
    handler = functools.partial(_Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _pages(site: Path) -> list[str]:
    hand = sorted(str(p.relative_to(ROOT / "docs").with_suffix("")) for p in (ROOT / "docs").rglob("*.md"))
    pages = [("" if p == "index" else p + "/") for p in hand]
    pages += ["schedules/", "api/", "parity/", "benchmarks/"]
    pages += ["schedules/torch/OneCycleLR/", "schedules/torch/ReduceLROnPlateau/", "schedules/torch/SequentialLR/"]
    others = sorted(p.parent.relative_to(site).as_posix() + "/" for p in (site / "schedules").glob("*/*/index.html")
                    if p.parent.parent.name != "torch")
    pages += others[:2]
    missing = [p for p in pages if not (site / p / "index.html").exists()]
    assert not missing, missing
    return pages


def test_site_in_headless_chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium); the site build "
                    f"is still checked by the other tests")
    site = built_site()
    work = Path(tempfile.mkdtemp(prefix="jaxsched-site-browse-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    served = work / "site"
    shutil.copytree(site, served)
    for html in served.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        head = re.search(r"<head[^>]*>", text)
        assert head, html
        html.write_text(text[: head.end()] + PROBE + text[head.end():], encoding="utf-8")
    pages = _pages(served)
    (served / "harness.html").write_text(HARNESS % json.dumps(["/" + p for p in pages]), encoding="utf-8")
    _Handler.failures = []
    server = _serve(served)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/harness.html"
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                                   "--v=0", "--virtual-time-budget=60000", "--dump-dom", url],
                                  capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    m = re.search(r'<pre id="results">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the harness did not finish:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    results = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                         .replace("&gt;", ">"))
    assert sorted(results) == sorted("/" + p for p in pages)
    for page, r in results.items():
        assert r["h1"] >= 1 and r["title"], (page, r)
        assert r["decoded"] == r["images"], (page, r)
        assert not r["errors"], (page, r)
    with_plots = [p for p, r in results.items() if p.startswith("/schedules/") and p.count("/") == 4]
    assert with_plots and all(results[p]["images"] >= 1 for p in with_plots), with_plots
    assert results["/parity/"]["images"] >= 1
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert not _Handler.failures, _Handler.failures


def test_the_probe_sees_a_broken_image(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.html").write_text(
        f"<html><head>{PROBE}<title>t</title></head><body><h1>x</h1><img src='missing.png'>"
        "<script>console.error('boom')</script></body></html>", encoding="utf-8")
    (tmp_path / "harness.html").write_text(HARNESS % json.dumps(["/bad/"]), encoding="utf-8")
    _Handler.failures = []
    server = _serve(tmp_path)
    try:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                                   "--v=0", "--virtual-time-budget=10000", "--dump-dom",
                                   f"http://127.0.0.1:{server.server_address[1]}/harness.html"],
                                  capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    m = re.search(r'<pre id="results">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stderr[-2000:]
    r = json.loads(m.group(1).replace("&quot;", '"'))["/bad/"]
    assert r["images"] == 1 and r["decoded"] == 0 and r["errors"]
    assert any("boom" in line for line in proc.stderr.splitlines() if ":CONSOLE" in line)
    assert any("missing.png" in f for f in _Handler.failures)


def parameter_rows(html: str) -> dict[str, tuple[str, str]]:
    """The first Parameters table of an API block: ``{name: (type, default)}`` as the reader sees them."""
    table = html[html.index('<span class="doc-section-title">Parameters:</span>'):]
    table = table[:table.index("</table>")]
    rows = {}
    for row in re.findall(r'<tr class="doc-section-item">(.*?)</tr>', table, re.S):
        cells = [html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c))).strip()
                 for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        name, typ, _desc, default = cells
        rows[name] = (typ, default)
    return rows


def test_api_tables_show_the_declared_types_and_defaults():
    """The Args table takes type and default from the ``leaf``/``static`` declarations (docs/griffe_fields.py)."""
    site = built_site()
    rows = parameter_rows((site / "schedules" / "torch" / "OneCycleLR" / "index.html").read_text("utf-8"))
    assert rows["pct_start"] == ("float", "0.3")
    assert rows["anneal_strategy"] == ("str", "'cos'")
    assert rows["total_steps"] == ("int | None", "None")     # a default of None is a default, not "required"
    assert rows["max_lr"] == ("LR", "required")
    assert all(typ for typ, _ in rows.values()), rows
    keras_rows = parameter_rows((site / "schedules" / "keras" / "CosineDecay" / "index.html").read_text("utf-8"))
    assert keras_rows["decay_steps"] == ("int", "required") and keras_rows["alpha"] == ("float", "0.0")
