"""The ``jaxsched`` command as a newcomer meets it: ``--version``, subcommands, one-line errors (exit 2, no
traceback), metric-driven schedules, epochs, a log axis, bounded work, and text that is never mathtext."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxsched
from jaxsched import plot as jplot
from jaxsched.__main__ import main as jaxsched_main
from jaxsched.__main__ import parser as jaxsched_parser

ROOT = Path(__file__).resolve().parents[2]
PLATEAU = "ReduceLROnPlateau(0.1, patience=2)"
METRICS = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]


def _error(argv, capsys) -> str:
    """Run ``jaxsched ARGV``; it must exit with status 2 and write exactly one line to stderr."""
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxsched {jaxsched.__version__}"


def test_the_version_is_written_once():
    """pyproject.toml takes the version from ``jaxsched.__version__`` (setuptools reads it), none of its own."""
    import tomllib
    import warnings

    from setuptools.config.pyprojecttoml import read_configuration

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools' notes on its own beta features
        expanded = read_configuration(ROOT / "pyproject.toml", expand=True)
    assert expanded["project"]["version"] == jaxsched.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", jaxsched.__version__)


def test_wheel_metadata(tmp_path):
    """What PyPI shows: the version, Project-URLs, classifiers; the plot extra without tqdm (plot.py does not use
    it). The metadata is prepared by setuptools as a wheel build would (about a second)."""
    code = ("import sys; from setuptools import build_meta; "
            "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = (tmp_path / proc.stdout.strip().splitlines()[-1] / "METADATA").read_text(encoding="utf-8")
    fields = [line.split(": ", 1) for line in meta.split("\n\n", 1)[0].splitlines() if ": " in line]
    assert ["Version", jaxsched.__version__] in fields
    urls = dict(v.split(", ", 1) for k, v in fields if k == "Project-URL")
    assert urls["Source"] == "https://github.com/jaxsched/jaxsched" and "Documentation" in urls
    classifiers = [v for k, v in fields if k == "Classifier"]
    assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
    plot_extra = [v for k, v in fields if k == "Requires-Dist" and v.endswith('extra == "plot"')]
    assert plot_extra == ['matplotlib>=3.9; extra == "plot"']
    assert "tqdm" not in (ROOT / "jaxsched" / "plot.py").read_text(encoding="utf-8")


@pytest.mark.slow
def test_version_and_errors_from_the_installed_entry_point(tmp_path):
    """``python -m jaxsched`` (what the ``jaxsched`` script calls): version, and a bad --out as one line."""
    proc = subprocess.run([sys.executable, "-m", "jaxsched", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"jaxsched {jaxsched.__version__}"
    proc = subprocess.run([sys.executable, "-m", "jaxsched", "plot", "StepLR(0.1, step_size=3)", "--out",
                           str(tmp_path / "missing" / "lr.png")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("jaxsched plot: error: --out ") and "does not exist" in proc.stderr


def test_plot_module_main_still_works(tmp_path, capsys):
    out = tmp_path / "lr.svg"
    assert jplot.main(["StepLR(0.1, step_size=3)", "--steps", "10", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert capsys.readouterr().out.strip() == f"wrote {out}"


def _no_compute(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr(jplot, "figure", boom)


@pytest.mark.parametrize("name, must", [
    ("missing/lr.png", "does not exist"),
    ("lr.xyz", "extension '.xyz'"),
    ("lr", "no extension"),
    (".", "is a folder"),
])
def test_bad_out_is_refused_before_computing(name, must, tmp_path, monkeypatch, capsys):
    _no_compute(monkeypatch)
    line = _error(["plot", "StepLR(0.1, step_size=3)", "--out", str(tmp_path / name)], capsys)
    assert line.startswith("jaxsched plot: error: --out ") and must in line
    if "extension" in must:
        assert ".png" in line and ".pdf" in line and ".svg" in line


def test_misspelt_and_bare_names(capsys):
    line = _error(["plot", "SteLR(0.1, step_size=3)"], capsys)
    assert "Did you mean 'StepLR'?" in line and "Known schedules:" in line
    line = _error(["plot", "StepLR"], capsys)
    assert "write StepLR(...)" in line and "Known schedules" not in line


@pytest.mark.parametrize("argv", [
    ["plot", "StepLR(0.1, step_size=0)"],
    ["plot", "StepLR(0.1, step_size=3)", "--steps", "0"],
    ["plot", "StepLR(0.1, step_size=3)", "--steps-per-epoch", "0"],
    ["plot", "OneCycleLR(max_lr=0.1, total_steps=10)", "--steps", "50"],
    ["plot", "StepLR(0.1, step_size=3, step_size=4)"],
])
def test_errors_have_no_doubled_prefix(argv, capsys):
    line = _error(argv, capsys)
    assert line.startswith("jaxsched plot: error: ")
    assert line.count("error:") == 1 and "plot: plot:" not in line and "error: plot:" not in line
    assert line.count("in schedule spec") <= 1


def test_huge_steps_are_refused_without_allocating(capsys, monkeypatch):
    monkeypatch.setattr(jplot, "trajectories", lambda *a: (_ for _ in ()).throw(AssertionError("allocated")))
    line = _error(["plot", "StepLR(0.1, step_size=3)", "--steps", "1000000000"], capsys)
    assert f"at most {jplot.MAX_STEPS:,}" in line and "steps=1000000000" in line


def test_metric_driven_schedule_without_metrics_is_refused(capsys):
    for spec in (PLATEAU, "GreedyLR(0.1)"):
        line = _error(["plot", spec], capsys)
        assert "metric-driven" in line and "--metrics" in line and spec in line


def test_metrics_without_a_metric_driven_schedule_are_refused(capsys):
    line = _error(["plot", "StepLR(0.1, step_size=3)", "--metrics", "1,2"], capsys)
    assert "no schedule is metric-driven" in line


def test_bad_metrics_text(capsys):
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(["plot", PLATEAU, "--metrics", "1,0.9,oops"])
    assert exc.value.code == 2
    assert "'oops'" in capsys.readouterr().err


def _fed(schedule, metrics):
    """The LR after k update() calls, k = 0..len(metrics), by a plain Python loop (eager)."""
    state = schedule.init()
    out = [np.ravel(np.asarray(schedule(state), np.float64))]
    for m in metrics:
        state = schedule.update(state, value=m)
        out.append(np.ravel(np.asarray(schedule(state), np.float64)))
    return np.stack(out)


def test_metric_driven_schedules_are_drawn_from_the_metrics(tmp_path, capsys):
    greedy = "GreedyLR(0.1, patience=1, cooldown=0, warmup=0, factor=0.5)"
    step = "StepLR(0.1, step_size=4)"
    assert jaxsched_main(["plot", PLATEAU, greedy, step, "--metrics", ",".join(map(str, METRICS)), "--steps", "12",
                          "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    fig, schedules = jplot.figure([PLATEAU, greedy, step], steps=12, metrics=METRICS)
    lines = fig.axes[0].lines
    assert len(lines) == 3
    for line, s in zip(lines[:2], schedules[:2]):
        x, y = line.get_data()
        np.testing.assert_array_equal(x, np.arange(len(METRICS) + 1))
        want = _fed(s, METRICS)[:, 0]
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=0)
    # the plateau really cuts on these metrics (patience 2), so the drawn line is not a constant
    y = lines[0].get_data()[1]
    assert y[0] == pytest.approx(0.1) and y[-1] == pytest.approx(0.001)
    x, y = lines[2].get_data()
    np.testing.assert_array_equal(x, np.arange(12))
    assert "update()" in fig.axes[-1].get_xlabel()


def test_detection_is_by_protocol_not_by_name():
    class Renamed:  # any object with init/update is metric-driven, whatever its class is called
        def init(self):
            return 0

        def update(self, state, **kw):
            return state

    assert jplot.is_metric_driven(Renamed())
    assert jplot.is_metric_driven(jaxsched.parse_spec(PLATEAU))
    assert not jplot.is_metric_driven(jaxsched.StepLR(0.1, step_size=3))


def _readme_epoch_command() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = [ln for ln in text.splitlines() if re.match(r"(python -m )?jaxsched plot .*--steps-per-epoch", ln)]
    assert len(cmds) == 1, cmds
    return shlex.split(cmds[0].removeprefix("python -m "))[1:]


def test_readme_epoch_example_decays_at_epochs_30_60_90(tmp_path):
    """The README's ``--steps-per-epoch`` example draws a per-epoch StepLR: decays at epochs 30, 60 and 90."""
    argv = _readme_epoch_command()
    assert argv[0] == "plot"
    args = jaxsched_parser().parse_args(argv)
    fig, _ = jplot.figure(args.specs, args.steps, args.steps_per_epoch)
    x, y = fig.axes[0].lines[0].get_data()
    drops = x[1:][np.diff(y) < -1e-9]
    np.testing.assert_allclose(drops, [30, 60, 90])
    assert x[-1] == pytest.approx((args.steps - 1) / args.steps_per_epoch)


def test_log_axis():
    fig, _ = jplot.figure(["CosineAnnealingLR(0.1, T_max=50, eta_min=1e-4)"], steps=50, log=True)
    assert fig.axes[0].get_yscale() == "log"
    fig, _ = jplot.figure(["CosineAnnealingLR(0.1, T_max=50, eta_min=1e-4)"], steps=50)
    assert fig.axes[0].get_yscale() == "linear"


def test_dollar_signs_are_text_not_mathtext(tmp_path):
    """A '$' in a spec (here in a comment, which the parser ignores) or a title must not break the plot."""
    spec = r"StepLR(0.1, step_size=3)  # costs $\undefinedmacro{x}$"
    title = r"lr in $\frac{1$ per step"
    out = tmp_path / "dollar.png"
    jplot.plot([spec], steps=10, out=str(out), title=title)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig, _ = jplot.figure([spec], steps=10, title=title)
    legend = fig.axes[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [spec]
    fig.canvas.draw()  # would raise a mathtext ParseFatalException if the text were parsed as math


def test_legend_is_readable():
    fig, _ = jplot.figure(["StepLR(0.1, step_size=3)"], steps=10)
    assert min(t.get_fontsize() for t in fig.axes[-1].get_legend().get_texts()) >= 9  # points, at dpi 100: 12 px


def test_missing_matplotlib_is_one_line_with_the_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    line = _error(["plot", "StepLR(0.1, step_size=3)", "--out", str(tmp_path / "lr.png")], capsys)
    assert line == f"jaxsched plot: error: {jplot.MATPLOTLIB_HINT}"
    assert "pip install 'jaxsched[plot]'" in jplot.MATPLOTLIB_HINT
