"""Typing: pyright (standard mode, configured in pyproject.toml) reports 0 errors on ``jaxsched/`` and on user code.

``tests/contract/typing_user_code.py`` builds every public schedule with torch's positional and keyword arguments, wires
it through ``jaxsched.optim`` and steps the stateful ones. A control file with a wrong argument name must be
reported, so a checker that sees no constructors (no ``dataclass_transform``) cannot pass these tests.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import jaxsched

ROOT = Path(__file__).resolve().parents[2]


def _pyright(*args: str, cwd: Path = ROOT) -> dict:
    """Run pyright with JSON output; pyright is in the test extra (``pyright[nodejs]``)."""
    exe = shutil.which("pyright")
    cmd = [exe] if exe else [sys.executable, "-m", "pyright"]
    proc = subprocess.run([*cmd, "--outputjson", *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"pyright gave no JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                             f"{proc.stderr[-2000:]}") from None


def _errors(report: dict) -> list[str]:
    return [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
            for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_package_ships_py_typed():
    assert (Path(jaxsched.__file__).parent / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'jaxsched = ["py.typed"]' in text  # package-data: the marker is in the wheel too


@pytest.mark.slow
def test_pyright_reports_no_error_on_the_package_and_on_user_code():
    """The project's configuration (pyproject.toml [tool.pyright]): jaxsched/ and tests/contract/typing_user_code.py."""
    report = _pyright()
    files = report["summary"]["filesAnalyzed"]
    assert files >= 10, f"pyright analysed only {files} files: is [tool.pyright] include still right?"
    errors = _errors(report)
    assert not errors, f"{len(errors)} pyright errors:\n" + "\n".join(errors[:60])


def test_pyright_sees_the_constructors(tmp_path):
    """A misspelt argument, a missing required one and a string LR are errors: the checker reads the fields."""
    bad = tmp_path / "bad_user_code.py"
    bad.write_text(
        "import jaxsched\n"
        "a = jaxsched.StepLR(0.1, step_sizes=30)\n"
        "b = jaxsched.OneCycleLR(max_lr=0.1, total_step=100)\n"
        "c = jaxsched.CosineAnnealingLR(0.1)\n"
        "d = jaxsched.StepLR(0.1, step_size=30)\n"
        "d.gamma = 0.5\n",  # frozen
        encoding="utf-8")
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({"typeCheckingMode": "standard",
                                                              "extraPaths": [str(ROOT)]}))
    errors = _errors(_pyright(str(bad), cwd=tmp_path))
    lines = sorted({int(e.split(":")[1]) for e in errors})
    assert lines == [2, 3, 4, 6], "\n".join(errors)


def test_the_user_code_runs():
    """The type-checked user code is real code: it runs and gives the LRs torch gives."""
    ns = runpy.run_path(str(ROOT / "tests" / "contract" / "typing_user_code.py"))
    assert [round(x, 6) for x in ns["plateau_lrs"]([1.0] * 4)] == [0.1, 0.1, 0.1, 0.05]  # patience=2, factor=0.5
    assert [round(x, 6) for x in ns["running_lrs"](3)] == [0.1, 0.095, 0.09025]
    for s in ns["step_schedules"]:
        assert ns["lrs"](s, 4).shape[0] == 4
    assert len(ns["stateful_schedules"]()) == 5
    # from_torch: StepLR(step_size=2, gamma=0.5) at 5; its running form after 2 updates; the plateau after 1
    assert [round(x, 6) for x in ns["from_torch_uses"]()] == [0.025, 0.05, 0.1]
