"""The parity harness: its catalogue, its comparison, its exit codes, and the whole ``python -m parity check`` gate."""

from __future__ import annotations

import html as html_lib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxsched
from parity import __main__ as cli
from parity import catalogue, compare, report

ROOT = Path(__file__).resolve().parents[2]


def _case(name, build, steps=20, **kw):
    return catalogue.Case(name, "edge", build, steps, "test case", **kw)


def _members(s):
    yield type(s).__name__
    for m in getattr(s, "schedulers", ()):
        yield from _members(m)


def test_catalogue_covers_every_scheduler_and_the_recipes():
    covered = set()
    for c in catalogue.CASES:
        if isinstance(c, catalogue.PlateauCase):
            covered.add("ReduceLROnPlateau")
        else:
            covered.update(_members(c.build()))
    assert set(jaxsched.SCHEDULES) | {"ReduceLROnPlateau"} <= covered
    names = " | ".join(c.name for c in catalogue.CASES)
    for recipe in ("StepLR(30", "MultiStepLR([60", "warm-up then cosine", "OneCycleLR with momentum",
                   "triangular2", "exp_range", "T_mult=2", "SWALR after cosine", "recorded loss curve"):
        assert recipe in names, recipe
    assert len({c.name for c in catalogue.CASES}) == len(catalogue.CASES)
    assert len({report.slug(c.name) for c in catalogue.CASES}) == len(catalogue.CASES)


def test_rel_error():
    ref = np.array([[0.1], [0.05], [0.0]])
    assert compare.rel_error(ref.copy(), ref) == 0.0
    assert compare.rel_error(ref + 1e-3, ref) == pytest.approx(1e-2)
    assert np.isnan(compare.rel_error(np.array([[0.1], [np.nan], [0.0]]), ref))
    assert np.isnan(compare.rel_error(np.array([[0.1], [np.inf], [0.0]]), ref))
    assert np.isnan(compare.rel_error(np.zeros((2, 1)), ref))


def test_precisions_are_really_computed_in_that_precision():
    case = _case("exp", lambda: jaxsched.ExponentialLR(0.1, gamma=0.98), steps=300)
    res = compare.run_case(case, with_optax=False)
    assert res.passed
    # float32 rounding is visible, float64 is at torch's own recursion noise
    assert 1e-9 < res.err["float32"] <= 1e-6
    assert res.err["float64"] < 1e-13


def test_a_schedule_that_differs_from_torch_fails(monkeypatch, capsys):
    real = compare.torch_trajectory

    def torch_step_size_4(schedule, steps, optimizer):  # torch's reference is always StepLR(step_size=4)
        return real(jaxsched.StepLR(0.1, step_size=4), steps, optimizer)

    monkeypatch.setattr(compare, "torch_trajectory", torch_step_size_4)
    good = _case("good StepLR", lambda: jaxsched.StepLR(0.1, step_size=4))
    wrong = _case("wrong StepLR", lambda: jaxsched.StepLR(0.1, step_size=3))
    res = compare.run_case(wrong, with_optax=False)
    assert not res.passed and res.status == "FAIL"
    assert res.err["float64"] == pytest.approx(0.9)  # 0.01 against 0.1 at step 3

    monkeypatch.setattr(catalogue, "CASES", [good, wrong])
    assert cli.main(["check", "--only", "good"]) == 0
    capsys.readouterr()
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"wrong StepLR\s+9\.0e-01\s+9\.0e-01\s+FAIL", out)
    assert re.search(r"good StepLR\s+[0-9.e+-]+\s+[0-9.e+-]+\s+pass", out)
    assert "FAILED: wrong StepLR" in out


def test_known_issue_is_shown_but_does_not_fail_the_gate(monkeypatch, capsys):
    """A failing case marked with a known issue is printed as such and leaves the exit status 0."""
    real = compare.torch_trajectory
    monkeypatch.setattr(compare, "torch_trajectory",  # torch's side is StepLR(step_size=4): the case fails
                        lambda schedule, steps, optimizer: real(jaxsched.StepLR(0.1, step_size=4), steps, optimizer))
    case = _case("known StepLR", lambda: jaxsched.StepLR(0.1, step_size=3), known_issue="a documented gap")
    monkeypatch.setattr(catalogue, "CASES", [case])
    rc = cli.main(["check"])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"known StepLR\s+9\.0e-01\s+9\.0e-01\s+FAIL \(known issue: a documented gap\)", out), out
    assert "1 fail with a known issue" in out and "FAILED" not in out


def test_plateau_matches_torch_and_optax_with_patience_plus_one():
    case = next(c for c in catalogue.CASES if isinstance(c, catalogue.PlateauCase) and "recorded" in c.name)
    assert catalogue.recorded_loss_curve() == case.losses  # deterministic
    res = compare.run_case(case)
    assert res.available and res.passed and res.traj is not None, res
    t = res.traj.torch_lr.ravel()
    assert (np.diff(t) < 0).sum() >= 5  # the curve really makes torch cut several times
    assert res.optax_err["float64"] == 0.0


@pytest.mark.slow
def test_optax_findings_are_measured():
    """The harness sees what the optax reference documents: NaN past the end, clamped cosine, OneCycle exact."""
    poly = compare.run_case(catalogue.select("PolynomialLR power 0.9")[0])
    assert poly.passed and np.isnan(poly.optax_err["float32"])
    cos = compare.run_case(catalogue.select("past T_max, eta_min=0")[0])
    assert cos.passed and not cos.optax_exact and cos.optax_err["float32"] > 0.9
    one = compare.run_case(catalogue.select("OneCycleLR with momentum")[0])
    assert one.passed and one.optax_err["float64"] < 1e-12 and one.optax_mom_err["float64"] < 1e-12


@pytest.mark.slow
def test_report_writes_html_and_markdown(tmp_path, monkeypatch, capsys):
    names = ("StepLR", "OneCycleLR", "PolynomialLR power 0.9 past total_iters")
    monkeypatch.setattr(catalogue, "CASES", [c for c in catalogue.CASES if c.name in names])
    assert len(catalogue.CASES) == 3
    assert cli.main(["report", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    optax = "optax: 0 of 3 cases within target, 2 within target in float32 only, 1 NaN"
    assert f"jaxsched: 3 of 3 cases pass; {optax}" in printed
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    md = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3
    for text in (html, md):
        assert "jaxsched: 3 of 3 cases pass." in text and f"{optax}." in text
    # the result column is labelled as jaxsched's; optax has its own verdict column
    assert "<th>jaxsched result</th>" in html and "<th>optax result</th>" in html and "<th>result</th>" not in html
    assert re.search(r"\| \[StepLR\]\(#steplr\) \| scheduler \| 12 \| [0-9.e-]+ \| [0-9.e-]+ \| pass \| "
                     r"[0-9.e-]+ \| [0-9.e-]+ \| float32&nbsp;only \|", md), md
    assert re.search(r"\| \[PolynomialLR power 0\.9[^|]*\|.*\| pass \| NaN \| [^|]+ \| NaN \|", md), md
    # per-case verdicts in the Markdown twin too, and a way back to the table from every case
    assert md.count("jaxsched error: float32 ") == 3 and md.count("; **pass**") == 3
    assert md.count("; **within target (float32 only)**") == 2 and md.count("; **NaN**") == 1
    assert md.count("](#summary)") == 3 and '<a id="summary"></a>' in md
    assert html.count('href="#summary"') == 3 and '<table id="summary">' in html
    assert html.count('<span class="FAIL">NaN</span></p>') == 1  # the optax verdict line of the NaN case
    for name in ("steplr", "onecyclelr"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](plots/{name}.png)" in md


def _result(optax_err=None, optax_mom_err=None, exact=True):
    r = compare.Result("r", "edge", 10, err={"float32": 0.0, "float64": 0.0})
    r.optax_err, r.optax_mom_err, r.optax_exact = dict(optax_err or {}), dict(optax_mom_err or {}), exact
    return r


def test_optax_verdicts_and_summary():
    nan = float("nan")
    cases = {
        "within target": _result({"float32": 1e-7, "float64": 1e-12}),
        "within target (float32 only)": _result({"float32": 1e-7, "float64": 1e-9}),  # float64 over 1e-10
        "over target": _result({"float32": 2e-6, "float64": 1e-12}),
        "NaN": _result({"float32": nan, "float64": 0.0}),
        "not expressible": _result({"float32": 0.9, "float64": 0.9}, exact=False),
        "no construction": _result(),
    }
    for verdict, r in cases.items():
        assert r.optax_verdict == verdict
    assert _result({"float32": 0.0, "float64": 0.0}, {"float32": 2e-6}).optax_verdict == "over target"  # momentum
    results = list(cases.values()) + [_result({"float32": 0.0, "float64": 0.0})]
    assert report.optax_summary(results) == ("2 of 7 cases within target, 1 within target in float32 only, "
                                             "1 over target, 1 NaN, 1 not expressible, "
                                             "1 without an optax construction")


def test_report_table_stays_on_one_line_per_row_and_opens_plainly(tmp_path):
    """The optax columns do not wrap (short verdicts, no breaks between words) and the opening is plain."""
    nan = float("nan")
    kinds = {"a": ({"float32": 1e-7, "float64": 1e-9}, True), "b": ({"float32": 0.9, "float64": 0.9}, False),
             "c": ({"float32": nan, "float64": 0.0}, True), "d": ({}, True)}
    results = []
    for name, (optax_err, exact) in kinds.items():
        r = compare.Result(name, "edge", 10, err={"float32": 0.0, "float64": 0.0}, mom_err={"float32": 1e-8},
                           optax_err=optax_err, optax_mom_err={"float32": 1e-7} if optax_err else {},
                           optax_exact=exact)
        results.append(r)
    html_path, md_path = report.write(results, {n: f"{n}()" for n in kinds}, {n: b"\x89PNG" for n in kinds},
                                      tmp_path, 1.0)
    md, html = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    rows = [ln for ln in md.splitlines() if ln.startswith("| [")]
    assert len(rows) == 4
    for row in rows:
        optax_cells = [c.strip() for c in row.strip("|").split("|")][-3:]
        assert all(" " not in c for c in optax_cells), optax_cells           # "&nbsp;": no break inside
        assert len(optax_cells[-1].replace("&nbsp;", " ")) <= 15, optax_cells  # the verdict: one short line
    assert [c.strip() for r in rows for c in r.strip("|").split("|")][-1] == "none"
    assert "td.verdict { white-space: nowrap; }" in html and html.count('verdict">') == 4
    head, reading = report.intro()
    assert all(len(p.split()) <= 45 for p in head + reading), [len(p.split()) for p in head + reading]
    first = html.split("<h1>jaxsched parity report</h1>", 1)[1].split("</p>", 1)[0]
    assert html_lib.unescape(first.strip()) == f"<p>{head[0]}" and "(" not in head[0]
    assert [ln[2:] for ln in md.splitlines() if ln.startswith("- ") and "**" not in ln] == reading


@pytest.mark.parametrize("bad", ["file", "file/sub"])
def test_report_out_is_checked_before_computing(bad, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(compare, "run_case", lambda *a, **k: pytest.fail("computed before checking --out"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "--out", str(tmp_path / bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m parity report: error: --out ") and "Traceback" not in "".join(err)
    assert "is a file" in err[-1] or "cannot create" in err[-1]


def test_list_into_a_closed_pipe_is_quiet():
    """``python -m parity list | head -1``: the reader leaves early; no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "parity", "list"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # closed before the child writes anything: its first write meets EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_progress_bar_writes_no_carriage_returns_into_a_log(monkeypatch):
    log = io.StringIO()  # not a terminal, as in CI
    monkeypatch.setattr(sys, "stderr", log)
    assert list(cli._progress(range(5), "parity report")) == list(range(5))
    assert "\r" not in log.getvalue() and log.getvalue() == ""


def _synthetic_result(groups=2):
    steps = np.arange(21)
    lr = np.stack([0.1 * 0.9 ** steps * (g + 1) for g in range(groups)], axis=1)
    mom = np.stack([0.9 - 0.001 * steps for _ in range(groups)], axis=1)
    res = compare.Result("synthetic ExponentialLR", "edge", 20, err={"float32": 1e-8, "float64": 0.0})
    res.traj = compare.Trajectories(lr, mom, {"float32": lr * (1 + 1e-7), "float64": lr},
                                    {"float32": mom * (1 + 1e-7), "float64": mom},
                                    {"float32": lr * (1 + 1e-6)}, {"float32": mom})
    return res


def test_plot_colours_are_consistent_across_panels_and_legends_readable():
    import matplotlib.pyplot as plt

    fig = report.case_figure(_synthetic_result())
    seen: dict = {}
    for ax in fig.axes:
        for line in ax.lines:
            label = str(line.get_label())
            if label.startswith("_"):
                continue
            source = label.removeprefix("momentum, ").removeprefix("target ")
            source = {"float32": "jaxsched float32", "float64": "jaxsched float64"}.get(source, source)
            seen.setdefault(source, set()).add(line.get_color())
    assert set(seen) == {"torch", "jaxsched float64", "jaxsched float32", "optax float32"}
    assert all(len(c) == 1 for c in seen.values()), seen  # one colour per source in every panel
    assert len({next(iter(c)) for c in seen.values()}) == 4  # and no two sources share one
    # every group is drawn (two lines per source in the LR panel) with one legend entry per source
    lr_ax = fig.axes[0]
    legends = [ax.get_legend() for ax in fig.axes]
    assert all(leg is not None for leg in legends)
    assert len(lr_ax.lines) == 6 and len(lr_ax.get_legend().get_texts()) == 3  # pyright: ignore[reportOptionalMemberAccess]
    # text size in pixels at the saved resolution (the page shows the image at its natural size)
    for leg in legends:
        for t in leg.get_texts():  # pyright: ignore[reportOptionalMemberAccess]
            assert float(t.get_fontsize()) * report.DPI / 72 >= 10, t.get_text()
    assert fig.get_size_inches()[0] * report.DPI <= 1068  # fits the page's 1100 px column without shrinking
    plt.close(fig)


@pytest.mark.slow
def test_check_gate_passes_on_the_whole_catalogue():
    """``python -m parity check``, the CI gate: one row per case, exit 0."""
    proc = subprocess.run([sys.executable, "-m", "parity", "check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = proc.stdout.splitlines()
    for c in catalogue.CASES:
        assert any(row.startswith(c.name + " ") for row in rows), c.name
