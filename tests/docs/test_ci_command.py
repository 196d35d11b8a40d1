"""CI runs the README's test command exactly, and nothing in CI changes what that command draws."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_test_command() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    at = [i for i, line in enumerate(lines) if line.startswith("# tests:")]
    assert len(at) == 1, "the README's set-up needs one bash block line starting '# tests:' above the test command"
    return lines[at[0] + 1].strip()


def test_ci_runs_the_readme_test_command():
    command = _readme_test_command()
    assert "python -m pytest" in command
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert ci[-1] == command, f".ci/run ends with {ci[-1]!r}, the README's test command is {command!r}"


def test_ci_draws_what_the_readme_command_draws():
    """The hypothesis profile comes from tests/conftest.py (``ci`` unless HYPOTHESIS_PROFILE is set), not CI."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(export\s+)?HYPOTHESIS_PROFILE=", ci, flags=re.M)
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert 'settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))' in conftest
