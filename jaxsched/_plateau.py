"""ReduceLROnPlateau: torch's metric-driven scheduler as an immutable config plus a pytree state."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jax.core import Tracer

from . import _checks as checks
from ._base import LR, StatefulSchedule, leaf, static
from ._numerics import Array, arr, float_dtype, inc, int_dtype


class PlateauState(NamedTuple):
    """State of :class:`ReduceLROnPlateau`, with torch's attribute names.

    Attributes:
      best: float array, shape ``()``: the best metric so far (``inf`` in mode ``'min'``, ``-inf`` in mode
        ``'max'`` before the first metric). float64 under ``jax_enable_x64``, else float32.
      num_bad_epochs: int array, shape ``()``: consecutive calls without improvement.
      cooldown_counter: int array, shape ``()``: calls left in the cooldown after a reduction.
      last_epoch: int array, shape ``()``: the number of ``update`` calls (torch's ``step(metric)`` calls).
      lr: float array, shape ``()`` or ``(G,)``: the LR of each parameter group.
    """

    best: Array
    num_bad_epochs: Array
    cooldown_counter: Array
    last_epoch: Array
    lr: Array


class ReduceLROnPlateau(StatefulSchedule, mirrors="torch.optim.lr_scheduler.ReduceLROnPlateau"):
    """Cut the LR by ``factor`` when a metric stops improving: torch.optim.lr_scheduler.ReduceLROnPlateau.

    The configuration is an immutable value; the state is a :class:`PlateauState` pytree. It follows
    optax's stateful-schedule protocol: ``p.init()`` is the state right after construction, ``p(state)``
    the LR, ``p.update(state, value=metric)`` one ``scheduler.step(metric)``. Everything is pure ``jnp``,
    so it runs under ``jax.jit``, inside ``lax.scan`` and ``jax.vmap``, and
    ``optax.inject_hyperparams(optax.sgd)(learning_rate=p)`` steps it on every update with
    ``opt.update(grads, state, params, value=loss)``.

    One ``update`` does exactly what torch's ``step(metric)`` does::

        better = value < best * (1 - threshold)        # mode 'min', threshold_mode 'rel'
                 value < best - threshold              # 'min', 'abs'
                 value > best * (1 + threshold)        # 'max', 'rel'
                 value > best + threshold              # 'max', 'abs'
        best, num_bad_epochs = (value, 0) if better else (best, num_bad_epochs + 1)
        if cooldown_counter > 0: cooldown_counter -= 1; num_bad_epochs = 0
        if num_bad_epochs > patience:                  # the (patience + 1)-th bad call
            new = max(lr * factor, min_lr)             # per group
            lr = new if lr - new > eps else lr
            cooldown_counter, num_bad_epochs = cooldown, 0

    so a negative ``best`` in ``'rel'`` mode inverts the test as in torch, NaN and ``inf`` metrics are bad
    epochs, a ``-inf`` metric in mode ``'min'`` can never be beaten, and the LR floors where one more
    cut would change it by no more than ``eps``.

    Precision: under ``jax_enable_x64`` the metric, ``best`` and the LR are float64 and every decision is
    torch's, bit for bit. In float32 the metric is rounded to float32 and the boundary
    ``best * (1 - threshold)`` (or ``best - threshold``) is computed in float32; torch computes it in
    float64, so a metric that lies between the two roundings of that boundary (within about one float32
    ulp of it) can be decided differently. Exact ties (``value == best``) are decided as torch does in
    both precisions.

    Args:
      lr: the optimizer's LR when the scheduler is created (a tuple for several parameter groups).
      mode: ``'min'`` (default) or ``'max'``.
      factor: multiply the LR by this on a plateau; must be < 1 (default 0.1).
      patience: number of bad calls tolerated; the LR is cut on the ``patience + 1``-th (default 10;
        negative values cut on every call, as in torch).
      threshold: the improvement needed to count as better (default 1e-4).
      threshold_mode: ``'rel'`` (default) or ``'abs'``.
      cooldown: calls to wait after a cut before counting bad calls again (default 0).
      min_lr: a floor for the LR, or one per group (default 0).
      eps: cuts smaller than this are skipped (default 1e-8).

    >>> import jaxsched
    >>> p = jaxsched.ReduceLROnPlateau(0.1, patience=1, factor=0.5)
    >>> st = p.init()
    >>> lrs = []
    >>> for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85]:
    ...     st = p.update(st, value=loss); lrs.append(round(float(p(st)), 6))
    >>> lrs
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025]
    """

    lr: LR = leaf(check=checks.lr)
    mode: str = static(default="min", check=checks.choice("min", "max"))
    factor: float = leaf(default=0.1, check=checks.real)
    patience: int = static(default=10, check=checks.integer(rule="an integer"))
    threshold: float = leaf(default=1e-4, check=checks.real)
    threshold_mode: str = static(default="rel", check=checks.choice("rel", "abs"))
    cooldown: int = static(default=0, check=checks.integer(rule="an integer"))
    min_lr: LR = leaf(default=0.0, check=checks.group_real)
    eps: float = leaf(default=1e-8, check=checks.real)

    _positional = "lr"

    def _validate(self):
        c = "ReduceLROnPlateau"
        factor = self.factor
        if not isinstance(factor, Tracer) and factor >= 1.0:
            raise ValueError(f"{c}: factor must be < 1.0 (Factor should be < 1.0.), got factor={factor!r}.")
        min_lr = self.min_lr
        if isinstance(min_lr, tuple):
            if isinstance(self.lr, tuple) and len(min_lr) != len(self.lr):
                raise ValueError(
                    f"{c}: expected {len(self.lr)} min_lrs (one per parameter group of lr={self.lr!r}), got "
                    f"{len(min_lr)} (min_lr={min_lr!r})."
                )
            if not isinstance(self.lr, tuple):
                self._set("lr", (self.lr,) * len(min_lr))

    # -- the stateful-schedule protocol --------------------------------------------------------------------

    def init(self) -> PlateauState:
        """The state right after ``ReduceLROnPlateau(optimizer, ...)``: the LR is unchanged."""
        dtype = float_dtype()
        worse = math.inf if self.mode == "min" else -math.inf
        zero = jnp.zeros((), int_dtype())
        return PlateauState(jnp.asarray(worse, dtype), zero, zero, zero, arr(self.lr, dtype))

    def __call__(self, state: PlateauState, **extra_args) -> Array:
        """The LR the optimizer holds in ``state``."""
        del extra_args
        checks.state_of("ReduceLROnPlateau", state, PlateauState, "s.update(state, value=metric)")
        checks.state_shape("ReduceLROnPlateau", "lr", state.lr, self._lr_shape, self.num_groups)
        return state.lr

    @property
    def _lr_shape(self) -> tuple[int, ...]:
        return () if self.num_groups is None else (self.num_groups,)

    def _checked(self, state: PlateauState) -> PlateauState:
        """A state entering ``update`` (perhaps restored from a checkpoint), checked and cast to the compute
        dtypes: float ``best``/``lr`` (not NaN, ``lr`` finite and ``>= 0``, one per parameter group) and
        non-negative integer counters."""
        o, dtype, idt = "ReduceLROnPlateau.update", float_dtype(), int_dtype()
        if not isinstance(state, PlateauState):
            raise TypeError(f"{o}: state must be a PlateauState (from init()), got {type(state).__name__}.")
        checks.state_shape(o, "lr", state.lr, self._lr_shape, self.num_groups)
        for name in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
            checks.state_shape(o, name, getattr(state, name), ())
        return PlateauState(
            checks.state_float(o, "best", state.best, dtype),
            checks.state_count(o, "num_bad_epochs", state.num_bad_epochs, idt),
            checks.state_count(o, "cooldown_counter", state.cooldown_counter, idt),
            checks.state_count(o, "last_epoch", state.last_epoch, idt),
            checks.state_float(o, "lr", state.lr, dtype, nonneg=True, finite=True),
        )

    def update(self, state: PlateauState, value=None, **extra_args) -> PlateauState:
        """One ``scheduler.step(value)``: ``value`` is the metric (a scalar)."""
        del extra_args
        if value is None:
            raise TypeError(
                "ReduceLROnPlateau.update: the metric is missing: call update(state, value=metric). Inside an "
                "optax optimizer built with inject_hyperparams, pass it to the update: "
                "opt.update(grads, opt_state, params, value=loss)."
            )
        dtype = float_dtype()
        state = self._checked(state)
        current = checks.metric("ReduceLROnPlateau.update", value, dtype)
        best = state.best
        thr = arr(self.threshold, dtype)
        if self.mode == "min" and self.threshold_mode == "rel":
            better = current < best * (1.0 - thr)
        elif self.mode == "min":
            better = current < best - thr
        elif self.threshold_mode == "rel":
            better = current > best * (thr + 1.0)
        else:
            better = current > best + thr
        one = jnp.ones((), state.num_bad_epochs.dtype)
        best = jnp.where(better, current, best)
        bad = jnp.where(better, jnp.zeros_like(one), inc(state.num_bad_epochs))  # counters saturate, never wrap
        in_cooldown = state.cooldown_counter > 0
        cooldown = jnp.where(in_cooldown, state.cooldown_counter - one, state.cooldown_counter)
        bad = jnp.where(in_cooldown, jnp.zeros_like(bad), bad)
        reduce = bad > self.patience
        lr = state.lr
        new = jnp.maximum(lr * arr(self.factor, lr.dtype), arr(self.min_lr, lr.dtype))
        lr = jnp.where(reduce & (lr - new > arr(self.eps, lr.dtype)), new, lr)
        cooldown = jnp.where(reduce, jnp.asarray(self.cooldown, cooldown.dtype), cooldown)
        bad = jnp.where(reduce, jnp.zeros_like(bad), bad)
        return PlateauState(best, bad, cooldown, inc(state.last_epoch), lr.astype(state.lr.dtype))
