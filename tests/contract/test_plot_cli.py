"""``jaxsched plot``: specs parsed without eval, LR and cycled momentum overlaid, groups as lines, epochs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxsched import plot as jplot
from jaxsched.__main__ import main as jaxsched_main

ROOT = Path(__file__).resolve().parents[2]
ONECYCLE = "OneCycleLR(max_lr=0.1, total_steps=100)"
COSINE = "CosineAnnealingLR(0.1, T_max=50)"


@pytest.mark.slow
def test_command_line_writes_png(tmp_path):
    """The brief's example, end to end through ``python -m jaxsched``."""
    out = tmp_path / "lr.png"
    proc = subprocess.run([sys.executable, "-m", "jaxsched", "plot", ONECYCLE, COSINE, "--steps", "100",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert w > 400 and h > 400
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 20  # curves drawn, not a blank canvas


def test_lines_are_the_schedule_values():
    fig, schedules = jplot.figure([ONECYCLE, COSINE], steps=100)
    lr_ax, mom_ax = fig.axes[:2]
    assert [type(s).__name__ for s in schedules] == ["OneCycleLR", "CosineAnnealingLR"]
    assert len(lr_ax.lines) == 2 and len(mom_ax.lines) == 1  # only OneCycleLR cycles momentum
    for line, s in zip(lr_ax.lines, schedules):
        x, y = line.get_data()
        np.testing.assert_array_equal(x, np.arange(100))
        np.testing.assert_allclose(y, [float(s(k)) for k in range(100)], rtol=0, atol=1e-7)  # 1e-6 of the LR
    _, m = mom_ax.lines[0].get_data()
    np.testing.assert_allclose(m, [float(schedules[0].momentum(k)) for k in range(100)], rtol=0, atol=1e-6)
    assert "OneCycleLR" in lr_ax.get_legend_handles_labels()[1][0]


def test_parameter_groups_are_separate_lines_and_epochs_axis():
    spec = "CyclicLR(base_lr=[0.01, 0.02], max_lr=[0.05, 0.1], step_size_up=10)"
    fig, schedules = jplot.figure([spec, "StepLR(0.1, step_size=30)"], steps=60, steps_per_epoch=20)
    assert [s.num_groups for s in schedules] == [2, None]
    lr_ax = fig.axes[0]
    labels = lr_ax.get_legend_handles_labels()[1]
    assert labels == [f"{spec} [group 0]", f"{spec} [group 1]", "StepLR(0.1, step_size=30)"]
    assert len(lr_ax.lines) == 3 and len(fig.axes[1].lines) == 2
    x, y1 = lr_ax.lines[1].get_data()
    np.testing.assert_allclose(x, np.arange(60) / 20)  # epochs
    group1 = [float(schedules[0](k)[1]) for k in range(60)]
    np.testing.assert_allclose(y1, group1, rtol=0, atol=1e-7)
    assert "epoch" in fig.axes[-1].get_xlabel()


@pytest.mark.parametrize("spec, must_name", [
    ("Foo(1)", "'Foo'"),
    ("StepLR(0.1, step_size=__import__('os').getpid())", "__import__"),
    ("StepLR(lambda e: 1)", "lambda e: 1"),
    ("StepLR(0.1, step_size=0)", "step_size=0"),
    ("StepLR(0.1, step_sise=3)", "step_sise"),
    ("StepLR(0.1, step_size=3", "StepLR(0.1, step_size=3"),
])
def test_bad_spec_names_the_part_in_one_line(spec, must_name, capsys):
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(["plot", spec, "--out", "never-written.png"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert must_name in err
    first, *listing = err.splitlines()
    assert err.startswith("jaxsched plot: error: ") and all(ln.startswith("  ") for ln in listing), err
    # the list of schedules only when the name is unknown
    assert ("Known schedules:" in err) == spec.startswith("Foo"), err
    assert not Path("never-written.png").exists()


def test_an_unknown_name_gets_a_suggestion_and_the_names_wrapped_by_framework(capsys):
    from jaxsched._spec import known_names

    with pytest.raises(SystemExit):
        jaxsched_main(["plot", "StepLr", "--out", "never-written.png"])
    first, *listing = capsys.readouterr().err.splitlines()
    assert "unknown schedule 'StepLr'. Did you mean 'StepLR'? Known schedules:" in first
    assert [ln.split(":")[0] for ln in listing if not ln.startswith("    ")] == [
        "  torch", "  transformers", "  keras", "  timm", "  jaxsched"]
    assert len(listing) > 5 and max(len(ln) for ln in listing) <= 100
    listed = re.findall(r"[\w.]+", " ".join(ln.split(":", 1)[-1] if not ln.startswith("    ") else ln
                                             for ln in listing))
    assert sorted(listed) == known_names()


def test_past_the_end_of_onecycle_is_an_error(capsys):
    with pytest.raises(SystemExit):
        jaxsched_main(["plot", "OneCycleLR(max_lr=0.1, total_steps=10)", "--steps", "50"])
    assert "total steps is 10" in capsys.readouterr().err


def test_usage_and_unknown_command(capsys):
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(["--help"])
    assert exc.value.code == 0
    assert "plot" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(["plots"])
    assert exc.value.code == 2
    assert "invalid choice: 'plots'" in capsys.readouterr().err


def test_bad_options():
    with pytest.raises(jplot.PlotError, match="steps=0"):
        jplot.figure([COSINE], steps=0)
    with pytest.raises(jplot.PlotError, match="steps_per_epoch=0"):
        jplot.figure([COSINE], steps=10, steps_per_epoch=0)
