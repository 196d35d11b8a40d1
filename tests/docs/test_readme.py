"""The README's Python examples run as written, and their printed values are the ones the README shows."""

import contextlib
import io
import pathlib
import re
import sys
import tomllib

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


#: The repository the README's links point to: the Source Project-URL of pyproject.toml (the package page is
#: the README, where a relative link breaks).
REPO = "https://github.com/jaxsched/jaxsched"
ROOT = README.parent
#: Folders of the repository that are not in the package: an example importing them runs only from a clone's root.
LOCAL_PACKAGES = ("parity", "benchmarks")


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, monkeypatch):
    """Each example runs as a user's script would, from any folder: the repository's own packages hidden."""
    code = BLOCKS[index]
    for name in LOCAL_PACKAGES:
        monkeypatch.setitem(sys.modules, name, None)  # `import parity` would fail outside a clone's root
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


def test_readme_links_are_absolute_and_point_at_files_that_exist():
    """PyPI shows the README: links go to the repository (pages) or its raw files (images), and each target is
    a file of this checkout."""
    text = README.read_text(encoding="utf-8")
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Source"] == REPO
    links = re.findall(r"(!?)\[[^\]]*\]\(([^)\s]+)\)", text)
    assert len(links) >= 9
    for bang, target in links:
        prefix = (REPO.replace("github.com", "raw.githubusercontent.com") + "/main/" if bang
                  else REPO + "/blob/main/")
        assert target.startswith(prefix), target
        assert (ROOT / target[len(prefix):]).is_file(), target


def test_readme_reads_the_lr_with_get_lr():
    assert any("jaxsched.optim.get_lr(" in block for block in BLOCKS)


def test_readme_warns_about_cuda_torch_before_installing():
    text = README.read_text(encoding="utf-8")
    warning = text.index("CUDA build of torch")
    first_install = min(text.index(cmd) for cmd in ('pip install -e ".[test]"', "pip install -e '.[test]'")
                        if cmd in text)
    assert warning < first_install
    assert text.index("download.pytorch.org/whl/cpu") < first_install
