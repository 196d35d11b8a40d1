"""Schedules that set their own LRs or cycle: CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.core  # Tracer: a submodule type checkers see only when imported
import jax.numpy as jnp
from jax import lax
from jax.core import Tracer

from . import _checks as checks
from ._base import LR, Schedule, leaf, static
from ._checks import check_callable, check_choice, check_float, check_lengths
from ._numerics import (
    Array,
    arr,
    as_step,
    cos_blend,
    cyclic_position,
    div,
    float_dtype,
    int_max,
    int_pow,
    map_steps,
    mod,
)
from ._schedules import _call_groups


def _check_size(cls: str, name: str, value, *, allow_zero: bool):
    value = checks.py_number(value)  # a NumPy scalar keeps its dtype in arithmetic (float16 overflows)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{cls}: {name} must be a number of steps, got {name}={value!r}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0 (torch divides by it: ZeroDivisionError)"
        raise ValueError(f"{cls}: {name} must be {rule}, got {name}={value!r}.")
    return value


class CyclicLR(Schedule, mirrors="torch.optim.lr_scheduler.CyclicLR"):
    """Cyclical learning rates (Smith, 2017): torch.optim.lr_scheduler.CyclicLR.

    The LR moves between ``base_lr`` and ``max_lr`` over cycles of ``step_size_up + step_size_down``
    steps, for ever (no horizon to unroll). ``mode`` is ``'triangular'``, ``'triangular2'`` (the amplitude
    halves every cycle) or ``'exp_range'`` (amplitude ``gamma ** step``); ``scale_fn`` (a jnp-traceable
    callable of the cycle number or the step, as ``scale_mode`` says) overrides ``mode``. With
    ``cycle_momentum`` the momentum (SGD's ``momentum`` or Adam's ``b1``) cycles inversely:
    ``s.momentum(step)``.

    Args:
      base_lr: the lower LR of the cycle; a tuple for several parameter groups.
      max_lr: the upper LR of the cycle (reached only if the scale is 1).
      step_size_up: steps from ``base_lr`` up to ``max_lr``. Default 2000.
      step_size_down: steps back down. Default None (= ``step_size_up``).
      mode: ``'triangular'``, ``'triangular2'`` or ``'exp_range'``; ignored with ``scale_fn``. Default 'triangular'.
      gamma: the factor of ``'exp_range'``, ``gamma ** iterations``. Default 1.0.
      scale_fn: a custom scale, written with ``jax.numpy``. Default None.
      scale_mode: ``'cycle'`` or ``'iterations'``, what ``scale_fn`` receives. Default 'cycle'.
      cycle_momentum: cycle the momentum inversely to the LR (``s.momentum(k)``). Default True.
      base_momentum: the lower momentum. Default 0.8.
      max_momentum: the upper momentum. Default 0.9.

    >>> import jaxsched
    >>> s = jaxsched.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.01, 0.055, 0.1, 0.07, 0.04, 0.01, 0.055]
    >>> [round(float(s.momentum(k)), 6) for k in range(4)]
    [0.9, 0.85, 0.8, 0.833333]
    """

    base_lr: LR = leaf(check=checks.lr)
    max_lr: LR = leaf(check=checks.lr)
    step_size_up: float = static(default=2000)
    step_size_down: float | None = static(default=None)
    mode: str = static(default="triangular")
    gamma: float = leaf(default=1.0, check=checks.real)
    scale_fn: Any = static(default=None)
    scale_mode: str = static(default="cycle")
    cycle_momentum: bool = static(default=True, check=checks.boolean)
    base_momentum: LR = leaf(default=0.8, check=checks.group_real)
    max_momentum: LR = leaf(default=0.9, check=checks.group_real)

    _positional = None

    def _validate(self):
        c = "CyclicLR"
        self._set("step_size_up", _check_size(c, "step_size_up", self.step_size_up, allow_zero=False))
        if self.step_size_down is not None:
            self._set("step_size_down", _check_size(c, "step_size_down", self.step_size_down, allow_zero=True))
        up, down = self.step_size_up, self._down
        if isinstance(up, int) and isinstance(down, int):  # the cycle is integer step arithmetic (_scale)
            checks.check_steps(c, "step_size_up", up)
            checks.check_steps(c, "step_size_down", down)
            checks.check_steps(c, "the cycle length step_size_up + step_size_down", up + down,
                               step_size_up=up, step_size_down=self.step_size_down)
        if self.scale_fn is None:
            if self.mode not in ("triangular", "triangular2", "exp_range"):
                raise ValueError(
                    f"CyclicLR: mode is invalid and scale_fn is None: mode must be one of 'triangular', "
                    f"'triangular2', 'exp_range', got mode={self.mode!r}."
                )
        else:
            check_choice(c, "scale_mode", self.scale_mode, ("cycle", "iterations"))
        g = self.gamma
        if self.scale_fn is None and self.mode == "exp_range" and not isinstance(g, Tracer) \
                and not 0.0 <= g <= 1.0:
            raise ValueError(
                f"CyclicLR: gamma must be in [0, 1] for mode='exp_range' (the amplitude is gamma ** step; "
                f"gamma > 1 overflows), got gamma={g!r}."
            )
        groups = check_lengths(c, base_lr=self.base_lr, max_lr=self.max_lr, base_momentum=self.base_momentum,
                               max_momentum=self.max_momentum)
        if self.scale_fn is not None:
            self._set("scale_fn", check_callable(c, "scale_fn", self.scale_fn, None))
        del groups

    @property
    def _base(self):
        return self.base_lr

    @property
    def _down(self):
        return self.step_size_up if self.step_size_down is None else self.step_size_down

    def _scale(self, e, dtype):
        """``(scale_factor * scale_fn(...))``: the position in the cycle times the amplitude."""
        up, down = self.step_size_up, self._down
        total = up + down
        if isinstance(up, int) and isinstance(down, int):
            k = div(e, int(total))
            r = e - k * total
            rise = r.astype(dtype) / up
            fall = (total - r).astype(dtype) / (down if down else 1)
            pos = jnp.where(r <= up, rise, fall)
        else:
            # Non-integer step sizes: torch decides the cycle in float64 (floor(1 + e / total)), which at a
            # boundary can differ from exact arithmetic; cyclic_position reproduces its decisions exactly.
            cycle, pos = cyclic_position(e, float(up), float(total), dtype)
            k = cycle - 1
        if self.scale_fn is not None:
            arg = (k + 1) if self.scale_mode == "cycle" else e
            amp = _call_groups(self.scale_fn, arg, dtype, None)
        elif self.mode == "triangular":
            amp = jnp.ones((), dtype)
        elif self.mode == "triangular2":
            amp = jnp.exp2(-k.astype(dtype))
        else:
            amp = int_pow(self.gamma, e, dtype)
        return pos * amp

    def _get_closed_form_lr(self, e, dtype):
        b, m = arr(self.base_lr, dtype), arr(self.max_lr, dtype)
        return b + (m - b) * self._scale(e, dtype)

    def momentum(self, step) -> Array:
        """The momentum (or Adam ``b1``) torch holds after ``step`` calls of ``scheduler.step()``."""
        if not self.cycle_momentum:
            raise ValueError("CyclicLR: momentum is not cycled with cycle_momentum=False.")
        e = as_step(step, "CyclicLR")
        dtype = float_dtype()
        lo, hi = arr(self.base_momentum, dtype), arr(self.max_momentum, dtype)
        shape = () if self.num_groups is None else (self.num_groups,)
        return map_steps(lambda x: jnp.broadcast_to(hi - (hi - lo) * self._scale(x, dtype), shape), e)

    def _check_in_composite(self, owner, index):
        raise ValueError(
            f"{owner}: schedulers[{index}] is a CyclicLR, which jaxsched does not compose: torch's CyclicLR "
            f"rewrites the optimizer's LR and initial_lr at construction, so its effect on the other members "
            f"depends on construction order. Use it on its own."
        )


class OneCycleLR(Schedule, mirrors="torch.optim.lr_scheduler.OneCycleLR"):
    """The 1cycle policy (Smith & Topin, 2018): torch.optim.lr_scheduler.OneCycleLR.

    Index 0 is ``max_lr / div_factor``; the peak is at ``pct_start * total_steps - 1`` (optax's
    cosine_onecycle_schedule peaks one step later); indices ``0..total_steps`` are valid (index
    ``total_steps`` extrapolates, as torch does). Stepping further raises in torch; here a concrete step
    past the end raises, and a traced one holds the value of index ``total_steps`` (the LR torch's
    optimizer keeps). With ``cycle_momentum`` the momentum cycles inversely: ``s.momentum(step)``.

    Args:
      max_lr: the peak LR; a tuple for several parameter groups.
      total_steps: the number of steps of the cycle. Default None (then ``epochs * steps_per_epoch``).
      epochs: with ``steps_per_epoch``, the cycle's length when ``total_steps`` is None. Default None.
      steps_per_epoch: see ``epochs``. Default None.
      pct_start: the fraction of the cycle spent increasing the LR. Default 0.3.
      anneal_strategy: ``'cos'`` or ``'linear'``. Default 'cos'.
      cycle_momentum: cycle the momentum inversely to the LR (``s.momentum(k)``). Default True.
      base_momentum: the lower momentum. Default 0.85.
      max_momentum: the upper momentum. Default 0.95.
      div_factor: the initial LR is ``max_lr / div_factor``. Default 25.0.
      final_div_factor: the final LR is the initial LR / ``final_div_factor``. Default 1e4.
      three_phase: a third phase annealing to the final LR, symmetric warm-up and cool-down. Default False.

    >>> import jaxsched
    >>> s = jaxsched.OneCycleLR(max_lr=1.0, total_steps=10)
    >>> [round(float(s(k)), 6) for k in range(4)]
    [0.04, 0.52, 1.0, 0.950485]
    >>> [round(float(s.momentum(k)), 6) for k in range(3)]
    [0.95, 0.9, 0.85]
    """

    max_lr: LR = leaf(check=checks.lr)
    total_steps: int | None = static(default=None)
    epochs: int | None = static(default=None)
    steps_per_epoch: int | None = static(default=None)
    pct_start: float = static(default=0.3)
    anneal_strategy: str = static(default="cos", check=checks.choice("cos", "linear"))
    cycle_momentum: bool = static(default=True, check=checks.boolean)
    base_momentum: LR = leaf(default=0.85, check=checks.group_real)
    max_momentum: LR = leaf(default=0.95, check=checks.group_real)
    div_factor: float = leaf(default=25.0, check=checks.real)
    final_div_factor: float = leaf(default=1e4, check=checks.real)
    three_phase: bool = static(default=False, check=checks.boolean)

    _positional = None

    def _validate(self):
        c = "OneCycleLR"
        if self.total_steps is not None:
            t = self.total_steps
            if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t <= 0:
                raise ValueError(f"OneCycleLR: Expected positive integer total_steps, but got total_steps={t!r}.")
            self._set("total_steps", checks.check_steps(c, "total_steps", int(t)))
        elif self.epochs is not None and self.steps_per_epoch is not None:
            for name in ("epochs", "steps_per_epoch"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                    raise ValueError(f"OneCycleLR: Expected positive integer {name}, but got {name}={v!r}.")
                self._set(name, int(v))
            e, n = self.epochs, self.steps_per_epoch
            checks.check_steps(c, "epochs * steps_per_epoch", e * n, epochs=e, steps_per_epoch=n)
        else:
            raise ValueError(
                "OneCycleLR: You must define either total_steps OR (epochs AND steps_per_epoch), got "
                f"total_steps={self.total_steps!r}, epochs={self.epochs!r}, steps_per_epoch={self.steps_per_epoch!r}."
            )
        p = checks.py_number(self.pct_start)  # np.float32(0.3) is 0.3 here (torch refuses non-float types)
        self._set("pct_start", p)
        if isinstance(p, bool) or not isinstance(p, float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"OneCycleLR: Expected float between 0 and 1 pct_start, but got pct_start={p!r}.")
        for name in ("div_factor", "final_div_factor"):
            v = getattr(self, name)
            if not isinstance(v, Tracer) and v <= 0:
                raise ValueError(f"OneCycleLR: {name} must be > 0 (the LR is divided by it), got {name}={v!r}.")
        check_lengths(c, max_lr=self.max_lr, base_momentum=self.base_momentum, max_momentum=self.max_momentum)
        ends = self._ends
        starts = (0.0,) + ends[:-1]
        if ends[0] == 0.0:
            raise ValueError(
                f"OneCycleLR: the warm-up phase has zero length (pct_start * total_steps = {p} * {self._total} "
                f"= 1), so torch divides by zero at construction (ZeroDivisionError); choose pct_start so that "
                f"pct_start * total_steps != 1."
            )
        if ends[-1] == starts[-1]:
            raise ValueError(
                f"OneCycleLR: the last phase has zero length (pct_start={p}, three_phase={self.three_phase}, "
                f"total_steps={self._total}), so torch divides by zero at step {self._total} "
                f"(ZeroDivisionError); use pct_start < {0.5 if self.three_phase else 1.0}."
            )

    @property
    def _total(self) -> int:
        if self.total_steps is not None:
            return self.total_steps
        assert self.epochs is not None and self.steps_per_epoch is not None  # _validate requires one or the other
        return self.epochs * self.steps_per_epoch

    @property
    def _ends(self) -> tuple[float, ...]:
        T, p = self._total, self.pct_start
        if self.three_phase:
            return (float(p * T) - 1, float(2 * p * T) - 2, T - 1.0)
        return (float(p * T) - 1, T - 1.0)

    @property
    def _base(self):
        return self.max_lr

    def _check_step(self, step):
        if isinstance(step, numbers.Integral) and int(step) > self._total:
            raise ValueError(
                f"OneCycleLR: Tried to step {step} times. The specified number of total steps is {self._total}. "
                f"torch raises here: indices 0..total_steps are the whole schedule (index total_steps already "
                f"extrapolates past min_lr). Make total_steps cover every optimizer step of the run, e.g. "
                f"total_steps=epochs * steps_per_epoch, or stop stepping at the end."
            )

    def _phases(self, e, dtype, points):
        """Anneal between ``points[i] -> points[i + 1]`` in the phase that step ``e`` falls in.

        The phase's start, length and end points are selected first, so each step costs one cosine.
        """
        e = jnp.minimum(e, self._total)
        ends = self._ends
        starts = (0.0,) + ends[:-1]
        spans = tuple((end - start) or 1.0 for start, end in zip(starts, ends))  # zero spans are never used

        def pick(values):
            out = values[-1]
            for i in reversed(range(len(ends) - 1)):
                # e <= end  <=>  e <= floor(end) for integer e (no float rounding of large steps)
                out = jnp.where(e <= math.floor(ends[i]), values[i], out)
            return out

        start = pick([jnp.asarray(x, dtype) for x in starts])
        span = pick([jnp.asarray(x, dtype) for x in spans])
        pct = (e.astype(dtype) - start) / span
        src = pick(list(points[:-1]))
        dst = pick(list(points[1:]))
        if self.anneal_strategy == "cos":
            c = jnp.cos(jnp.pi * pct / 2)
            return dst + (src - dst) * (c * c)
        return (dst - src) * pct + src

    def _get_closed_form_lr(self, e, dtype):
        hi = arr(self.max_lr, dtype)
        init = hi / arr(self.div_factor, dtype)
        low = init / arr(self.final_div_factor, dtype)
        pts = (init, hi, init, low) if self.three_phase else (init, hi, low)
        return self._phases(e, dtype, pts)

    def momentum(self, step) -> Array:
        """The momentum (or Adam ``b1``) torch holds after ``step`` calls of ``scheduler.step()``."""
        if not self.cycle_momentum:
            raise ValueError("OneCycleLR: momentum is not cycled with cycle_momentum=False.")
        self._check_step(step)
        e = as_step(step, "OneCycleLR")
        dtype = float_dtype()
        lo, hi = arr(self.base_momentum, dtype), arr(self.max_momentum, dtype)
        pts = (hi, lo, hi, hi) if self.three_phase else (hi, lo, hi)
        shape = () if self.num_groups is None else (self.num_groups,)
        return map_steps(lambda x: jnp.broadcast_to(self._phases(x, dtype, pts), shape), e)

    def _check_in_composite(self, owner, index):
        raise ValueError(
            f"{owner}: schedulers[{index}] is a OneCycleLR, which jaxsched does not compose: torch's OneCycleLR "
            f"overwrites the optimizer's initial_lr, so its effect on the other members depends on construction "
            f"order. Use it on its own."
        )


class CosineAnnealingWarmRestarts(Schedule, mirrors="torch.optim.lr_scheduler.CosineAnnealingWarmRestarts"):
    """SGDR (Loshchilov & Hutter, 2017): torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.

    ``eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2`` with restarts after ``T_0``,
    ``T_0 * T_mult``, ... steps, for ever (no horizon to unroll). Cycle boundaries are exact integers
    (torch's ``step()``), not torch's ``step(epoch)`` log formula, which rounds down at some restarts.

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      T_0: the length of the first cycle in steps (a positive integer).
      T_mult: the factor by which each cycle is longer than the previous one. Default 1.
      eta_min: the minimum LR. Default 0.0.

    >>> import jaxsched
    >>> s = jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=3, T_mult=2)
    >>> [round(float(s(k)), 6) for k in range(5)]
    [0.1, 0.075, 0.025, 0.1, 0.093301]
    """

    lr: LR = leaf(check=checks.lr)
    T_0: int = static()
    T_mult: int = static(default=1)
    eta_min: float = leaf(default=0.0)

    def _validate(self):
        c = "CosineAnnealingWarmRestarts"
        t0 = self.T_0
        if isinstance(t0, bool) or not isinstance(t0, numbers.Integral) or t0 <= 0:
            raise ValueError(f"{c}: Expected positive integer T_0, but got T_0={t0!r}.")
        tm = self.T_mult
        if isinstance(tm, bool) or not isinstance(tm, numbers.Integral) or tm < 1:
            raise ValueError(f"{c}: Expected integer T_mult >= 1, but got T_mult={tm!r}.")
        self._set("T_0", checks.check_steps(c, "T_0", int(t0)))
        self._set("T_mult", int(tm))
        eta = self.eta_min
        if isinstance(eta, bool) or not isinstance(eta, (numbers.Real, jax.Array)):
            raise ValueError(f"{c}: Expected float or int eta_min, but got eta_min={eta!r} of type {type(eta)}.")
        self._set("eta_min", check_float(c, "eta_min", eta))

    def _cycle(self, e):
        """``(T_cur, T_i)`` as integer arrays."""
        t0, tm = self.T_0, self.T_mult
        if tm == 1:
            return mod(e, t0), jnp.full_like(e, t0)
        limit = int_max()
        if tm == 2:
            # Cycle n starts at t0 * (2**n - 1), so n = floor(log2(e // t0 + 1)): a count of leading zeros,
            # with no log and no table lookups. The same values as the general path below.
            # Unsigned, so that e // t0 + 1 cannot overflow; start <= e fits e's dtype.
            u = jnp.uint64 if e.dtype == jnp.int64 else jnp.uint32
            q = lax.div(e, jnp.asarray(t0, e.dtype)).astype(u) + 1  # e >= 0: truncation is floor division
            n = (jnp.iinfo(u).bits - 1) - lax.clz(q)
            start = (t0 * (jnp.left_shift(jnp.ones_like(q), n) - 1)).astype(e.dtype)
            return e - start, jnp.where(start > limit - t0, limit, start + t0)
        starts, lengths = [], []
        n = 0
        while True:
            s = t0 * (tm ** n - 1) // (tm - 1)
            if s > limit:
                break
            starts.append(s)
            lengths.append(min(t0 * tm ** n, limit))
            n += 1
        starts.append(limit)  # sentinel: no step reaches it
        lengths.append(limit)
        S = jnp.asarray(starts, e.dtype)
        L = jnp.asarray(lengths, e.dtype)
        ftype = jnp.float64 if e.dtype == jnp.int64 else jnp.float32
        est = jnp.floor(jnp.log(e.astype(ftype) / t0 * (tm - 1) + 1) / math.log(tm)).astype(e.dtype)
        est = jnp.clip(est, 0, len(starts) - 2)
        est = est - (e < S[est]).astype(e.dtype)
        est = jnp.clip(est, 0, len(starts) - 2)
        est = est + (e >= S[est + 1]).astype(e.dtype)
        est = jnp.clip(est, 0, len(starts) - 2)
        return e - S[est], L[est]

    def _get_closed_form_lr(self, e, dtype):
        b, eta = arr(self.lr, dtype), arr(self.eta_min, dtype)
        t_cur, t_i = self._cycle(e)
        # lr * cos^2 + eta_min * sin^2 of pi T_cur / (2 T_i), each square accurate relative to itself
        return cos_blend(b, eta, t_cur, t_i, dtype)
