"""timm's learning-rate schedulers (``timm.scheduler``, timm 1.0) as jaxsched schedules.

``jaxsched.timm.<Name>(lr, ...)`` takes the arguments of ``timm.scheduler.<Name>(optimizer, ...)`` (same names,
same defaults) with the optimizer replaced by its initial LR (a tuple for several parameter groups), as
jaxsched does for torch. ``s(t)`` is the LR timm sets on ``scheduler.step(t)`` (``t_in_epochs=True``, the
default: ``t`` counts epochs) or ``scheduler.step_update(t)`` (``t_in_epochs=False``: ``t`` counts optimizer
updates); ``t_in_epochs`` only says which counter ``t`` is, the values are the same function of ``t``. Checked
against live timm to 1e-6 (float32) / 1e-10 (x64) of the largest LR by ``tests/parity/test_timm_parity.py``.

====================================  ============================================================================
class                                 value at ``t`` (after the warm-up)
====================================  ============================================================================
:class:`CosineLRScheduler`            ``lr_min + (lr * cycle_decay**i - lr_min) * (1 + cos(pi * (x/T_i)**k)) / 2``
:class:`TanhLRScheduler`              ``lr_min + (lr * cycle_decay**i - lr_min) * (1 - tanh(lb (1-r) + ub r)) / 2``
:class:`PolyLRScheduler`              ``lr_min + (lr * cycle_decay**i - lr_min) * (1 - (x/T_i)**k) ** power``
:class:`StepLRScheduler`              ``lr * decay_rate ** floor(t / decay_t)``
:class:`MultiStepLRScheduler`         ``lr * decay_rate ** #{m in decay_t: m <= t + 1}``
:class:`WSDLRScheduler`               warm-up, a stable phase (constant, rsqrt, power), a decay to ``lr_min``
:class:`PlateauLRScheduler`           torch's ``ReduceLROnPlateau`` after a warm-up (a StatefulSchedule)
====================================  ============================================================================

Cycles (cosine, tanh, poly): cycle ``i`` lasts ``T_i = t_initial * cycle_mul ** i``; ``x`` is the position in
it and ``r = x / T_i``; from cycle ``cycle_limit`` on the LR is ``lr_min``. Warm-up: for ``t < warmup_t`` the
LR is ``warmup_lr_init + t * (target - warmup_lr_init) / warmup_t``, where the target is ``lr`` (tanh without
``warmup_prefix``: the schedule's value at ``warmup_t``); with ``warmup_prefix`` the schedule then starts at
``t - warmup_t``, without it the warm-up overwrites the schedule's first ``warmup_t`` values. Note that timm
counts from the *end* of the warm-up: unlike transformers' warm-up, step 0 is ``warmup_lr_init``.

Where timm differs from torch: timm's ``MultiStepLRScheduler`` compares milestones with ``t + 1`` (torch's
``MultiStepLR`` with ``t``), its ``StepLRScheduler`` takes a float ``decay_t`` (``t // decay_t`` as Python
computes it, e.g. ``3 // 0.1 == 29``), its schedulers step per epoch by default (``t_in_epochs=True``) where a
torch scheduler is stepped wherever the loop calls it.

Restrictions (documented refusals): ``cycle_mul`` must be >= 1 (below 1 timm raises a math domain error once the
shrinking cycles run out) and ``k_decay`` > 0; ``decay_t`` of ``MultiStepLRScheduler`` must be sorted (timm
bisects it). **Noise** (``noise_range_t``) is refused: timm draws it from ``torch.Generator`` seeded with
``noise_seed + t`` (Mersenne Twister and torch's own normal transform, with rejection sampling), which a jittable
JAX function cannot reproduce bit for bit; add noise to ``s(t)`` with ``jax.random`` if wanted. With a float
``decay_t``, float32 may place a step one step off where ``t`` is within float32 rounding of a multiple of
``decay_t`` (x64 is exact). The cycle is located exactly (see :mod:`jaxsched._cycles`; timm's float64
``floor(log(...))`` can fall one cycle short exactly at a restart, e.g. ``cycle_mul=3`` at ``t = 121 *
t_initial``, and loses accuracy to the cancellation in ``1 - cycle_mul`` for a multiplier within about ``1e-3``
of 1: with ``cycle_mul=1.0000000000000002`` its cycle index jumps mid-cycle; jaxsched follows neither, see the
README's deliberate differences).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks as checks
from ._base import LR, Schedule, StatefulSchedule
from ._cycles import check_cycles, cos_half, cycle, cycle_left, power_of
from ._numerics import Array, arr, div, float_dtype, inc, int_dtype, is_concrete
from ._value import leaf, static

__all__ = ["CLASSES", "CosineLRScheduler", "MultiStepLRScheduler", "NOISE_REFUSAL", "PlateauLRScheduler",
           "PlateauState", "PolyLRScheduler", "StepLRScheduler", "TanhLRScheduler", "WSDLRScheduler"]


NOISE_REFUSAL = (
    "jaxsched.timm does not reproduce timm's LR noise: timm draws it from torch.Generator seeded with noise_seed + t "
    "(a Mersenne Twister stream and torch's normal transform with rejection sampling), which a jittable JAX "
    "function cannot reproduce bit for bit. Use noise_range_t=None and, if wanted, add noise to s(t) with "
    "jax.random."
)


# ----------------------------------------------------------------------------------------------------------
# field checks


def _nonneg(cls: str, name: str, value):
    value = checks.check_float(cls, name, value)
    if is_concrete(value) and value < 0:
        raise ValueError(f"{cls}: {name} must be >= 0, got {name}={value!r}.")
    return value


def _positive(cls: str, name: str, value):
    value = checks.check_float(cls, name, value)
    if is_concrete(value) and value <= 0:
        raise ValueError(f"{cls}: {name} must be > 0, got {name}={value!r}.")
    return value


def _cycle_mul(cls: str, name: str, value) -> float:
    value = checks.check_float(cls, name, value)
    if value < 1.0:
        raise ValueError(
            f"{cls}: {name} must be >= 1, got {name}={value!r}: with shrinking cycles timm raises 'math domain "
            f"error' once their finite total length is passed."
        )
    return value


def _noise(cls: str, name: str, value):
    if value is not None:
        raise ValueError(f"{cls}: {name} must be None, got {name}={value!r}. {NOISE_REFUSAL}")
    return None


_count = checks.integer(0)
_t_initial = checks.integer(1, "> 0 (a positive integer)")


class _TimmSchedule(Schedule):
    """Base of the timm schedules: the optimizer's LR, ``_schedule(t)`` after the warm-up, the warm-up itself here.

    timm puts each scheduler's own arguments between ``lr`` (its optimizer) and the warm-up arguments, so the
    shared fields are declared in the bases below in timm's order; a class whose own arguments come right after
    ``t_initial`` declares them in a small base listed after the shared one (``class
    TanhLRScheduler(_CycleSchedule, _TanhArgs)``): dataclass fields follow the reversed MRO, so its fields land
    between ``t_initial`` and ``lr_min``, as timm's positional order has them.
    """

    lr: LR = leaf(check=checks.lr)

    def _schedule(self, t: Array, dtype) -> Array:
        """The value at ``t`` (already shifted by the warm-up prefix), per group."""
        raise NotImplementedError

    def _warmup_target(self, dtype) -> Array:
        return arr(self.lr, dtype)

    def _get_closed_form_lr(self, e, dtype):
        s: Any = self  # the warm-up fields: declared after each class's own arguments, in timm's order
        W = s.warmup_t
        if W == 0:
            return self._schedule(e, dtype)
        init = arr(s.warmup_lr_init, dtype)
        warm = init + e.astype(dtype) * ((self._warmup_target(dtype) - init) / W)
        t = jnp.maximum(e - W, 0) if s.warmup_prefix else e
        return jnp.where(e < W, warm, self._schedule(t, dtype))


class _Initial(_TimmSchedule):
    """``t_initial``, timm's first argument after the optimizer in the cycle and WSD schedulers."""

    t_initial: int = static(check=_t_initial)


class _CycleSchedule(_Initial):
    """Cosine, tanh and poly: cycles of length ``t_initial * cycle_mul ** i`` and the shape within a cycle."""

    lr_min: float = leaf(default=0.0, check=_nonneg)
    cycle_mul: float = static(default=1.0, check=_cycle_mul)
    cycle_decay: float = leaf(default=1.0, check=checks.real)
    cycle_limit: int = static(default=1, check=_count)
    warmup_t: int = static(default=0, check=_count)
    warmup_lr_init: float = leaf(default=0.0, check=checks.real)
    warmup_prefix: bool = static(default=False, check=checks.boolean)
    t_in_epochs: bool = static(default=True, check=checks.boolean)
    noise_range_t: int | tuple | list | None = static(default=None, check=_noise)

    def _validate(self) -> None:
        check_cycles(type(self).__name__, "cycle_mul", self.t_initial, self.cycle_mul, self.cycle_limit)

    def _shape(self, t_curr: Array, t_i: Array, left: Array, dtype) -> Array:
        """In [0, 1]: the fraction of ``lr_max - lr_min`` at position ``t_curr`` of a cycle of length ``t_i``, of
        which ``left = t_i - t_curr`` is left (accurate to float32 near the cycle's end: see ``cycle_left``)."""
        raise NotImplementedError

    def _schedule(self, t, dtype):
        limit = self.cycle_limit
        i, t_curr, t_i = cycle(t, self.t_initial, self.cycle_mul, limit, dtype)
        left = cycle_left(t, i, t_curr, t_i, self.t_initial, self.cycle_mul, limit, dtype)
        lr_min = arr(self.lr_min, dtype)
        lr_max = arr(self.lr, dtype) * power_of(self.cycle_decay, i, dtype)
        value = lr_min + (lr_max - lr_min) * self._shape(t_curr, t_i, left, dtype)
        return jnp.where(i < limit, value, lr_min * jnp.ones_like(value))


class _TanhArgs(_Initial):
    """TanhLRScheduler's own arguments, which timm puts right after ``t_initial``."""

    lb: float = leaf(default=-7.0, check=checks.real)
    ub: float = leaf(default=3.0, check=checks.real)


class _PolyArgs(_Initial):
    """PolyLRScheduler's own argument, which timm puts right after ``t_initial``."""

    power: float = leaf(default=0.5, check=checks.real)


def _k_ratio(k, t_curr: Array, t_i: Array, dtype) -> Array:
    """timm's ``t_curr ** k / t_i ** k`` as ``(t_curr / t_i) ** k``."""
    r = t_curr / t_i
    if is_concrete(k) and k == 1.0:
        return r
    return jnp.power(r, arr(k, dtype))


class CosineLRScheduler(_CycleSchedule, name="timm.CosineLRScheduler",
                        mirrors="timm.scheduler.CosineLRScheduler"):
    """Cosine decay with warm-up, restarts and k-decay: timm's ``CosineLRScheduler``.

    ``lr_min + (lr * cycle_decay ** i - lr_min) * (1 + cos(pi * (x / T_i) ** k_decay)) / 2`` in cycle ``i`` of
    length ``T_i = t_initial * cycle_mul ** i`` at position ``x``, for ``i < cycle_limit``, then ``lr_min``;
    warm-up as in the module docstring. With the defaults (one cycle) the LR reaches ``lr_min`` at
    ``t_initial`` and stays there, where torch's ``CosineAnnealingLR`` is periodic; timm's
    ``--sched cosine --epochs 100 --warmup-epochs 5`` is ``CosineLRScheduler(lr, t_initial=100, warmup_t=5,
    warmup_prefix=False)`` (prefix True when the warm-up should not eat into the cosine).

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      t_initial: a positive integer: the first cycle's length.
      lr_min: the floor (default 0.0).
      cycle_mul: the factor on each cycle's length (>= 1, default 1.0; static). Taken as written (``1.1`` is
        11/10) and the cycle located exactly; within about ``1e-3`` of 1 timm's own float64 formula is
        inaccurate (degenerate at ``1.0000000000000002``) and jaxsched deliberately does not follow it.
      cycle_decay: the factor on each cycle's peak (default 1.0).
      cycle_limit: the number of cycles before the LR stays at ``lr_min`` (default 1).
      warmup_t: warm-up length (default 0).
      warmup_lr_init: the LR at step 0 of the warm-up (default 0.0).
      warmup_prefix: start the schedule after the warm-up (default False).
      t_in_epochs: whether ``t`` counts epochs (``step``) or updates (``step_update``) (default True).
      noise_range_t: must be None (see the module docstring).
      k_decay: the k-decay exponent (> 0, default 1.0).

    >>> from jaxsched.timm import CosineLRScheduler
    >>> s = CosineLRScheduler(1.0, t_initial=4, warmup_t=2, warmup_lr_init=0.1, warmup_prefix=True)
    >>> [round(float(s(t)), 6) for t in range(8)]
    [0.1, 0.55, 1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]
    """

    k_decay: float = leaf(default=1.0, check=_positive)

    def _shape(self, t_curr, t_i, left, dtype):
        return cos_half(_k_ratio(self.k_decay, t_curr, t_i, dtype))


class TanhLRScheduler(_CycleSchedule, _TanhArgs, name="timm.TanhLRScheduler", mirrors="timm.scheduler.TanhLRScheduler"):
    """Hyperbolic-tangent decay with warm-up and restarts: timm's ``TanhLRScheduler``.

    ``lr_min + (lr * cycle_decay ** i - lr_min) * (1 - tanh(lb * (1 - r) + ub * r)) / 2`` with ``r = x / T_i``
    in cycle ``i`` (as :class:`CosineLRScheduler`). Without ``warmup_prefix`` the warm-up climbs to the
    schedule's value at ``warmup_t``, as timm computes it. No torch scheduler has this form.

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      t_initial: a positive integer: the first cycle's length.
      lb: the tanh's argument at the start of a cycle (default -7.0; ``lb < ub``).
      ub: the tanh's argument at the end of a cycle (default 3.0).
      lr_min: the floor (default 0.0).
      cycle_mul: the factor on each cycle's length (>= 1, default 1.0; static). Taken as written (``1.1`` is
        11/10) and the cycle located exactly; within about ``1e-3`` of 1 timm's own float64 formula is
        inaccurate (degenerate at ``1.0000000000000002``) and jaxsched deliberately does not follow it.
      cycle_decay: the factor on each cycle's peak (default 1.0).
      cycle_limit: the number of cycles before the LR stays at ``lr_min`` (default 1).
      warmup_t: warm-up length (default 0).
      warmup_lr_init: the LR at step 0 of the warm-up (>= 0, default 0.0).
      warmup_prefix: start the schedule after the warm-up (default False).
      t_in_epochs: whether ``t`` counts epochs or updates (default True).
      noise_range_t: must be None (see the module docstring).

    >>> from jaxsched.timm import TanhLRScheduler
    >>> s = TanhLRScheduler(1.0, t_initial=4)
    >>> [round(float(s(t)), 6) for t in range(6)]
    [0.999999, 0.999877, 0.982014, 0.268941, 0.0, 0.0]
    """

    warmup_lr_init: float = leaf(default=0.0, check=_nonneg)  # timm's tanh: >= 0 (keeps its place in the order)

    def _validate(self) -> None:
        super()._validate()
        if is_concrete(self.lb) and is_concrete(self.ub) and not self.lb < self.ub:
            raise ValueError(f"TanhLRScheduler: lb must be < ub, got lb={self.lb!r}, ub={self.ub!r}.")

    def _shape(self, t_curr, t_i, left, dtype):
        r = t_curr / t_i
        lb, ub = arr(self.lb, dtype), arr(self.ub, dtype)
        # (1 - tanh(z)) / 2 as sigmoid(-2 z): no cancellation where tanh(z) is close to 1 (float32 lost 1.5e-6 of
        # the largest LR at z = 2.7)
        return jax.nn.sigmoid(-2.0 * (lb * (1.0 - r) + ub * r))

    def _warmup_target(self, dtype):
        if self.warmup_prefix:
            return arr(self.lr, dtype)
        return self._schedule(jnp.asarray(self.warmup_t, int_dtype()), dtype)


class PolyLRScheduler(_CycleSchedule, _PolyArgs, name="timm.PolyLRScheduler", mirrors="timm.scheduler.PolyLRScheduler"):
    """Polynomial decay with warm-up, restarts and k-decay: timm's ``PolyLRScheduler``.

    ``lr_min + (lr * cycle_decay ** i - lr_min) * (1 - (x / T_i) ** k_decay) ** power`` in cycle ``i`` (as
    :class:`CosineLRScheduler`). torch's ``PolynomialLR(lr, total_iters, power)`` is ``t_initial=total_iters``
    with ``lr_min=0`` (torch's default power is 1.0, timm's 0.5).

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      t_initial: a positive integer: the first cycle's length.
      power: the exponent (default 0.5).
      lr_min: the floor (default 0.0).
      cycle_mul: the factor on each cycle's length (>= 1, default 1.0; static). Taken as written (``1.1`` is
        11/10) and the cycle located exactly; within about ``1e-3`` of 1 timm's own float64 formula is
        inaccurate (degenerate at ``1.0000000000000002``) and jaxsched deliberately does not follow it.
      cycle_decay: the factor on each cycle's peak (default 1.0).
      cycle_limit: the number of cycles before the LR stays at ``lr_min`` (default 1).
      warmup_t: warm-up length (default 0).
      warmup_lr_init: the LR at step 0 of the warm-up (default 0.0).
      warmup_prefix: start the schedule after the warm-up (default False).
      t_in_epochs: whether ``t`` counts epochs or updates (default True).
      noise_range_t: must be None (see the module docstring).
      k_decay: the k-decay exponent (> 0, default 1.0).

    >>> from jaxsched.timm import PolyLRScheduler
    >>> s = PolyLRScheduler(1.0, t_initial=4, power=2.0)
    >>> [round(float(s(t)), 6) for t in range(6)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """

    k_decay: float = leaf(default=1.0, check=_positive)

    def _shape(self, t_curr, t_i, left, dtype):
        g = jnp.clip(left / t_i, 0.0, 1.0)  # 1 - t_curr / t_i, accurate near the cycle's end (see cycle_left)
        if not (is_concrete(self.k_decay) and self.k_decay == 1.0):
            g = -jnp.expm1(arr(self.k_decay, dtype) * jnp.log1p(-g))  # 1 - (1 - g) ** k_decay
        return jnp.power(g, arr(self.power, dtype))


def _decay_t(cls: str, name: str, value):
    """timm's ``decay_t``: a positive number of epochs/updates (a float is allowed: ``t // decay_t``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return checks.check_int(cls, name, value, minimum=1, rule="> 0")
    value = checks.check_float(cls, name, value)
    if value <= 0:
        raise ValueError(f"{cls}: {name} must be > 0, got {name}={value!r}.")
    return value


class _DecaySchedule(_TimmSchedule):
    """Step and multi-step: ``lr * decay_rate ** k`` after a warm-up that is a prefix by default."""

    decay_t: Any = static()  # declared with its check on each class (a period or milestones)
    decay_rate: float = leaf(default=1.0, check=checks.real)
    warmup_t: int = static(default=0, check=_count)
    warmup_lr_init: float = leaf(default=0.0, check=checks.real)
    warmup_prefix: bool = static(default=True, check=checks.boolean)
    t_in_epochs: bool = static(default=True, check=checks.boolean)
    noise_range_t: int | tuple | list | None = static(default=None, check=_noise)


class StepLRScheduler(_DecaySchedule, name="timm.StepLRScheduler", mirrors="timm.scheduler.StepLRScheduler"):
    """``lr * decay_rate ** (t // decay_t)`` after a warm-up: timm's ``StepLRScheduler``.

    ``decay_t`` may be a float (timm's EfficientNet recipe decays every 2.4 epochs, stepped per update):
    ``t // decay_t`` is Python's float floor division (exact in x64; see the module docstring for float32).
    torch's ``StepLR(lr, step_size, gamma)`` is ``decay_t=step_size, decay_rate=gamma``. Unlike timm's cycle
    schedulers, ``warmup_prefix`` defaults to True here.

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      decay_t: the decay period (an int, or a positive float).
      decay_rate: the factor per period (default 1.0).
      warmup_t: warm-up length (default 0).
      warmup_lr_init: the LR at step 0 of the warm-up (default 0.0).
      warmup_prefix: start the schedule after the warm-up (default True).
      t_in_epochs: whether ``t`` counts epochs or updates (default True).
      noise_range_t: must be None (see the module docstring).

    >>> from jaxsched.timm import StepLRScheduler
    >>> s = StepLRScheduler(1.0, decay_t=2, decay_rate=0.5, warmup_t=1)
    >>> [float(s(t)) for t in range(6)]
    [0.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    """

    decay_t: float = static(check=_decay_t)

    def _schedule(self, t, dtype):
        d = self.decay_t
        if isinstance(d, int):
            k = div(t, d)
        else:  # Python's float //: (t - fmod(t, d)) / d, rounded to the nearest integer
            tf = t.astype(dtype)
            dd = jnp.asarray(d, dtype)
            k = jnp.round((tf - jnp.fmod(tf, dd)) / dd).astype(t.dtype)
        return arr(self.lr, dtype) * power_of(self.decay_rate, k, dtype)


def _milestones(cls: str, name: str, value) -> tuple:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{cls}: {name} must be a list of integers, got {name}={value!r}.")
    out = tuple(checks.check_int(cls, f"{name}[{i}]", v) for i, v in enumerate(value))
    if list(out) != sorted(out):
        raise ValueError(f"{cls}: {name} must be sorted (timm bisects it), got {name}={list(value)!r}.")
    return out


class MultiStepLRScheduler(_DecaySchedule, name="timm.MultiStepLRScheduler",
                           mirrors="timm.scheduler.MultiStepLRScheduler"):
    """``lr * decay_rate ** k`` with ``k`` the number of milestones ``<= t + 1``: timm's ``MultiStepLRScheduler``.

    timm compares the milestones with ``t + 1``: a milestone of 10 applies from ``t = 9``, one step before
    torch's ``MultiStepLR(lr, milestones=[10])``. ``warmup_prefix`` defaults to True.

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      decay_t: the sorted milestones (integers).
      decay_rate: the factor per milestone (default 1.0).
      warmup_t: warm-up length (default 0).
      warmup_lr_init: the LR at step 0 of the warm-up (default 0.0).
      warmup_prefix: start the schedule after the warm-up (default True).
      t_in_epochs: whether ``t`` counts epochs or updates (default True).
      noise_range_t: must be None (see the module docstring).

    >>> from jaxsched.timm import MultiStepLRScheduler
    >>> s = MultiStepLRScheduler(1.0, decay_t=[2, 4], decay_rate=0.1)
    >>> [round(float(s(t)), 6) for t in range(5)]
    [1.0, 0.1, 0.1, 0.01, 0.01]
    """

    decay_t: Sequence[int] = static(check=_milestones)

    def _schedule(self, t, dtype):
        k = jnp.zeros_like(t)
        for m in self.decay_t:  # bisect_right(decay_t, t + 1): one comparison per milestone
            k = k + (m <= t + 1).astype(t.dtype)
        return arr(self.lr, dtype) * power_of(self.decay_rate, k, dtype)


def _decay_fn(cls: str, name: str, value):
    if callable(value):
        checks.trace_check(cls, name, value)
        return value
    return checks.check_choice(cls, name, value, ("linear", "1-sqrt", "cosine", "power", "exp"))


def _opt_positive(cls: str, name: str, value):
    return None if value is None else _positive(cls, name, value)


class WSDLRScheduler(_Initial, name="timm.WSDLRScheduler", mirrors="timm.scheduler.WSDLRScheduler"):
    """Warm-up, stable, decay: timm's ``WSDLRScheduler``.

    ``lr_min + (max(lr * stable(t_s), lr_min) - lr_min) * decay(frac)`` with ``t_s = t - warmup_t`` and ``frac =
    min((t_s - (t_initial - decay_t)) / decay_t, 1)`` once the decay phase has begun (before it, the stable value
    alone). ``stable``: ``constant`` 1, ``rsqrt`` ``(1 + t_s / timescale) ** -0.5``, ``power`` ``(1 + t_s /
    timescale) ** -stable_power``. ``decay``: ``linear`` ``1 - frac``, ``1-sqrt`` ``1 - sqrt(frac)``, ``cosine``
    ``(1 + cos(pi frac)) / 2``, ``power`` ``1 - frac ** decay_power``, ``exp`` ``(r ** frac - r) / (1 - r)`` with
    ``r = decay_ratio``, or a jnp-traceable callable. The warm-up is always a prefix. transformers'
    ``warmup_stable_decay`` is the same shape with a warm-up from 0.

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      t_initial: a positive integer: the stable plus decay phases.
      decay_t: the decay phase, the last ``decay_t`` steps of ``t_initial`` (``0 < decay_t <= t_initial``).
      lr_min: the floor (default 0.0).
      stable_fn: ``'constant'`` (default), ``'rsqrt'`` or ``'power'``.
      stable_timescale: the stable function's timescale (default None: ``warmup_t`` when ``stable_fn`` is not
        constant).
      stable_power: the ``'power'`` stable function's exponent (default 0.5).
      decay_fn: ``'1-sqrt'`` (default), ``'linear'``, ``'cosine'``, ``'power'``, ``'exp'`` or a callable.
      decay_power: the ``'power'`` decay's exponent (default 0.5).
      decay_ratio: the ``'exp'`` decay's final fraction, in (0, 1) (default 0.1).
      warmup_t: warm-up length (default 0).
      warmup_lr_init: the LR at step 0 of the warm-up (default 0.0).
      t_in_epochs: whether ``t`` counts epochs or updates (default True).
      noise_range_t: must be None (see the module docstring).

    >>> from jaxsched.timm import WSDLRScheduler
    >>> s = WSDLRScheduler(1.0, t_initial=6, decay_t=4, decay_fn="linear", warmup_t=2)
    >>> [round(float(s(t)), 6) for t in range(10)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """

    decay_t: int = static(check=_t_initial)
    lr_min: float = leaf(default=0.0, check=_nonneg)
    stable_fn: str = static(default="constant", check=checks.choice("constant", "rsqrt", "power"))
    stable_timescale: float | None = leaf(default=None, check=_opt_positive)
    stable_power: float = leaf(default=0.5, check=_positive)
    decay_fn: Any = static(default="1-sqrt", check=_decay_fn)
    decay_power: float = leaf(default=0.5, check=_positive)
    decay_ratio: float = leaf(default=0.1, check=checks.real)
    warmup_t: int = static(default=0, check=_count)
    warmup_lr_init: float = leaf(default=0.0, check=checks.real)
    t_in_epochs: bool = static(default=True, check=checks.boolean)
    noise_range_t: int | tuple | list | None = static(default=None, check=_noise)

    warmup_prefix = True  # timm: the warm-up is always a prefix

    def _validate(self) -> None:
        c = "WSDLRScheduler"
        if not self.decay_t <= self.t_initial:
            raise ValueError(f"{c}: decay_t must be in (0, t_initial], got decay_t={self.decay_t!r} with "
                             f"t_initial={self.t_initial!r}.")
        if is_concrete(self.decay_ratio) and not 0.0 < self.decay_ratio < 1.0:
            raise ValueError(f"{c}: decay_ratio must be in (0, 1), got decay_ratio={self.decay_ratio!r}.")
        if self.stable_fn != "constant" and self.stable_timescale is None:
            if self.warmup_t <= 0:
                raise ValueError(
                    f"{c}: stable_fn={self.stable_fn!r} requires a positive stable_timescale; it defaults to "
                    f"warmup_t ({self.warmup_t}): set it explicitly when there is no warm-up.")
            self._set("stable_timescale", float(self.warmup_t))

    def _schedule(self, t, dtype):
        lr, lr_min = arr(self.lr, dtype), arr(self.lr_min, dtype)
        stable = lr
        if self.stable_fn != "constant":
            power = 0.5 if self.stable_fn == "rsqrt" else arr(self.stable_power, dtype)
            stable = lr * jnp.power(1.0 + t.astype(dtype) / arr(self.stable_timescale, dtype), -power)
            stable = jnp.maximum(stable, lr_min)
        t_decay = t - (self.t_initial - self.decay_t)
        frac = jnp.minimum(jnp.maximum(t_decay, 0), self.decay_t).astype(dtype) / self.decay_t
        fn = self.decay_fn
        if callable(fn):
            decay = jnp.asarray(fn(frac), dtype)
        elif fn == "linear":
            decay = 1.0 - frac
        elif fn == "1-sqrt":
            decay = 1.0 - jnp.sqrt(frac)
        elif fn == "cosine":
            decay = cos_half(frac)
        elif fn == "power":
            decay = 1.0 - jnp.power(frac, arr(self.decay_power, dtype))
        else:
            r = arr(self.decay_ratio, dtype)
            decay = (jnp.power(r, frac) - r) / (1.0 - r)
        return jnp.where(t_decay <= 0, stable, lr_min + (stable - lr_min) * decay)


# ----------------------------------------------------------------------------------------------------------
# the plateau


class PlateauState(NamedTuple):
    """State of :class:`PlateauLRScheduler` (timm's epoch plus its inner torch ``ReduceLROnPlateau``).

    Attributes:
      epoch: int array, shape ``()``: the last epoch given to ``step`` (0 after construction).
      best: float array, shape ``()``: the best metric so far (``-inf`` in mode ``'max'``, ``inf`` in ``'min'``).
      num_bad_epochs: int array, shape ``()``.
      cooldown_counter: int array, shape ``()``.
      lr: float array, shape ``()`` or ``(G,)``: the LR of each parameter group.
    """

    epoch: Array
    best: Array
    num_bad_epochs: Array
    cooldown_counter: Array
    lr: Array


class PlateauLRScheduler(StatefulSchedule, name="timm.PlateauLRScheduler",
                         mirrors="timm.scheduler.PlateauLRScheduler"):
    """A warm-up, then torch's ``ReduceLROnPlateau``: timm's ``PlateauLRScheduler`` (a StatefulSchedule).

    ``p.init()`` is the state after construction (LR ``warmup_lr_init`` with a warm-up, else ``lr``);
    ``p.update(state, value=metric)`` is timm's ``scheduler.step(epoch, metric)`` with ``epoch`` one more than
    the last (timm's training loop calls ``step(epoch + 1, metric)``); ``p(state)`` the LR. For ``epoch <=
    warmup_t`` the LR is ``warmup_lr_init + epoch * (lr - warmup_lr_init) / warmup_t`` and the metric is
    ignored; afterwards each metric goes to ``ReduceLROnPlateau(patience=patience_t, factor=decay_rate,
    threshold=threshold, cooldown=cooldown_t, mode=mode, min_lr=lr_min)`` (threshold mode ``'rel'``, eps 1e-8).
    Note timm's default mode is ``'max'`` (an accuracy), torch's ``'min'``.

    Args:
      lr: the optimizer's LR (a tuple: one per parameter group).
      decay_rate: the factor on a plateau (< 1, default 0.1).
      patience_t: bad epochs tolerated (default 10).
      threshold: relative improvement needed (default 1e-4).
      cooldown_t: epochs to wait after a cut (default 0).
      warmup_t: warm-up length in epochs (default 0).
      warmup_lr_init: the LR at the start of the warm-up (default 0.0).
      lr_min: the floor (default 0.0).
      mode: ``'max'`` (default) or ``'min'``.
      noise_range_t: must be None (see the module docstring).

    >>> from jaxsched.timm import PlateauLRScheduler
    >>> p = PlateauLRScheduler(1.0, patience_t=1, decay_rate=0.5, warmup_t=2)
    >>> st, lrs = p.init(), []
    >>> for acc in [0.1, 0.2, 0.5, 0.5, 0.5, 0.6]:
    ...     st = p.update(st, value=acc); lrs.append(round(float(p(st)), 6))
    >>> lrs
    [0.5, 1.0, 1.0, 1.0, 0.5, 0.5]
    """

    _positional = "lr"
    #: where timm keeps these fields: in the inner torch ReduceLROnPlateau (read by ``from_timm``)
    _counterpart_attrs = {"decay_rate": "lr_scheduler.factor", "patience_t": "lr_scheduler.patience",
                          "threshold": "lr_scheduler.threshold", "cooldown_t": "lr_scheduler.cooldown",
                          "mode": "lr_scheduler.mode"}

    lr: LR = leaf(check=checks.lr)
    decay_rate: float = leaf(default=0.1, check=checks.real)
    patience_t: int = static(default=10, check=checks.integer())
    threshold: float = leaf(default=1e-4, check=checks.real)
    cooldown_t: int = static(default=0, check=checks.integer())
    warmup_t: int = static(default=0, check=_count)
    warmup_lr_init: float = leaf(default=0.0, check=checks.real)
    lr_min: float = leaf(default=0.0, check=checks.real)
    mode: str = static(default="max", check=checks.choice("min", "max"))
    noise_range_t: int | tuple | list | None = static(default=None, check=_noise)

    def _validate(self) -> None:
        if is_concrete(self.decay_rate) and self.decay_rate >= 1.0:
            raise ValueError(f"PlateauLRScheduler: decay_rate must be < 1.0 (torch: Factor should be < 1.0.), "
                             f"got decay_rate={self.decay_rate!r}.")

    def init(self) -> PlateauState:
        """The state right after ``PlateauLRScheduler(optimizer, ...)``."""
        dtype = float_dtype()
        zero = jnp.zeros((), int_dtype())
        lr = arr(self.lr, dtype)
        if self.warmup_t:
            lr = arr(self.warmup_lr_init, dtype) * jnp.ones_like(lr)
        worse = -math.inf if self.mode == "max" else math.inf
        return PlateauState(zero, jnp.asarray(worse, dtype), zero, zero, lr)

    def __call__(self, state: PlateauState, **extra_args) -> Array:
        """The LR in ``state``."""
        del extra_args
        checks.state_of("PlateauLRScheduler", state, PlateauState, "s.update(state, value=metric)")
        checks.state_shape("PlateauLRScheduler", "lr", state.lr, self._lr_shape, self.num_groups)
        return state.lr

    @property
    def _lr_shape(self) -> tuple[int, ...]:
        return () if self.num_groups is None else (self.num_groups,)

    def update(self, state: PlateauState, value=None, **extra_args) -> PlateauState:
        """timm's ``step(state.epoch + 1, metric=value)``."""
        del extra_args
        if value is None:
            raise TypeError(
                "PlateauLRScheduler.update: the metric is missing: call update(state, value=metric) (timm's "
                "step(epoch, metric)); inside an optax optimizer built with inject_hyperparams pass it to the "
                "update: opt.update(grads, opt_state, params, value=metric)."
            )
        o, dtype, it = "PlateauLRScheduler.update", float_dtype(), int_dtype()
        if not isinstance(state, PlateauState):
            raise TypeError(f"{o}: state must be a timm.PlateauState (from init()), got {type(state).__name__}.")
        checks.state_shape(o, "lr", state.lr, self._lr_shape, self.num_groups)
        for name in ("epoch", "best", "num_bad_epochs", "cooldown_counter"):
            checks.state_shape(o, name, getattr(state, name), ())
        state = PlateauState(  # a restored state: checked and cast to the compute dtypes
            checks.state_count(o, "epoch", state.epoch, it), checks.state_float(o, "best", state.best, dtype),
            checks.state_count(o, "num_bad_epochs", state.num_bad_epochs, it),
            checks.state_count(o, "cooldown_counter", state.cooldown_counter, it),
            checks.state_float(o, "lr", state.lr, dtype, nonneg=True, finite=True))
        epoch = inc(state.epoch)  # saturates at the largest step, never wraps
        base = arr(self.lr, dtype) * jnp.ones_like(state.lr)
        # the warm-up (epoch <= warmup_t): timm sets the LR and skips the plateau
        if self.warmup_t:
            init = arr(self.warmup_lr_init, dtype)
            warm_lr = init + epoch.astype(dtype) * ((base - init) / self.warmup_t)
        else:
            warm_lr = state.lr
        in_warmup = epoch <= self.warmup_t
        # torch's ReduceLROnPlateau.step(metric), threshold_mode 'rel', eps 1e-8
        current = checks.metric(o, value, dtype)
        thr = arr(self.threshold, dtype)
        if self.mode == "min":
            better = current < state.best * (1.0 - thr)
        else:
            better = current > state.best * (thr + 1.0)
        best = jnp.where(better, current, state.best)
        bad = jnp.where(better, 0, inc(state.num_bad_epochs)).astype(state.num_bad_epochs.dtype)
        cooling = state.cooldown_counter > 0
        cool = jnp.where(cooling, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(cooling, 0, bad).astype(bad.dtype)
        reduce = bad > self.patience_t
        new = jnp.maximum(state.lr * arr(self.decay_rate, dtype), arr(self.lr_min, dtype))
        lr = jnp.where(reduce & (state.lr - new > 1e-8), new, state.lr)
        cool = jnp.where(reduce, self.cooldown_t, cool).astype(cool.dtype)
        bad = jnp.where(reduce, 0, bad).astype(bad.dtype)
        keep = lambda a, b: jnp.where(in_warmup, a, b)  # noqa: E731
        return PlateauState(epoch, keep(state.best, best), keep(state.num_bad_epochs, bad),
                            keep(state.cooldown_counter, cool), keep(warm_lr, lr).astype(state.lr.dtype))


#: timm's class name -> the jaxsched class.
CLASSES: dict[str, type] = {
    c.__name__: c for c in (CosineLRScheduler, TanhLRScheduler, PolyLRScheduler, StepLRScheduler,
                            MultiStepLRScheduler, WSDLRScheduler, PlateauLRScheduler)
}
