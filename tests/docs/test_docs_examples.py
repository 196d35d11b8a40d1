"""Every ```python block on the documentation pages runs, page by page, in a fresh interpreter.

The blocks of one page run in order in one namespace (a page builds on its earlier blocks), each compiled with
its page and line as file name, so a failure points at the page. A block that must not run starts with the
line ``# doc-test: skip (reason)``; the reason is required. The porting guide runs section by section in
``tests/docs/test_porting.py``; the pages generated at build time (schedules, API) are docstrings, which the
doctests run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

pytestmark = pytest.mark.slow  # every docs example, each page in a fresh interpreter

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SKIP = re.compile(r"#\s*doc-test:\s*skip\b\s*(\((?P<reason>[^)]*)\))?")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)$")
OWN_TEST = {"porting.md": "tests/docs/test_porting.py"}

RUNNER = r"""
import json, sys
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for b in blocks:
    print(f"--- {b['file']}:{b['line']}", flush=True)
    exec(compile(b["code"], f"{b['file']}:{b['line']}", "exec"), namespace)
print("--- all blocks ran", flush=True)
"""


class Block(NamedTuple):
    file: str
    line: int         # 1-based line of the first code line
    section: str      # the nearest "## " heading above it
    code: str
    skip: str | None  # the reason, for a block marked "# doc-test: skip (reason)"


def blocks(path: Path) -> list[Block]:
    """The fenced ```python blocks of a Markdown page (other languages are not run)."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    section, i = "", 0
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i][3:].strip()
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        info, indent = m.group("info").strip(), len(m.group("indent"))
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        code = "\n".join(line[indent:] for line in lines[i + 1:j])
        if info.split(" ")[0] in ("python", "py"):
            first = code.lstrip().splitlines()[0] if code.strip() else ""
            skip = SKIP.match(first)
            reason = None
            if skip:
                reason = (skip.group("reason") or "").strip()
                assert reason, f"{path.name}:{i + 2}: '# doc-test: skip' needs a reason: '# doc-test: skip (why)'"
            out.append(Block(str(path.relative_to(ROOT)), i + 2, section, code, reason))
        i = j + 1
    return out


def run_blocks(runnable: list[Block], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the blocks in order in one fresh interpreter, from the repository root; fail with its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    payload = json.dumps([b._asdict() for b in runnable])
    proc = subprocess.run([sys.executable, "-c", RUNNER], input=payload, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)
    if proc.returncode != 0 or "--- all blocks ran" not in proc.stdout:
        pytest.fail(f"a code block failed (the last '---' line names it):\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-6000:]}")
    return proc


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md"))


PAGES = [p for p in pages() if str(p.relative_to(DOCS)) not in OWN_TEST and any(not b.skip for b in blocks(p))]


def test_the_pages_have_examples_to_run():
    assert len(PAGES) >= 5, [str(p) for p in PAGES]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page):
    run_blocks([b for b in blocks(page) if not b.skip])


def test_the_extractor_finds_blocks_and_skips(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    page = tmp_path / "p.md"
    page.write_text("# t\n\n## A\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n## B\n\n"
                    "```python\n# doc-test: skip (needs a GPU)\nraise SystemExit(1)\n```\n"
                    "    ```python\n    y = x + 1\n    ```\n", encoding="utf-8")
    found = blocks(page)
    assert [(b.section, b.code, b.skip) for b in found] == [
        ("A", "x = 1", None), ("B", "# doc-test: skip (needs a GPU)\nraise SystemExit(1)", "needs a GPU"),
        ("B", "y = x + 1", None)]
    assert found[0].line == 6
    page.write_text("```python\n# doc-test: skip\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="needs a reason"):
        blocks(page)


def test_a_failing_block_fails_the_run():
    bad = Block("docs/x.md", 3, "", "raise ValueError('boom')", None)
    with pytest.raises(pytest.fail.Exception, match="boom"):
        run_blocks([bad], timeout=60)
