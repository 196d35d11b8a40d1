"""The LR range test (Smith, "Super-Convergence", 2017; fastai's ``lr_find``) for optax training.

``jaxsched.lr_find(loss_fn, params, optimizer, batches)`` trains a copy of ``params`` for up to
``num_steps`` steps while the LR grows exponentially from ``start_lr`` to ``end_lr``
(:class:`jaxsched.ExponentialLR` is the ramp), records the loss, smooths it with a debiased exponential
moving average, and stops once the smoothed loss has risen above its best by ``diverge - 1`` times the
best's magnitude (``diverge`` times the best for positive losses; also right for negative ones), or is not
finite. It suggests an LR two ways:

* ``steep``: where the smoothed loss falls fastest against ``log(lr)`` (most negative centred difference
  over a twentieth of the curve);
* ``valley`` (fastai's rule): the middle of the longest stretch over which the smoothed loss keeps falling
  (its longest decreasing subsequence), a more conservative pick that is robust to a noisy curve;
* ``minimum``: where the smoothed loss is lowest, i.e. the largest LR at which the loss still improved:
  Smith's upper bound for a cyclical or one-cycle schedule ("the learning rate when the accuracy slows,
  becomes ragged, or starts to fall", Smith 2017, section 3.3).

Lag correction: the smoothed loss at step ``i`` is a weighted mean of the losses of steps ``i - k`` with
weights ``beta**k`` (debiased), so it describes the loss about ``lag_i = sum_k k beta**k / sum_k beta**k``
steps earlier (exactly so for a loss that changes linearly over the window; ``lag`` tends to
``beta / (1 - beta)``, 49 steps at ``beta=0.98``). On an exponential ramp that is a fixed factor in LR:
with 100 steps over 8 decades, about 4 decades. Both suggestions therefore read the LR at step
``i - lag_i`` (interpolated on the log scale) for the point ``i`` chosen on the smoothed curve, where the
uncorrected rule (fastai's) reads the LR at step ``i``, which the loss has not yet seen.

For ``OneCycleLR(max_lr=...)`` use ``minimum`` (Smith's bound); ``steep`` and ``valley`` are the LRs at which
the loss fell fastest, good constant LRs. On the CIFAR-10 ``cpu`` preset's recorded curve (300 steps,
1e-5 to 10; ``benchmarks/results/lr_find``) the lag-corrected ``minimum`` is 0.133, against the best
max_lr 0.1 of the sweep there, where the uncorrected ``steep`` (0.0187) cost 6 points.
``result.plot()`` draws the curve.
The caller's ``params`` are never updated.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._checks import check_float, check_int
from ._schedules import ExponentialLR

#: the same install hint as ``jaxsched plot`` (jaxsched.plot.MATPLOTLIB_HINT)
MATPLOTLIB_HINT = "matplotlib is needed to plot: pip install 'jaxsched[plot]'."


@dataclasses.dataclass(frozen=True)
class LRFindResult:
    """What :func:`lr_find` recorded. Arrays hold one entry per step run (``lrs[i]`` drove update ``i``;
    ``losses[i]`` is the loss of batch ``i`` before that update).

    Built by :func:`lr_find`, or by :meth:`from_curve` from a recorded curve (which computes the suggestions
    and stores the curve as float64 arrays); each argument is kept as the attribute of the same name.

    Args:
      lrs: the LR of each step run.
      losses: the raw loss of each step.
      smoothed: the debiased exponential moving average of ``losses`` (smoothing ``beta``).
      steep: the suggested LR where ``smoothed`` falls fastest against ``log(lr)``, lag-corrected when ``beta`` is
        set; None when fewer than two points were left to choose from.
      valley: fastai's suggestion, the middle of the longest decreasing subsequence of ``smoothed``, lag-corrected
        when ``beta`` is set; None when no point was left to choose from.
      stop_reason: why the run stopped: ``"completed"`` (all ``num_steps``), ``"diverged"`` (the smoothed loss
        rose above its best by more than ``(diverge - 1) * |best|``, or was not finite; that last point is never
        suggested) or ``"out of batches"``.
      skip_start: points at the start of the curve left out of the suggestions, fewer on a short curve
        (``lr_find`` and :meth:`from_curve` default to 10).
      skip_end: points at the end left out of the suggestions, fewer on a short curve (``lr_find`` and
        :meth:`from_curve` default to 5).
      minimum: the LR where ``smoothed`` is lowest, lag-corrected when ``beta`` is set: Smith's upper bound for
        ``OneCycleLR(max_lr=...)`` (default None: no finite point to choose from, or not computed).
      beta: the smoothing the curve was recorded with, used for the lag correction and by :meth:`plot`
        (default None: not known; LRs are read at the chosen step, uncorrected).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steep: float | None
    valley: float | None
    stop_reason: str
    skip_start: int
    skip_end: int
    minimum: float | None = None
    beta: float | None = None

    @classmethod
    def from_curve(cls, lrs, losses, smoothed, stop_reason: str, skip_start: int = 10, skip_end: int = 5,
                   beta: float | None = None):
        """The result (with both suggestions) for a recorded curve, e.g. one read back from :meth:`to_dict`.

        ``beta``: the smoothing the curve was recorded with; the suggestions are then corrected for its
        lag (see the module docstring). ``None`` reads the LR at the chosen step itself (no correction).
        """
        lrs, losses, smoothed = (np.asarray(v, np.float64) for v in (lrs, losses, smoothed))
        effective = lrs if beta is None or lrs.size == 0 else lag_corrected_lrs(lrs, beta)
        usable = len(lrs) - (1 if stop_reason == "diverged" else 0)  # the diverging point is not a candidate
        lo = min(skip_start, max(usable - 2, 0))
        hi = min(max(usable - skip_end, lo + 2), usable)
        sel_lrs, sel = effective[lo:hi], smoothed[lo:hi]
        i_steep, i_valley = steepest(sel_lrs, sel), valley(sel)
        finite = np.where(np.isfinite(sel), sel, np.inf)
        i_min = int(np.argmin(finite)) if sel.size and np.isfinite(finite).any() else None
        return cls(lrs=lrs, losses=losses, smoothed=smoothed,
                   steep=None if i_steep is None else float(sel_lrs[i_steep]),
                   valley=None if i_valley is None else float(sel_lrs[i_valley]),
                   stop_reason=stop_reason, skip_start=skip_start, skip_end=skip_end,
                   minimum=None if i_min is None else float(sel_lrs[i_min]), beta=beta)

    @property
    def num_steps(self) -> int:
        return int(self.lrs.shape[0])

    def to_dict(self) -> dict:
        """JSON-ready summary (suggestions, stop reason, the curve)."""
        return {"steep": self.steep, "valley": self.valley, "minimum": self.minimum,
                "stop_reason": self.stop_reason, "num_steps": self.num_steps, "beta": self.beta,
                "lrs": self.lrs.tolist(), "losses": self.losses.tolist(),
                "smoothed": self.smoothed.tolist()}

    def plot(self, path=None, ax=None, title: str | None = None):
        """Smoothed (and raw) loss against the LR on a log axis, with both suggestions marked.

        Saves to ``path`` when given; returns the matplotlib figure. Without matplotlib, raises ImportError
        with the install hint ``jaxsched plot`` gives.
        """
        try:
            import matplotlib
        except ImportError:
            raise ImportError(f"LRFindResult.plot: {MATPLOTLIB_HINT}") from None
        if ax is None and path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 4.2))
        ax = ax or fig.add_subplot(1, 1, 1)
        ax.plot(self.lrs, self.losses, color="0.75", lw=0.8, label="loss (raw)")
        # each smoothed point at the LR it describes (lag-corrected when beta is known)
        x = self.lrs if self.beta is None or not self.num_steps else lag_corrected_lrs(self.lrs, self.beta)
        ax.plot(x, self.smoothed, color="C0", lw=1.8,
                label="loss (smoothed)" if self.beta is None else "loss (smoothed, lag-corrected)")
        for name, lr, color in (("steep", self.steep, "C3"), ("valley", self.valley, "C2"),
                                ("minimum", self.minimum, "C1")):
            if lr is not None:
                i = int(np.argmin(np.abs(np.log(x) - math.log(lr))))
                ax.plot([lr], [self.smoothed[i]], "o", color=color, label=f"{name} = {lr:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        shown = self.smoothed[np.isfinite(self.smoothed)]
        if shown.size:
            lo, hi = float(shown.min()), float(shown[: max(1, self.skip_start + 1)].max())
            ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), max(hi, lo) + 0.3 * (hi - lo + 1e-12))
        ax.set_title(title or f"LR range test ({self.num_steps} steps, stopped: {self.stop_reason})")
        ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def ema_lag(n: int, beta: float) -> np.ndarray:
    """``lag[i]``: the mean age in steps of the debiased EMA's weights at step ``i`` (``0`` at step 0,
    tending to ``beta / (1 - beta)``)."""
    i = np.arange(n, dtype=np.float64)
    if beta == 0:
        return np.zeros(n)
    # sum_{k<=i} k b^k / sum_{k<=i} b^k, in closed form
    b = float(beta)
    num = b * (1 - (i + 1) * b**i + i * b ** (i + 1)) / (1 - b) ** 2
    den = (1 - b ** (i + 1)) / (1 - b)
    return num / den


def lag_corrected_lrs(lrs, beta: float) -> np.ndarray:
    """The LR each smoothed point describes: the recorded LR at step ``i - lag[i]``, interpolated on the
    log scale (the ramp is geometric, so this is exact between steps)."""
    lrs = np.asarray(lrs, np.float64)
    idx = np.arange(lrs.size, dtype=np.float64)
    return np.exp(np.interp(idx - ema_lag(lrs.size, beta), idx, np.log(lrs)))


def steepest(lrs, losses, width: int | None = None) -> int | None:
    """Index where ``losses`` falls fastest against ``log(lrs)`` (None with fewer than 2 points).

    The slope at ``i`` is a centred difference over ``i - width .. i + width`` (default ``width`` =
    ``len // 20``, at least 1): a one-step difference is dominated by batch noise near the start of a ramp,
    where the smoothed loss still moves a lot per step.
    """
    lrs, losses = np.asarray(lrs, np.float64), np.asarray(losses, np.float64)
    n = lrs.size
    if n < 2:
        return None
    w = max(1, n // 20) if width is None else max(1, int(width))
    w = min(w, (n - 1) // 2) if n > 2 else 1
    lo = np.clip(np.arange(n) - w, 0, n - 1)
    hi = np.clip(np.arange(n) + w, 0, n - 1)
    x = np.log(lrs)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (losses[hi] - losses[lo]) / (x[hi] - x[lo])
    slope = np.where(np.isfinite(slope), slope, np.inf)
    return int(np.argmin(slope))


def valley(losses) -> int | None:
    """fastai's valley rule: the middle index of the longest decreasing subsequence of ``losses``."""
    losses = np.asarray(losses, np.float64)
    n = losses.size
    if n == 0:
        return None
    length = np.ones(n, np.int64)
    first = np.arange(n)
    for i in range(1, n):
        earlier = np.nonzero(losses[:i] > losses[i])[0]
        if earlier.size:
            best = length[earlier].max()
            # ties: the latest start, so flat noise before the fall is not the valley
            j = earlier[length[earlier] == best][-1]
            length[i] = length[j] + 1
            first[i] = first[j]
    end = int(np.argmax(length))
    return (int(first[end]) + end) // 2


def lr_find(
    loss_fn: Callable,
    params: Any,
    optimizer: Callable[[Callable], Any],
    batches: Iterable | Callable[[int], Any],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
    state: Any = None,
    skip_start: int = 10,
    skip_end: int = 5,
) -> LRFindResult:
    """Run the LR range test and return the curve and the suggested LRs.

    Args:
      loss_fn: ``loss_fn(params, batch) -> loss`` (a scalar), or with ``state`` given
        ``loss_fn(params, state, batch) -> (loss, new_state)`` (e.g. Flax ``batch_stats``).
      params: the parameters to start from; a copy is trained, ``params`` itself is never changed.
      optimizer: a factory ``learning_rate -> optax.GradientTransformation``, called once with the
        exponential ramp (an optax schedule), e.g. ``lambda lr: optax.sgd(lr, momentum=0.9)``.
      batches: an iterable of batches (stops early when exhausted), or ``i -> batch``.
      start_lr, end_lr: the ramp's first and last LR (default 1e-7 and 10); ``0 < start_lr < end_lr``.
      num_steps: updates in the ramp (default 100); the LR grows by ``(end_lr / start_lr) ** (1 / (num_steps - 1))``.
      beta: smoothing of the loss, ``avg = beta * avg + (1 - beta) * loss``, debiased (default 0.98); the
        suggestions are corrected for its lag.
      diverge: stop once the smoothed loss exceeds its best by ``(diverge - 1) * |best|`` (default 4: four
        times the best for a positive loss).
      state: optional extra training state threaded through ``loss_fn`` (not differentiated).
      skip_start, skip_end: points left out of the suggestions at each end (defaults 10 and 5, as fastai).

    >>> import jax.numpy as jnp, optax, itertools, jaxsched
    >>> x = jnp.linspace(-1, 1, 32)[:, None] * jnp.asarray([[1.0, 0.5]])
    >>> loss = lambda w, b: 0.5 * jnp.mean((b[0] @ w - b[1]) ** 2)
    >>> r = jaxsched.lr_find(loss, jnp.zeros(2), lambda lr: optax.sgd(lr), itertools.repeat((x, x[:, 0])),
    ...                      start_lr=1e-3, end_lr=100.0, num_steps=60)
    >>> r.stop_reason, r.valley < r.minimum < 2 / 0.4435, r.steep < r.minimum  # GD diverges above 2 / L
    ('diverged', True, True)
    """
    n = "lr_find"
    start_lr = check_float(n, "start_lr", start_lr)
    end_lr = check_float(n, "end_lr", end_lr)
    if not 0 < start_lr < end_lr:
        raise ValueError(f"{n}: need 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}.")
    num_steps = check_int(n, "num_steps", num_steps, minimum=2)
    beta = check_float(n, "beta", beta)
    if not 0 <= beta < 1:
        raise ValueError(f"{n}: beta must be in [0, 1), got beta={beta!r}.")
    diverge = check_float(n, "diverge", diverge)
    if diverge <= 1:
        raise ValueError(f"{n}: diverge must be > 1 (a multiple of the best smoothed loss), got diverge={diverge!r}.")
    skip_start = check_int(n, "skip_start", skip_start, minimum=0)
    skip_end = check_int(n, "skip_end", skip_end, minimum=0)
    if not callable(optimizer):
        raise TypeError(f"{n}: optimizer must be a factory learning_rate -> optax.GradientTransformation "
                        f"(e.g. lambda lr: optax.sgd(lr, momentum=0.9)), got optimizer={optimizer!r}.")

    ramp = ExponentialLR(start_lr, gamma=(end_lr / start_lr) ** (1.0 / (num_steps - 1)))
    tx = optimizer(ramp)
    if not hasattr(tx, "init") or not hasattr(tx, "update"):
        raise TypeError(f"{n}: optimizer(learning_rate) must return an optax.GradientTransformation, got {tx!r}.")
    params = jax.tree_util.tree_map(lambda p: jnp.array(p, copy=True), params)
    opt_state = tx.init(params)
    with_state = state is not None

    def objective(p, s, batch):
        if with_state:
            loss, new_s = loss_fn(p, s, batch)
            return loss, new_s
        return loss_fn(p, batch), s

    @jax.jit
    def step(p, o, s, batch):
        (loss, new_s), grads = jax.value_and_grad(objective, has_aux=True)(p, s, batch)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, new_s, loss

    source = (batches(i) for i in itertools.count()) if callable(batches) else iter(batches)
    lrs, losses, smoothed = [], [], []
    avg, best, reason = 0.0, math.inf, "completed"
    for i in range(num_steps):
        try:
            batch = next(source)
        except StopIteration:
            reason = "out of batches"
            break
        params, opt_state, state, loss = step(params, opt_state, state, batch)
        loss = float(loss)
        avg = beta * avg + (1 - beta) * loss
        sm = avg / (1 - beta ** (i + 1))
        lrs.append(float(ramp(i)))
        losses.append(loss)
        smoothed.append(sm)
        # risen above the best by (diverge - 1) x its magnitude: diverge x best for positive losses, and
        # no premature stop for negative ones (where sm > diverge * best held from the second step)
        if not math.isfinite(sm) or (math.isfinite(best) and sm - best > (diverge - 1) * abs(best)):
            reason = "diverged"
            break
        best = min(best, sm)

    return LRFindResult.from_curve(lrs, losses, smoothed, reason, skip_start=skip_start, skip_end=skip_end,
                                   beta=beta)
