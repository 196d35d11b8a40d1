"""The README's Python examples run as written, and their printed values are the ones the README shows."""

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    code = BLOCKS[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md[python block {index}]", "exec"), {})
    printed = out.getvalue().splitlines()
    # every `print(...)  # expected` comment in the block must match what was printed
    expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*?\)\s*#\s*(.*)$", code, flags=re.M)]
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected):
        want = re.sub(r"\(.*float32.*\)", "", want).strip()
        got_nums = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", got)]
        want_nums = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", want)]
        assert got_nums == pytest.approx(want_nums, rel=1e-6, abs=1e-12), (got, want)
