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
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")  # hex: matplotlib's "C0" lookups are slow


def fmt_err(x: float | None) -> str:
    if x is None:
        return "—"
    if np.isnan(x):
        return "NaN"
    return "0" if x == 0 else f"{x:.1e}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def environment() -> str:
    import jax
    import optax
    import torch

    return (f"{datetime.date.today().isoformat()}, {platform.machine()} CPU with {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, torch {torch.__version__}, jax {jax.__version__}, "
            f"optax {optax.__version__}")


# ----------------------------------------------------------------------------------------------------------
# plots


def plot_case(res: Result) -> bytes:
    """PNG bytes: LR (and momentum) of torch, jaxsched and optax against the step; |difference| on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = res.traj
    has_mom = t.torch_mom is not None
    rows = 3 if has_mom else 2
    fig, axes = plt.subplots(rows, 1, figsize=(9.5, 2.1 * rows + 0.4), sharex=True)
    fig.subplots_adjust(left=0.09, right=0.74, top=1 - 0.45 / (2.1 * rows + 0.4), bottom=0.5 / (2.1 * rows + 0.4),
                        hspace=0.28)
    C = _COLORS
    groups = t.torch_lr.shape[1]
    steps = np.arange(t.torch_lr.shape[0])

    def trio(ax, ref, ours, ox, label):
        for g in range(groups):
            suffix = f" [group {g}]" if groups > 1 else ""
            ax.plot(steps, ref[:, g], color=C[g % len(C)], lw=3.0, alpha=0.35, label=f"torch{suffix}")
            ax.plot(steps, ours[:, g], color=C[g % len(C)], lw=1.1, ls="--", label=f"jaxsched float64{suffix}")
            if ox is not None:
                n = ox.shape[0]
                ax.plot(steps[:n], ox[:, g], color="k", lw=0.9, ls=":", label=f"optax float32{suffix}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    trio(axes[0], t.torch_lr, t.lr["float64"], t.optax_lr.get("float32"), "learning rate")
    if has_mom:
        trio(axes[1], t.torch_mom, t.mom["float64"], t.optax_mom.get("float32"), "momentum / b1")
    ax = axes[-1]

    def diff(x, ref, **kw):
        d = np.abs(np.asarray(x) - ref[: x.shape[0]]).max(axis=1)
        ax.plot(steps[: x.shape[0]], np.maximum(np.nan_to_num(d, nan=1e3), _FLOOR), **kw)

    diff(t.lr["float32"], t.torch_lr, color=C[1], lw=1.0, label="jaxsched float32")
    diff(t.lr["float64"], t.torch_lr, color=C[0], lw=1.0, label="jaxsched float64")
    if "float32" in t.optax_lr:
        diff(t.optax_lr["float32"], t.torch_lr, color="k", lw=0.8, ls=":", label="optax float32")
    if has_mom:
        diff(t.mom["float32"], t.torch_mom, color=C[1], lw=0.8, ls="--", alpha=0.7, label="momentum, jaxsched float32")
        diff(t.mom["float64"], t.torch_mom, color=C[0], lw=0.8, ls="--", alpha=0.7, label="momentum, jaxsched float64")
    scale = float(np.max(np.abs(t.torch_lr))) or 1.0
    for p, c in (("float32", C[1]), ("float64", C[0])):
        ax.axhline(TOLERANCE[p] * scale, color=c, lw=0.6, alpha=0.6)
    ax.set_yscale("log")
    ax.set_ylim(_FLOOR / 3, None)
    ax.set_ylabel("|x - torch|")
    ax.set_xlabel("step (calls of scheduler.step())")
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"difference to torch (0 drawn at {_FLOOR:g}; thin lines: parity targets)", fontsize=8)
    fig.suptitle(res.name, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# tables


def _err_html(x: float | None, html_mode: bool) -> str:
    text = fmt_err(x)
    return f'<span class="FAIL">{text}</span>' if html_mode and text == "NaN" else text


def _cell(res: Result, p: str, html_mode: bool) -> str:
    if not res.available:
        return "—"
    text = fmt_err(res.err[p])
    if p in res.mom_err:
        text += (" <small>mom " if html_mode else " (mom ") + fmt_err(res.mom_err[p]) + ("</small>" if html_mode else ")")
    return text


def _optax_cell(res: Result, p: str, html_mode: bool) -> str:
    if p not in res.optax_err:
        return "—"
    text = ("≈ " if not res.optax_exact else "") + _err_html(res.optax_err[p], html_mode)
    if p in res.optax_mom_err:
        text += (" <small>mom " if html_mode else " (mom ") + fmt_err(res.optax_mom_err[p]) + ("</small>" if html_mode else ")")
    return text


def summary_counts(results: list[Result]) -> str:
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


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { font-family: ui-monospace, monospace; white-space: nowrap; }
.pass { color: #176317; font-weight: 600; }
.FAIL, .known { color: #b00020; font-weight: 600; }
.na { color: #777; }
section { border-top: 1px solid #ddd; margin-top: 1.5em; padding-top: 0.5em; }
code { background: #f5f5f5; padding: 1px 3px; font-size: 0.9em; }
img { max-width: 100%; }
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


def write(results: list[Result], reprs: dict, pngs: dict, out: Path, elapsed: float) -> tuple[Path, Path]:
    """Write ``out/index.html`` and ``out/README.md`` (+ ``out/plots/*.png``); returns the two paths.

    ``reprs`` and ``pngs`` map a case name to its construction text and to its plot (:func:`plot_case`).
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    env = environment()
    counts = summary_counts(results)
    head = ("torch 2.13 against jaxsched (jitted, float32 and float64) and the optax construction an expert "
            "would write. Errors are max |x - torch| over the whole trajectory as a fraction of the largest "
            f"torch LR (momentum: of the largest momentum). Targets: float32 <= {TOLERANCE['float32']:g}, "
            f"float64 <= {TOLERANCE['float64']:g}. optax counts are int32 as in optax's optimizers; "
            "'≈' marks a case optax cannot express (the nearest construction is measured).")
    for name, png in pngs.items():
        (out / "plots" / f"{slug(name)}.png").write_bytes(png)

    # ---- HTML
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         "<title>jaxsched parity report</title>", f"<style>{_CSS}</style></head><body>",
         "<h1>jaxsched parity report</h1>", f"<p>{html.escape(head)}</p>",
         f"<p><b>{html.escape(counts)}</b>. Run {html.escape(env)}; {elapsed:.0f} s.</p>",
         "<table><thead><tr><th>case</th><th>kind</th><th>steps</th><th>jaxsched float32</th>"
         "<th>jaxsched float64</th><th>optax float32</th><th>optax x64</th><th>result</th></tr></thead><tbody>"]
    for r in results:
        h.append(f'<tr><td><a href="#{slug(r.name)}">{html.escape(r.name)}</a></td><td>{r.kind}</td>'
                 f'<td class="num">{r.steps}</td>'
                 + "".join(f'<td class="num">{_cell(r, p, True)}</td>' for p in PRECISIONS)
                 + "".join(f'<td class="num">{_optax_cell(r, p, True)}</td>' for p in PRECISIONS)
                 + f'<td class="{_status_class(r)}">{_status_text(r)}</td></tr>')
    h.append("</tbody></table>")
    for r in results:
        h.append(f'<section id="{slug(r.name)}"><h2>{html.escape(r.name)}</h2>')
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
        b64 = base64.b64encode(pngs[r.name]).decode()
        h.append(f'<img alt="{html.escape(r.name)}: LR against step" src="data:image/png;base64,{b64}">')
        h.append("</section>")
    h.append("</body></html>")
    html_path = out / "index.html"
    html_path.write_text("\n".join(h), encoding="utf-8")

    # ---- Markdown twin
    m = ["# jaxsched parity report", "", head, "", f"**{counts}.** Run {env}; {elapsed:.0f} s.", "",
         "| case | kind | steps | jaxsched float32 | jaxsched float64 | optax float32 | optax x64 | result |",
         "|---|---|---|---|---|---|---|---|"]
    for r in results:
        m.append(f"| [{r.name}](#{slug(r.name)}) | {r.kind} | {r.steps} | "
                 + " | ".join(_cell(r, p, False) for p in PRECISIONS) + " | "
                 + " | ".join(_optax_cell(r, p, False) for p in PRECISIONS) + f" | {_status_text(r)} |")
    for r in results:
        m += ["", f'<a id="{slug(r.name)}"></a>', "", f"## {r.name}", "", r.note, "", f"jaxsched: `{reprs[r.name]}`"]
        if r.optax_text:
            m += ["", f"optax{' (not expressible; nearest)' if not r.optax_exact else ''}: `{r.optax_text}`"]
        if r.known_issue:
            m += ["", f"Known issue: {r.known_issue}"]
        if not r.available:
            m += ["", f"Not available: {r.reason}"]
            continue
        m += ["", f"![{r.name}](plots/{slug(r.name)}.png)"]
    md_path = out / "README.md"
    md_path.write_text("\n".join(m) + "\n", encoding="utf-8")
    return html_path, md_path
