"""Plot schedules: ``jaxsched plot SPEC [SPEC ...] --steps N --out lr.png``.

Each SPEC is a constructor call such as ``'OneCycleLR(max_lr=0.1, total_steps=100)'``, parsed with
:func:`jaxsched.parse_spec` (never evaluated). The LR of every step schedule is drawn against the optimizer
update that uses it (update ``k`` uses ``s(k)``, for ``k = 0 .. steps - 1``), parameter groups as separate
lines; a second panel shows the momentum (or Adam ``b1``) of the schedules that cycle it.

A spec is a schedule of the optimizer update. ``--steps-per-epoch N`` only draws the x axis in epochs
(``k / N``); to step a per-epoch schedule once per epoch, write it as ``PerEpoch(StepLR(0.1, step_size=30),
steps_per_epoch=N)``, as in code.

Metric-driven schedules (anything with ``init`` and ``update``, e.g. ``ReduceLROnPlateau`` and transformers'
``GreedyLR``) have no LR per step: their LR depends on the metric fed to each ``update``. They are drawn from a
metric sequence (``--metrics 1.0,0.9,0.9,...``): the LR after ``k`` calls of ``update``, ``k = 0 .. len(metrics)``,
one call per optimizer update, or one per epoch with ``--steps-per-epoch``. Without ``--metrics`` they are
refused with a message saying so.

Needs matplotlib (``pip install 'jaxsched[plot]'``).
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._spec import SpecError, grouped_names, parse_spec

#: Most optimizer updates one plot draws (a figure is about 800 pixels wide; this bounds memory and time).
MAX_STEPS = 1_000_000
#: Most metric values accepted by ``--metrics``.
MAX_METRICS = 100_000
#: The install hint every plotting entry point gives when matplotlib is missing.
MATPLOTLIB_HINT = "matplotlib is needed to plot: pip install 'jaxsched[plot]'."


class PlotError(ValueError):
    """A plot request that cannot be drawn (bad spec, bad option)."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError(MATPLOTLIB_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_metric_driven(schedule: Any) -> bool:
    """True for a stateful schedule (the ``init``/``update`` protocol of optax's ``StatefulSchedule``)."""
    return hasattr(schedule, "init") and hasattr(schedule, "update")


def supported_formats() -> list[str]:
    """The image file extensions matplotlib can write."""
    _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_out(out: str) -> None:
    """Refuse an output path that cannot be written, before anything is computed."""
    path = os.fspath(out)
    if os.path.isdir(path):
        raise PlotError(f"--out {path!r} is a folder; give an image file name such as lr.png.")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise PlotError(f"--out {path!r}: the folder {folder!r} does not exist; create it first.")
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    formats = supported_formats()
    if ext not in formats:
        got = f"extension {'.' + ext!r}" if ext else "no extension"
        raise PlotError(f"--out {path!r} has {got}; use one of " + ", ".join("." + f for f in formats) + ".")
    if ext == "pgf":  # matplotlib writes .pgf by running a TeX program: look for it before computing anything
        import matplotlib

        tex = str(matplotlib.rcParams["pgf.texsystem"])
        if shutil.which(tex) is None:
            raise PlotError(f"--out {path!r}: the .pgf format needs {tex!r} (matplotlib's "
                            f"rcParams['pgf.texsystem']), which is not installed; install TeX or use .pdf or .svg.")


def load(specs: Sequence[str]) -> list:
    """Parse every spec; a spec that does not parse or construct raises :class:`PlotError` naming it."""
    out = []
    for text in specs:
        try:
            out.append(parse_spec(text))
        except SpecError as err:
            message = str(err)
            if err.unknown_name:  # the names on indented lines, by framework, instead of one long line
                message = message[:message.rindex("Known schedules:")] + "Known schedules:" + grouped_names()
            raise PlotError(message) from None
    return out


def trajectories(schedule, steps: int):
    """``(lr, momentum or None)`` as float64 arrays of shape ``(steps, G)`` for updates ``0 .. steps - 1``."""
    import jax
    import jax.numpy as jnp

    schedule(steps - 1)  # eager: OneCycleLR past total_steps raises here (a traced step would hold)
    e = jnp.arange(steps)
    lr = np.asarray(jax.jit(jax.vmap(schedule))(e), np.float64).reshape(steps, -1)
    mom = None
    if getattr(schedule, "cycle_momentum", False):
        mom = np.asarray(jax.jit(jax.vmap(schedule.momentum))(e), np.float64).reshape(steps, -1)
    return lr, mom


def metric_trajectory(schedule, metrics: Sequence[float]) -> np.ndarray:
    """The LR of a metric-driven schedule after ``k`` calls of ``update(state, value=metrics[k-1])``,
    ``k = 0 .. len(metrics)``, as a float64 array of shape ``(len(metrics) + 1, G)`` (one jitted scan)."""
    import jax
    import jax.numpy as jnp

    from ._base import scan_metrics

    run = jax.jit(lambda ms: scan_metrics(schedule, ms))
    out = np.asarray(run(jnp.asarray(np.asarray(metrics, np.float64))), np.float64)
    return out.reshape(len(metrics) + 1, -1)


def plot(specs: Sequence[str], steps: int, out: str, steps_per_epoch: int | None = None,
         title: str | None = None, metrics: Sequence[float] | None = None, log: bool = False) -> list:
    """Draw the schedules described by ``specs`` into the image file ``out``; returns the schedules.

    ``out`` is checked (folder exists, format supported) before anything is computed.
    """
    check_out(out)
    plt = _pyplot()
    fig, schedules = figure(specs, steps, steps_per_epoch, title, metrics=metrics, log=log)
    try:
        fig.savefig(out, dpi=100, bbox_inches="tight")
    except OSError as err:
        raise PlotError(f"--out {os.fspath(out)!r} cannot be written: {err.strerror or err}.") from None
    except RuntimeError as err:  # a backend that runs an external program (pgf: TeX) and fails
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PlotError(f"--out {os.fspath(out)!r} cannot be written: {first}") from None
    finally:
        plt.close(fig)
    return schedules


def _check_options(steps, steps_per_epoch, metrics):
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise PlotError(f"steps must be a positive integer, got steps={steps!r}.")
    if steps > MAX_STEPS:
        raise PlotError(f"steps must be at most {MAX_STEPS:,} (a plot is about 800 pixels wide; drawing more "
                        f"points only costs memory), got steps={steps!r}. For a long run, plot the per-epoch "
                        f"schedule itself (one point per epoch) or the first steps.")
    if steps_per_epoch is not None and (isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int)
                                        or steps_per_epoch < 1):
        raise PlotError(f"steps_per_epoch must be a positive integer, got steps_per_epoch={steps_per_epoch!r}.")
    if metrics is not None:
        if len(metrics) == 0:
            raise PlotError("metrics must hold at least one value (one per update() call), got metrics=[].")
        if len(metrics) > MAX_METRICS:
            raise PlotError(f"metrics must hold at most {MAX_METRICS:,} values, got {len(metrics):,}.")


def figure(specs: Sequence[str], steps: int, steps_per_epoch: int | None = None, title: str | None = None,
           *, metrics: Sequence[float] | None = None, log: bool = False):
    """``(matplotlib Figure, schedules)``: panel 0 the LR, panel 1 (if any schedule cycles it) the momentum.

    ``metrics`` feeds every metric-driven schedule (one value per ``update`` call); ``log`` draws the LR
    on a log axis. Titles and labels are drawn as plain text (a ``$`` in a spec is not mathtext).
    """
    _check_options(steps, steps_per_epoch, metrics)
    if not specs:
        raise PlotError("give at least one schedule spec, e.g. 'StepLR(0.1, step_size=30)'.")
    schedules = load(specs)
    driven = [t for t, s in zip(specs, schedules) if is_metric_driven(s)]
    if driven and metrics is None:
        raise PlotError(f"schedule spec {driven[0]!r} is metric-driven: its LR depends on the metric given to each "
                        f"update(), not on the step, so it has no curve of its own. Give the metric of each "
                        f"update with --metrics, e.g. --metrics 1.0,0.9,0.9,0.95 (one value per update() call).")
    if metrics is not None and not driven:
        raise PlotError("metrics are given but no schedule is metric-driven (ReduceLROnPlateau, GreedyLR, ...); "
                        "drop --metrics or add such a schedule.")
    data = []
    for text, s in zip(specs, schedules):
        try:
            if is_metric_driven(s):
                assert metrics is not None
                data.append((text, np.arange(len(metrics) + 1, dtype=np.float64),
                             metric_trajectory(s, metrics), None))
            else:
                lr, mom = trajectories(s, steps)
                x = np.arange(steps, dtype=np.float64)
                data.append((text, x / steps_per_epoch if steps_per_epoch else x, lr, mom))
        except (ValueError, OverflowError, TypeError) as err:  # e.g. OneCycleLR stepped past total_steps
            raise PlotError(f"in schedule spec {text!r}: {err}") from None
    return _draw(_pyplot(), data, steps_per_epoch, title, log, bool(driven)), schedules


def _draw(plt, data, steps_per_epoch, title, log, any_driven):
    has_mom = any(m is not None for *_, m in data)
    rows = 2 if has_mom else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows + 0.3), sharex=True, squeeze=False)
    axes = axes[:, 0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    line = 0
    for text, x, lr, mom in data:
        groups = lr.shape[1]
        for g in range(groups):
            label = text if groups == 1 else f"{text} [group {g}]"
            color = colors[line % len(colors)]
            axes[0].plot(x, lr[:, g], color=color, lw=1.4, label=label)
            if mom is not None:
                axes[1].plot(x, mom[:, g], color=color, lw=1.4, label=label)
            line += 1
    axes[0].set_ylabel("learning rate" + (" (log scale)" if log else ""))
    if log:
        axes[0].set_yscale("log")
    if has_mom:
        axes[1].set_ylabel("momentum / b1")
    for ax in axes:
        ax.grid(alpha=0.3)
    if steps_per_epoch:
        xlabel = f"epoch ({steps_per_epoch} steps each)"
        if any_driven:
            xlabel += "; metric-driven schedules: one update() per epoch"
    else:
        xlabel = "step (optimizer update)"
        if any_driven:
            xlabel += "; metric-driven schedules: one update() per step"
    axes[-1].set_xlabel(xlabel)
    # one legend for both panels (a line keeps its colour in the momentum panel), below the axes
    handles, labels = axes[0].get_legend_handles_labels()
    legend = axes[-1].legend(handles, labels, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                             frameon=False)
    for t in legend.get_texts():  # a '$' in a spec is text, not mathtext (tick labels keep mathtext)
        t.set_parse_math(False)
    if title:
        fig.suptitle(title, parse_math=False)
    fig.tight_layout()
    return fig


def _metrics_arg(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            shown = text if len(text) <= 80 else text[:80] + "..."
            raise argparse.ArgumentTypeError(f"must be numbers separated by commas, e.g. 1.0,0.9,0.9; "
                                             f"{part.strip()[:40]!r} in {shown!r} is not a number") from None
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``jaxsched plot`` (shared by ``jaxsched plot`` and :func:`main`)."""
    parser.add_argument("specs", nargs="+", metavar="SPEC",
                        help="a schedule as its constructor call, e.g. 'StepLR(0.1, step_size=30)'")
    parser.add_argument("--steps", type=int, default=100,
                        help=f"number of optimizer updates to draw (default 100, at most {MAX_STEPS:,})")
    parser.add_argument("--out", default="lr.png",
                        help="image file to write; its extension picks the format (default lr.png)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, metavar="N",
                        help="draw the x axis in epochs of N steps (the axis only: to step a schedule once per "
                             "epoch write PerEpoch(SPEC, steps_per_epoch=N))")
    parser.add_argument("--metrics", type=_metrics_arg, default=None, metavar="M1,M2,...",
                        help="metric values fed to metric-driven schedules (ReduceLROnPlateau, GreedyLR), one per "
                             "update() call: once per step, or once per epoch with --steps-per-epoch")
    parser.add_argument("--log", action="store_true", help="draw the learning rate on a log axis")
    parser.add_argument("--title", default=None)
    parser.add_argument("--x64", action="store_true", help="compute in float64 (jax_enable_x64)")


_DESCRIPTION = "Plot the LR (and the cycled momentum) of one or more schedules, overlaid."
_EPILOG = ("example: jaxsched plot 'OneCycleLR(max_lr=0.1, total_steps=100)' "
           "'CosineAnnealingLR(0.1, T_max=50)' --steps 100 --out lr.png")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run a parsed ``jaxsched plot`` command; an error exits with status 2 and one line on stderr."""
    if args.x64:
        import jax

        jax.config.update("jax_enable_x64", True)
    try:
        plot(args.specs, args.steps, args.out, args.steps_per_epoch, args.title, metrics=args.metrics,
             log=args.log)
    except PlotError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    """``jaxsched plot`` on its own (``jaxsched.plot.main(['SPEC', '--steps', '100'])``)."""
    parser = argparse.ArgumentParser(prog="jaxsched plot", description=_DESCRIPTION, epilog=_EPILOG)
    add_arguments(parser)
    return run(parser.parse_args(argv), parser)
