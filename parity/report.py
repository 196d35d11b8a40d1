"""The parity report: a self-contained HTML page (plots embedded) and its Markdown twin (plots beside it)."""

from __future__ import annotations

import base64
import datetime
import html
import io
import os
import platform
import re
from pathlib import Path

import numpy as np

from .compare import PRECISIONS, TOLERANCE, Result

_FLOOR = 1e-20  # exact agreement (difference 0) is drawn on this line of the log axis
#: Plots are saved at this resolution and shown at their natural size (950 px wide fits the 1100 px page), so
#: a font of F points is drawn F * DPI / 72 pixels high.
DPI = 100
LEGEND_PT = 9  # 12.5 px at DPI 100
TITLE_PT = 10
#: One colour per source, the same in every panel (LR, momentum, difference); hex: "C0" lookups are slow.
COLORS = {"torch": "#7f7f7f", "jaxsched float64": "#1f77b4", "jaxsched float32": "#ff7f0e", "optax float32": "#000000"}


class ReportPathError(ValueError):
    """``--out`` cannot hold the report (a file is in the way, or the folder cannot be created or written)."""


def prepare_out(out: Path) -> None:
    """Create ``out`` and ``out/plots`` and check that a file can be written there, before anything is computed."""
    shown = str(out)
    for folder in (out, out / "plots"):
        if folder.exists() and not folder.is_dir():
            raise ReportPathError(f"--out {shown!r}: {str(folder)!r} is a file, not a folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ReportPathError(f"--out {shown!r}: cannot create the folder {str(folder)!r}: "
                                  f"{err.strerror or err}.") from None
    for name in ("index.html", "README.md"):  # the two files write() creates must be files, or not exist yet
        if (out / name).is_dir():
            raise ReportPathError(f"--out {shown!r}: {str(out / name)!r} is a folder, so the report cannot be "
                                  f"written there; remove it or choose another --out.")
    probe = out / ".parity-write-check"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ReportPathError(f"--out {shown!r}: cannot write into the folder: {err.strerror or err}.") from None


def fmt_err(x: float | None) -> str:
    if x is None:
        return "—"
    if np.isnan(x):
        return "NaN"
    return "0" if x == 0 else f"{x:.1e}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


#: The committed per-release table (``python -m parity releases``).
RELEASES_TABLE = "parity/results/releases/releases.md"


def torch_release() -> str:
    """The installed torch release the report runs against (``2.13.0`` of ``2.13.0+cpu``)."""
    import torch

    return str(torch.__version__).split("+")[0]


def environment() -> str:
    import jax
    import optax
    import torch

    return (f"{datetime.date.today().isoformat()}, {platform.machine()} CPU with {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, torch {torch.__version__}, jax {jax.__version__}, "
            f"optax {optax.__version__}")


# ----------------------------------------------------------------------------------------------------------
# plots


def case_figure(res: Result):
    """The matplotlib Figure of one case: LR (and momentum) of torch, jaxsched float64 and optax against the step,
    then |difference to torch| on a log axis. Each source keeps its colour (:data:`COLORS`) in every panel;
    parameter groups are separate lines of the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = res.traj
    assert t is not None, "case_figure needs the trajectories (run_case keeps them in res.traj)"
    has_mom = t.torch_mom is not None
    rows = 3 if has_mom else 2
    height = 2.3 * rows + 0.5
    fig, axes = plt.subplots(rows, 1, figsize=(9.5, height), sharex=True)
    fig.subplots_adjust(left=0.09, right=0.72, top=1 - 0.45 / height, bottom=0.55 / height, hspace=0.3)
    groups = t.torch_lr.shape[1]
    steps = np.arange(t.torch_lr.shape[0])
    legend = dict(fontsize=LEGEND_PT, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    def trio(ax, ref, ours, ox, label):
        for g in range(groups):
            first = g == 0  # one legend entry per source; groups are more lines of the same colour
            ax.plot(steps, ref[:, g], color=COLORS["torch"], lw=3.2, alpha=0.45,
                    label="torch" if first else "_nolegend_")
            ax.plot(steps, ours[:, g], color=COLORS["jaxsched float64"], lw=1.2, ls="--",
                    label="jaxsched float64" if first else "_nolegend_")
            if ox is not None:
                n = ox.shape[0]
                ax.plot(steps[:n], ox[:, g], color=COLORS["optax float32"], lw=1.0, ls=":",
                        label="optax float32" if first else "_nolegend_")
        ax.set_ylabel(label + (f"\n({groups} groups)" if groups > 1 else ""))
        ax.grid(alpha=0.3)
        ax.legend(**legend)

    trio(axes[0], t.torch_lr, t.lr["float64"], t.optax_lr.get("float32"), "learning rate")
    if has_mom:
        trio(axes[1], t.torch_mom, t.mom["float64"], t.optax_mom.get("float32"), "momentum / b1")
    ax = axes[-1]

    def diff(x, ref, source, **kw):
        d = np.abs(np.asarray(x) - ref[: x.shape[0]]).max(axis=1)
        ax.plot(steps[: x.shape[0]], np.maximum(np.nan_to_num(d, nan=1e3), _FLOOR), color=COLORS[source], **kw)

    diff(t.lr["float32"], t.torch_lr, "jaxsched float32", lw=1.0, label="jaxsched float32")
    diff(t.lr["float64"], t.torch_lr, "jaxsched float64", lw=1.0, label="jaxsched float64")
    if "float32" in t.optax_lr:
        diff(t.optax_lr["float32"], t.torch_lr, "optax float32", lw=1.0, ls=":", label="optax float32")
    if has_mom:
        diff(t.mom["float32"], t.torch_mom, "jaxsched float32", lw=0.9, ls="--", alpha=0.7,
             label="momentum, jaxsched float32")
        diff(t.mom["float64"], t.torch_mom, "jaxsched float64", lw=0.9, ls="--", alpha=0.7,
             label="momentum, jaxsched float64")
    scale = float(np.max(np.abs(t.torch_lr))) or 1.0
    for p in PRECISIONS:
        ax.axhline(TOLERANCE[p] * scale, color=COLORS[f"jaxsched {p}"], lw=0.7, alpha=0.6, label=f"target {p}")
    ax.set_yscale("log")
    ax.set_ylim(_FLOOR / 3, None)
    ax.set_ylabel("|x - torch|")
    ax.set_xlabel("step (calls of scheduler.step())")
    ax.grid(alpha=0.3, which="major")
    ax.legend(**legend)
    ax.set_title(f"difference to torch (0 drawn at {_FLOOR:g}; thin lines: parity targets)", fontsize=TITLE_PT)
    fig.suptitle(res.name, fontsize=TITLE_PT + 1)
    return fig


def plot_case(res: Result) -> bytes:
    """PNG bytes of :func:`case_figure`, at :data:`DPI`."""
    import matplotlib.pyplot as plt

    fig = case_figure(res)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# tables


def _err_html(x: float | None, html_mode: bool) -> str:
    text = fmt_err(x)
    return f'<span class="FAIL">{text}</span>' if html_mode and text == "NaN" else text


def _mom(x: float, html_mode: bool) -> str:
    return f" <small>mom {fmt_err(x)}</small>" if html_mode else f" (mom {fmt_err(x)})"


def _cell(res: Result, p: str, html_mode: bool) -> str:
    if not res.available:
        return "—"
    text = fmt_err(res.err[p])
    if p in res.mom_err:
        text += _mom(res.mom_err[p], html_mode)
    return text


def _optax_cell(res: Result, p: str, html_mode: bool) -> str:
    if p not in res.optax_err:
        return "—"
    text = ("≈ " if not res.optax_exact else "") + _err_html(res.optax_err[p], html_mode)
    if p in res.optax_mom_err:
        text += _mom(res.optax_mom_err[p], html_mode)
    return text


def summary_counts(results: list[Result]) -> str:
    """jaxsched's summary: ``"54 of 56 cases pass, 1 fail, 1 fail with a known issue"``."""
    avail = [r for r in results if r.available]
    failed = [r for r in avail if not r.passed and not r.known_issue]
    known = [r for r in avail if not r.passed and r.known_issue]
    text = f"{len(avail) - len(failed) - len(known)} of {len(results)} cases pass"
    if failed:
        text += f", {len(failed)} fail"
    if known:
        text += f", {len(known)} fail with a known issue"
    missing = len(results) - len(avail)
    if missing:
        text += f", {missing} not available"
    return text


#: optax verdicts in the order the summary lists them.
OPTAX_VERDICTS = ("within target", "within target (float32 only)", "over target", "NaN", "not expressible",
                  "no construction")


def optax_summary(results: list[Result]) -> str:
    """optax's summary over the same cases: ``"30 of 56 cases within target, 4 over target, 2 NaN, ..."``."""
    counts = {v: 0 for v in OPTAX_VERDICTS}
    for r in results:
        counts[r.optax_verdict] += 1
    parts = [f"{counts['within target']} of {len(results)} cases within target"]
    for v in OPTAX_VERDICTS[1:]:
        if counts[v]:
            text = {"no construction": "without an optax construction",
                    "within target (float32 only)": "within target in float32 only"}.get(v, v)
            parts.append(f"{counts[v]} {text}")
    return ", ".join(parts)


#: The optax verdict as the table shows it: short enough for one line in a nine-column table (the full words are
#: in each case's section and explained above the table).
TABLE_VERDICT = {"within target": "within target", "within target (float32 only)": "float32 only",
                 "over target": "over target", "NaN": "NaN", "not expressible": "not expressible",
                 "no construction": "none"}


def intro() -> tuple[list[str], list[str]]:
    """The report's opening: plain paragraphs, then how to read the optax columns (one item per mark)."""
    head = [
        f"The installed torch, {torch_release()}, against jaxsched: each case runs a torch scheduler, "
        "the same schedule in jaxsched under jit in float32 and in "
        "float64, and, where optax's built-ins can express it, the optax construction an expert would write.",
        "Each number is the largest difference from torch over the whole run, divided by the largest LR torch "
        "reached (for momentum, by the largest momentum).",
        f"A case passes when that is at most {TOLERANCE['float32']:g} in float32 and "
        f"{TOLERANCE['float64']:g} in float64. optax is held to the same targets, and gets the step as an "
        "int32, as its optimizers count.",
    ]
    reading = [
        "≈ before an optax number: optax cannot express the case; the number is for the nearest construction, "
        "and the result is 'not expressible'.",
        "float32 only: within the float32 target, but with x64 on optax still computes in float32 (its int32 "
        "step count makes e.g. exponential_decay return float32), so it misses the float64 target.",
        "none: no optax construction for this case.",
    ]
    return head, reading


def _nowrap(text: str) -> str:
    """A Markdown table cell that does not break between its words."""
    return text.replace(" ", "&nbsp;")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { font-family: ui-monospace, monospace; white-space: nowrap; }
td.verdict { white-space: nowrap; }
.pass { color: #176317; font-weight: 600; }
.FAIL, .known { color: #b00020; font-weight: 600; }
.na { color: #777; }
section { border-top: 1px solid #ddd; margin-top: 1.5em; padding-top: 0.5em; }
code { background: #f5f5f5; padding: 1px 3px; font-size: 0.9em; }
img { max-width: 100%; }
p.nav { font-size: 0.9em; }
"""


def _status_class(res: Result) -> str:
    if not res.available:
        return "na"
    if res.passed:
        return "pass"
    return "known" if res.known_issue else "FAIL"


def _status_text(res: Result) -> str:
    if res.available and not res.passed and res.known_issue:
        return "FAIL (known issue)"
    return res.status


def _optax_class(res: Result) -> str:
    return {"within target": "pass", "within target (float32 only)": "pass", "over target": "FAIL",
            "NaN": "FAIL"}.get(res.optax_verdict, "na")


_BACK = "back to the table"
_COLUMNS = ("case", "kind", "steps", "jaxsched float32", "jaxsched float64", "jaxsched result", "optax float32",
            "optax x64", "optax result")


def write(results: list[Result], reprs: dict, pngs: dict, out: Path, elapsed: float) -> tuple[Path, Path]:
    """Write ``out/index.html`` and ``out/README.md`` (+ ``out/plots/*.png``); returns the two paths.

    ``reprs`` and ``pngs`` map a case name to its construction text and to its plot (:func:`plot_case`).
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    env = environment()
    counts = summary_counts(results)
    ocounts = optax_summary(results)
    head, reading = intro()
    releases = (f"jaxsched follows torch 2.13; for other torch releases (2.0 to 2.15), the table of what differs is "
                f"made by `python -m parity releases` ({RELEASES_TABLE}, explained in docs/torch-releases.md).")
    for name, png in pngs.items():
        (out / "plots" / f"{slug(name)}.png").write_bytes(png)

    # ---- HTML
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         "<title>jaxsched parity report</title>", f"<style>{_CSS}</style></head><body>",
         "<h1>jaxsched parity report</h1>", *(f"<p>{html.escape(t)}</p>" for t in head),
         "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in reading) + "</ul>",
         f'<ul class="summary"><li><b>jaxsched: {html.escape(counts)}.</b></li>'
         f"<li><b>optax: {html.escape(ocounts)}.</b></li></ul>",
         f"<p>Run {html.escape(env)}; {elapsed:.0f} s.</p>", f"<p>{html.escape(releases)}</p>",
         '<table id="summary"><thead><tr>' + "".join(f"<th>{c}</th>" for c in _COLUMNS) + "</tr></thead><tbody>"]
    for r in results:
        h.append(f'<tr><td><a href="#{slug(r.name)}">{html.escape(r.name)}</a></td><td>{r.kind}</td>'
                 f'<td class="num">{r.steps}</td>'
                 + "".join(f'<td class="num">{_cell(r, p, True)}</td>' for p in PRECISIONS)
                 + f'<td class="{_status_class(r)}">{_status_text(r)}</td>'
                 + "".join(f'<td class="num">{_optax_cell(r, p, True)}</td>' for p in PRECISIONS)
                 + f'<td class="{_optax_class(r)} verdict">{TABLE_VERDICT[r.optax_verdict]}</td></tr>')
    h.append("</tbody></table>")
    for r in results:
        h.append(f'<section id="{slug(r.name)}"><h2>{html.escape(r.name)}</h2>')
        h.append(f'<p class="nav"><a href="#summary">&uarr; {_BACK}</a></p>')
        h.append(f"<p>{html.escape(r.note)}</p>")
        h.append(f"<p>jaxsched: <code>{html.escape(reprs[r.name])}</code></p>")
        if r.optax_text:
            h.append(f"<p>optax{' (not expressible; nearest)' if not r.optax_exact else ''}: "
                     f"<code>{html.escape(r.optax_text)}</code></p>")
        if r.known_issue:
            h.append(f'<p class="known">Known issue: {html.escape(r.known_issue)}</p>')
        if not r.available:
            h.append(f'<p class="na">Not available: {html.escape(r.reason)}</p></section>')
            continue
        nums = ", ".join(f"{p} {_cell(r, p, True)}" for p in PRECISIONS)
        h.append(f'<p>jaxsched error: {nums}; <span class="{_status_class(r)}">{_status_text(r)}</span></p>')
        onums = ", ".join(f"{p if p == 'float32' else 'x64'} {_optax_cell(r, p, True)}" for p in PRECISIONS
                          if p in r.optax_err)
        h.append(f"<p>optax error: {onums + '; ' if onums else ''}"
                 f'<span class="{_optax_class(r)}">{r.optax_verdict}</span></p>')
        b64 = base64.b64encode(pngs[r.name]).decode()
        h.append(f'<img alt="{html.escape(r.name)}: LR against step" src="data:image/png;base64,{b64}">')
        h.append("</section>")
    h.append("</body></html>")
    html_path = out / "index.html"
    html_path.write_text("\n".join(h), encoding="utf-8")

    # ---- Markdown twin
    m = ["# jaxsched parity report", "", *[x for t in head for x in (t, "")], *[f"- {t}" for t in reading], "",
         f"- **jaxsched: {counts}.**", f"- **optax: {ocounts}.**", "",
         f"Run {env}; {elapsed:.0f} s.", "", releases, "", '<a id="summary"></a>', "",
         "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for r in results:
        m.append(f"| [{r.name}](#{slug(r.name)}) | {r.kind} | {r.steps} | "
                 + " | ".join(_cell(r, p, False) for p in PRECISIONS) + f" | {_status_text(r)} | "
                 + " | ".join(_nowrap(_optax_cell(r, p, False)) for p in PRECISIONS)
                 + f" | {_nowrap(TABLE_VERDICT[r.optax_verdict])} |")
    for r in results:
        m += ["", f'<a id="{slug(r.name)}"></a>', "", f"## {r.name}", "", f"[↑ {_BACK}](#summary)", "", r.note, "",
              f"jaxsched: `{reprs[r.name]}`"]
        if r.optax_text:
            m += ["", f"optax{' (not expressible; nearest)' if not r.optax_exact else ''}: `{r.optax_text}`"]
        if r.known_issue:
            m += ["", f"Known issue: {r.known_issue}"]
        if not r.available:
            m += ["", f"Not available: {r.reason}"]
            continue
        nums = ", ".join(f"{p} {_cell(r, p, False)}" for p in PRECISIONS)
        onums = ", ".join(f"{p if p == 'float32' else 'x64'} {_optax_cell(r, p, False)}" for p in PRECISIONS
                          if p in r.optax_err)
        m += ["", f"jaxsched error: {nums}; **{_status_text(r)}**",
              "", f"optax error: {onums + '; ' if onums else ''}**{r.optax_verdict}**"]
        m += ["", f"![{r.name}](plots/{slug(r.name)}.png)"]
    md_path = out / "README.md"
    md_path.write_text("\n".join(m) + "\n", encoding="utf-8")
    return html_path, md_path
