"""Plot schedules: ``jaxsched plot SPEC [SPEC ...] --steps N --out lr.png``.

Each SPEC is a constructor call such as ``'OneCycleLR(max_lr=0.1, total_steps=100)'``, parsed with
:func:`jaxsched.parse_spec` (never evaluated). The LR of every schedule is drawn against the optimizer
update that uses it (update ``k`` uses ``s(k)``, for ``k = 0 .. steps - 1``), parameter groups as separate
lines; a second panel shows the momentum (or Adam ``b1``) of the schedules that cycle it. With
``--steps-per-epoch N`` the x axis counts epochs (``k / N``). Needs matplotlib (``pip install
'jaxsched[plot]'``).
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from ._base import Schedule
from ._spec import SpecError, _names, parse_spec


class PlotError(ValueError):
    """A plot request that cannot be drawn (bad spec, bad option)."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError("plot: matplotlib is needed: pip install 'jaxsched[plot]'.") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load(specs: Sequence[str]) -> list[Schedule]:
    """Parse every spec; a spec that does not parse or construct raises :class:`PlotError` naming it."""
    out = []
    for text in specs:
        try:
            out.append(parse_spec(text))
        except SpecError as err:
            raise PlotError(str(err)) from None
        except (TypeError, ValueError) as err:
            raise PlotError(f"in schedule spec {text!r}: {err} Known schedules: {_names()}.") from None
    return out


def trajectories(schedule: Schedule, steps: int):
    """``(lr, momentum or None)`` as float64 arrays of shape ``(steps, G)`` for updates ``0 .. steps - 1``."""
    import jax
    import jax.numpy as jnp

    schedule._check_step(steps - 1)  # OneCycleLR past total_steps raises here (a traced step would hold)
    e = jnp.arange(steps)
    lr = np.asarray(jax.jit(jax.vmap(schedule))(e), np.float64).reshape(steps, -1)
    mom = None
    if getattr(schedule, "cycle_momentum", False):
        mom = np.asarray(jax.jit(jax.vmap(schedule.momentum))(e), np.float64).reshape(steps, -1)
    return lr, mom


def plot(specs: Sequence[str], steps: int, out: str, steps_per_epoch: int | None = None,
         title: str | None = None) -> list[Schedule]:
    """Draw the schedules described by ``specs`` into the image file ``out``; returns the schedules."""
    plt = _pyplot()
    fig, schedules = figure(specs, steps, steps_per_epoch, title)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return schedules


def figure(specs: Sequence[str], steps: int, steps_per_epoch: int | None = None, title: str | None = None):
    """``(matplotlib Figure, schedules)``: panel 0 the LR, panel 1 (if any schedule cycles it) the momentum."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise PlotError(f"plot: steps must be a positive integer, got steps={steps!r}.")
    if steps_per_epoch is not None and (isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int)
                                        or steps_per_epoch < 1):
        raise PlotError(f"plot: steps_per_epoch must be a positive integer, got steps_per_epoch={steps_per_epoch!r}.")
    if not specs:
        raise PlotError(f"plot: give at least one schedule spec, e.g. 'StepLR(0.1, step_size=30)'. "
                        f"Known schedules: {_names()}.")
    schedules = load(specs)
    data = []
    for text, s in zip(specs, schedules):
        try:
            data.append((text, *trajectories(s, steps)))
        except ValueError as err:  # e.g. OneCycleLR stepped past total_steps
            raise PlotError(f"in schedule spec {text!r}: {err}") from None
    plt = _pyplot()

    has_mom = any(m is not None for _, _, m in data)
    rows = 2 if has_mom else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows + 0.3), sharex=True, squeeze=False)
    axes = axes[:, 0]
    x = np.arange(steps, dtype=np.float64)
    if steps_per_epoch:
        x = x / steps_per_epoch
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    line = 0
    for text, lr, mom in data:
        groups = lr.shape[1]
        for g in range(groups):
            label = text if groups == 1 else f"{text} [group {g}]"
            color = colors[line % len(colors)]
            axes[0].plot(x, lr[:, g], color=color, lw=1.4, label=label)
            if mom is not None:
                axes[1].plot(x, mom[:, g], color=color, lw=1.4, label=label)
            line += 1
    axes[0].set_ylabel("learning rate")
    if has_mom:
        axes[1].set_ylabel("momentum / b1")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(f"epoch ({steps_per_epoch} steps each)" if steps_per_epoch else "step (optimizer update)")
    # one legend for both panels (a line keeps its colour in the momentum panel), below the axes
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, schedules


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="jaxsched plot",
        description="Plot the LR (and the cycled momentum) of one or more schedules, overlaid.",
        epilog="example: jaxsched plot 'OneCycleLR(max_lr=0.1, total_steps=100)' "
               "'CosineAnnealingLR(0.1, T_max=50)' --steps 100 --out lr.png")
    parser.add_argument("specs", nargs="+", metavar="SPEC",
                        help="a schedule as its constructor call, e.g. 'StepLR(0.1, step_size=30)'")
    parser.add_argument("--steps", type=int, default=100, help="number of optimizer updates to draw (default 100)")
    parser.add_argument("--out", default="lr.png", help="image file to write (default lr.png)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, metavar="N",
                        help="draw the x axis in epochs of N steps")
    parser.add_argument("--title", default=None)
    parser.add_argument("--x64", action="store_true", help="compute in float64 (jax_enable_x64)")
    args = parser.parse_args(argv)
    if args.x64:
        import jax

        jax.config.update("jax_enable_x64", True)
    try:
        plot(args.specs, args.steps, args.out, args.steps_per_epoch, args.title)
    except PlotError as err:
        parser.exit(2, f"jaxsched plot: error: {err}\n")
    print(f"wrote {args.out}")
    return 0
