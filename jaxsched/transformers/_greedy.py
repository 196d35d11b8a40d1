"""transformers' GreedyLR as a jaxsched StatefulSchedule."""


from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .. import _checks as checks
from .._base import LR, StatefulSchedule, leaf, static
from .._checks import check_choice, check_float, check_int, check_lengths, check_lr, per_group
from .._numerics import Array, arr, float_dtype, inc, int_dtype
from .._value import _is_tracer

# ----------------------------------------------------------------------------------------------------------
# GreedyLR: metric-driven, both ways


class GreedyLRState(NamedTuple):
    """GreedyLR's state, with transformers' attribute names. Floats in the compute dtype, counters int."""

    lr: Array                # () or (G,): the LR each group holds
    best: Array              # ()
    num_bad_epochs: Array    # () int
    num_good_epochs: Array   # () int
    cooldown_counter: Array  # () int
    warmup_counter: Array    # () int
    reset_start: Array       # () int: cuts at min_lr left before the reset
    last_epoch: Array        # () int
    window: Array            # (window_size,): the smoothing window, a ring buffer (smooth=True)
    window_count: Array      # () int: values in the window
    window_head: Array       # () int: where the next value goes (the oldest value when full)
    window_sum: Array        # (): running sum, updated as transformers' StreamingAverage does


class GreedyLR(StatefulSchedule, mirrors="transformers.optimization.GreedyLR"):
    """transformers' ``GreedyLR`` (name ``"greedy"``) as a functional, jittable state machine.

    After more than ``patience`` consecutive improving metrics the LR is divided by ``factor`` (up to
    ``max_lr``; then ``warmup`` metrics are ignored); after more than ``patience`` non-improving ones it is
    multiplied by ``factor`` (down to ``min_lr``; then ``cooldown`` metrics are ignored). A change smaller than
    ``eps`` is skipped. After ``reset_start`` cuts with every group at ``min_lr`` everything resets to the
    initial LR. ``smooth=True`` feeds the mean of the last ``window_size`` metrics instead of the metric.

    Use: ``state = g.init()``, then once per evaluation ``state = g.update(state, value=metric)``; ``g(state)``
    is the LR. ``update`` is branch-free and runs under ``jax.jit``. ``verbose=True`` cannot print from
    traced code and is rejected.

    Mirrors ``GreedyLR(optimizer, mode="min", factor=0.95, patience=10, threshold=1e-6, threshold_mode="abs",
    cooldown=0, warmup=0, min_lr=1e-3, max_lr=1.0, eps=1e-8, verbose=False, smooth=False, window_size=50,
    reset_start=500)`` with the optimizer replaced by its LR ``lr``. Counts are in calls of ``update``
    (transformers' ``step(metrics)``).

    Args:
      lr: the optimizer's LR when the scheduler is created, >= 0 (a tuple: one per parameter group): the LR
        ``init()`` starts from and a reset returns to.
      mode: ``"min"`` (default) or ``"max"``: whether a lower or a higher metric is better.
      factor: the LR is multiplied by it on a plateau and divided by it after improvements; ``0 < factor < 1``
        (transformers checks only ``< 1``) (default 0.95).
      patience: a non-negative integer (transformers does not check it): the LR is raised after
        ``patience + 1`` consecutive improving metrics and cut after ``patience + 1`` consecutive non-improving
        ones (default 10).
      threshold: how much a metric must beat ``best`` by to count as an improvement (default 1e-6): below
        ``best - threshold`` (``"abs"``) or ``best * (1 - threshold)`` (``"rel"``) in mode ``"min"``, above
        ``best + threshold`` or ``best * (1 + threshold)`` in mode ``"max"``.
      threshold_mode: ``"abs"`` (default) or ``"rel"``. Unlike torch's ReduceLROnPlateau (``"rel"`` and 1e-4),
        transformers' defaults compare absolute differences.
      cooldown: a non-negative integer: the metrics after a cut that are not compared with ``best`` (default 0).
      warmup: a non-negative integer: the metrics after an increase that are not compared with ``best``
        (default 0).
      min_lr: the LR's floor, or a tuple with one per parameter group (then ``lr`` is a tuple of the same
        length) (default 0.001).
      max_lr: the LR's ceiling, or a tuple with one per parameter group (default 1.0).
      eps: a change of the LR by no more than ``eps`` is skipped (default 1e-8).
      verbose: must be False (default False): ``update`` runs under ``jax.jit`` and cannot print; compare
        ``g(state)`` before and after ``update``, or use ``jax.debug.print``.
      smooth: compare the mean of the last ``window_size`` metrics instead of the metric, as transformers'
        ``StreamingAverage`` does (default False; must be a bool).
      window_size: a positive integer: the smoothing window, used with ``smooth=True`` (default 50).
      reset_start: an integer: the number of cuts that leave every group at ``min_lr`` after which the LR returns
        to ``lr`` and ``best``, the improving/non-improving counts and the smoothing window start afresh (the
        cooldown then runs, as after any cut); an increase restarts the count, and 1 or less resets at the first
        such cut (default 500).

    >>> import jaxsched
    >>> g = jaxsched.transformers.GreedyLR(0.1, patience=1, factor=0.5, min_lr=0.01)
    >>> state = g.init()
    >>> for metric in [1.0, 0.5, 0.4, 0.4, 0.4, 0.4]:
    ...     state = g.update(state, value=metric)
    ...     print(round(float(g(state)), 6), end=" ")
    0.1 0.2 0.2 0.2 0.1 0.1
    """

    lr: LR = leaf()
    mode: str = static(default="min")
    factor: float = leaf(default=0.95)
    patience: int = static(default=10)
    threshold: float = leaf(default=1e-6)
    threshold_mode: str = static(default="abs")
    cooldown: int = static(default=0)
    warmup: int = static(default=0)
    min_lr: LR = leaf(default=1e-3)
    max_lr: LR = leaf(default=1.0)
    eps: float = leaf(default=1e-8)
    verbose: bool = static(default=False)
    smooth: bool = static(default=False)
    window_size: int = static(default=50)
    reset_start: int = static(default=500)


    def _validate(self):
        n = "GreedyLR"
        f = check_float(n, "factor", self.factor)
        if not _is_tracer(f) and f >= 1.0:
            raise ValueError(f"{n}: Factor should be < 1.0, got factor={f!r}.")
        if not _is_tracer(f) and f <= 0.0:
            raise ValueError(f"{n}: factor must be > 0 (the LR is divided by it), got factor={f!r}.")
        self._set("factor", f)
        self._set("lr", check_lr(n, "lr", self.lr))
        self._set("min_lr", per_group(n, "min_lr", self.min_lr))
        self._set("max_lr", per_group(n, "max_lr", self.max_lr))
        groups = check_lengths(n, lr=self.lr, min_lr=self.min_lr, max_lr=self.max_lr)
        if groups is not None and not isinstance(self.lr, tuple):
            which = "min_lr" if isinstance(self.min_lr, tuple) else "max_lr"
            raise ValueError(f"{n}: expected 1 {which}s (one parameter group, lr={self.lr!r}), "
                             f"got {which}={getattr(self, which)!r}.")
        check_choice(n, "mode", self.mode, ("min", "max"))
        check_choice(n, "threshold_mode", self.threshold_mode, ("rel", "abs"))
        self._set("threshold", check_float(n, "threshold", self.threshold))
        self._set("eps", check_float(n, "eps", self.eps))
        self._set("patience", check_int(n, "patience", self.patience, minimum=0))
        self._set("cooldown", check_int(n, "cooldown", self.cooldown, minimum=0))
        self._set("warmup", check_int(n, "warmup", self.warmup, minimum=0))
        self._set("window_size", check_int(n, "window_size", self.window_size, minimum=1))
        self._set("reset_start", check_int(n, "reset_start", self.reset_start))
        if self.verbose:
            raise ValueError(
                f"{n}: verbose=True is not supported: update() runs under jax.jit and cannot print. Compare "
                f"g(state) before and after update (or use jax.debug.print) to log LR changes."
            )
        if not isinstance(self.smooth, bool):
            raise TypeError(f"{n}: smooth must be a bool, got smooth={self.smooth!r}.")

    @property
    def num_groups(self):
        return check_lengths("GreedyLR", lr=self.lr, min_lr=self.min_lr, max_lr=self.max_lr)

    def _fresh_best(self, dtype):
        return jnp.asarray(np.inf if self.mode == "min" else -np.inf, dtype)

    def init(self) -> GreedyLRState:
        """The state right after construction: the initial LR, ``best`` = +-inf, counters 0."""
        dtype, it = float_dtype(), int_dtype()
        zero = jnp.zeros((), it)
        return GreedyLRState(
            lr=arr(self.lr, dtype), best=self._fresh_best(dtype), num_bad_epochs=zero, num_good_epochs=zero,
            cooldown_counter=zero, warmup_counter=zero, reset_start=jnp.asarray(self.reset_start, it),
            last_epoch=zero, window=jnp.zeros((self.window_size,), dtype), window_count=zero,
            window_head=zero, window_sum=jnp.zeros((), dtype),
        )

    def _is_better(self, a, best, dtype):
        t = arr(self.threshold, dtype)
        if self.mode == "min":
            return a < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (1.0 + t) if self.threshold_mode == "rel" else best + t)

    def _checked(self, state: GreedyLRState) -> GreedyLRState:
        """A state entering ``update`` (perhaps restored), checked and cast to the compute dtypes."""
        o, dtype, it = "GreedyLR.update", float_dtype(), int_dtype()
        if not isinstance(state, GreedyLRState):
            raise TypeError(f"{o}: state must be a GreedyLRState (from init()), got {type(state).__name__}.")
        self._check_shapes(o, state)
        count = {n: checks.state_count(o, n, getattr(state, n), it) for n in (
            "num_bad_epochs", "num_good_epochs", "cooldown_counter", "warmup_counter", "last_epoch")}
        size = self.window_size
        count["window_count"] = checks.state_count(o, "window_count", state.window_count, it, below=size + 1)
        count["window_head"] = checks.state_count(o, "window_head", state.window_head, it, below=size)
        return GreedyLRState(
            lr=checks.state_float(o, "lr", state.lr, dtype, nonneg=True, finite=True),
            best=checks.state_float(o, "best", state.best, dtype),
            reset_start=checks.state_count(o, "reset_start", state.reset_start, it, signed=True),
            # a NaN metric enters the window (and its sum) as in transformers
            window=checks.state_float(o, "window", state.window, dtype, allow_nan=True),
            window_sum=checks.state_float(o, "window_sum", state.window_sum, dtype, allow_nan=True),
            **count,
        )

    def update(self, state: GreedyLRState, value=None, **extra_args) -> GreedyLRState:
        """One ``scheduler.step(metrics=value)``."""
        if value is None:
            raise TypeError("GreedyLR.update: value (the metric) is required: g.update(state, value=metric).")
        dtype, it = float_dtype(), int_dtype()
        state = self._checked(state)
        current = checks.metric("GreedyLR.update", value, dtype)
        window, count, head, wsum = state.window, state.window_count, state.window_head, state.window_sum
        if self.smooth:
            full = count >= self.window_size
            wsum = wsum + current
            wsum = jnp.where(full, wsum - window[head], wsum)
            window = window.at[head].set(current)
            head = (head + 1) % self.window_size
            count = jnp.minimum(count + 1, self.window_size)
            current = wsum / count.astype(dtype)

        in_cool = state.cooldown_counter > 0
        in_warm = ~in_cool & (state.warmup_counter > 0)
        normal = ~in_cool & ~in_warm
        better = self._is_better(current, state.best, dtype)
        best = jnp.where(normal & better, current, state.best)
        bad = jnp.where(normal & ~better, inc(state.num_bad_epochs), 0).astype(it)  # counters saturate
        good = jnp.where(normal & better, inc(state.num_good_epochs), 0).astype(it)
        cooldown = jnp.where(in_cool, state.cooldown_counter - 1, state.cooldown_counter)
        warmup = jnp.where(in_warm, state.warmup_counter - 1, state.warmup_counter)

        increase = normal & (good > self.patience)
        reduce = normal & ~increase & (bad > self.patience)

        lr, factor, eps = state.lr, arr(self.factor, dtype), arr(self.eps, dtype)
        min_lr, max_lr = arr(self.min_lr, dtype), arr(self.max_lr, dtype)
        up = jnp.minimum(lr / factor, max_lr)
        lr_up = jnp.where(up - lr > eps, up, lr)
        down = jnp.maximum(lr * factor, min_lr)
        lr_down = jnp.where(lr - down > eps, down, lr)
        all_at_min = jnp.all(lr_down <= min_lr)
        reset_left = jnp.where(all_at_min, state.reset_start - 1, state.reset_start)
        do_reset = reduce & all_at_min & (reset_left <= 0)

        new_lr = jnp.where(increase, lr_up, jnp.where(reduce, lr_down, lr))
        new_lr = jnp.where(do_reset, arr(self.lr, dtype), new_lr)
        reset_start = jnp.where(increase | do_reset, self.reset_start,
                                jnp.where(reduce, reset_left, state.reset_start)).astype(it)
        warmup = jnp.where(increase, self.warmup, jnp.where(do_reset, 0, warmup)).astype(it)
        good = jnp.where(increase | do_reset, 0, good).astype(it)
        cooldown = jnp.where(reduce, self.cooldown, cooldown).astype(it)  # set after a reset, too
        bad = jnp.where(reduce, 0, bad).astype(it)
        best = jnp.where(do_reset, self._fresh_best(dtype), best)
        if self.smooth:
            window = jnp.where(do_reset, jnp.zeros_like(window), window)
            count = jnp.where(do_reset, 0, count).astype(it)
            head = jnp.where(do_reset, 0, head).astype(it)
            wsum = jnp.where(do_reset, 0.0, wsum).astype(dtype)
        return GreedyLRState(
            lr=new_lr, best=best, num_bad_epochs=bad, num_good_epochs=good, cooldown_counter=cooldown,
            warmup_counter=warmup, reset_start=reset_start, last_epoch=inc(state.last_epoch), window=window,
            window_count=count, window_head=head, window_sum=wsum,
        )

    def __call__(self, state: GreedyLRState, **extra_args) -> Array:
        """The LR the optimizer holds in ``state``."""
        if not isinstance(state, GreedyLRState):
            raise TypeError(
                f"GreedyLR is metric-driven: call it on its state (g(state), with state = g.init() and "
                f"state = g.update(state, value=metric)), got {type(state).__name__}."
            )
        checks.state_shape("GreedyLR", "lr", state.lr, self._lr_shape, self.num_groups)
        return state.lr

    @property
    def _lr_shape(self) -> tuple[int, ...]:
        return () if self.num_groups is None else (self.num_groups,)

    def _check_shapes(self, owner: str, state: GreedyLRState) -> None:
        """Every field of a (restored) state has the shape init() gives it: one LR per parameter group, a
        window of ``window_size``, scalars elsewhere (static shapes: checked under jax.jit too)."""
        checks.state_shape(owner, "lr", state.lr, self._lr_shape, self.num_groups)
        checks.state_shape(owner, "window", state.window, (self.window_size,))
        for name in GreedyLRState._fields:
            if name not in ("lr", "window"):
                checks.state_shape(owner, name, getattr(state, name), ())
