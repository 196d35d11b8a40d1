"""HF transformers' schedule catalogue as jaxsched schedules: ``get_scheduler(name, lr, ...)``.

``jaxsched.transformers.get_scheduler("cosine", 1e-3, num_warmup_steps=100, num_training_steps=1000)`` is
the schedule ``transformers.get_scheduler("cosine", optimizer, 100, 1000)`` would run on an optimizer whose
LR is ``1e-3``: ``s(k)`` is the LR after ``k`` calls of ``scheduler.step()``, in both precisions, for every
name transformers accepts, with transformers' argument names, defaults and error messages for missing
arguments. Each name maps to one schedule class, named after the transformers function that builds it:

==========================  =========================================================================
name                        class (``jaxsched.transformers.<Class>``)
==========================  =========================================================================
constant                    :class:`ConstantSchedule`
constant_with_warmup        :class:`ConstantScheduleWithWarmup`
linear                      :class:`LinearScheduleWithWarmup`
cosine                      :class:`CosineScheduleWithWarmup`
cosine_with_restarts        :class:`CosineWithHardRestartsScheduleWithWarmup`
polynomial                  :class:`PolynomialDecayScheduleWithWarmup`
inverse_sqrt                :class:`InverseSqrtSchedule`
cosine_with_min_lr          :class:`CosineWithMinLRScheduleWithWarmup`
cosine_warmup_with_min_lr   :class:`CosineWithMinLRScheduleWithWarmupLRRate`
warmup_stable_decay         :class:`WSDSchedule`
reduce_lr_on_plateau        ``jaxsched.ReduceLROnPlateau`` (metric-driven: init/update/__call__)
greedy                      :class:`GreedyLR` (metric-driven: init/update/__call__)
==========================  =========================================================================

Where transformers reads ``optimizer.defaults["lr"]`` (``polynomial``, and ``min_lr`` of the two min-LR
cosines) the schedule takes ``lr_init``: it defaults to ``lr`` and must be given with several parameter
groups (transformers then uses the optimizer's default LR, which need not be any group's LR).

Every warmup here starts at LR 0 (``k / num_warmup_steps``), as in transformers, except
``cosine_warmup_with_min_lr`` (``(k + 1) / num_warmup_steps``). :class:`jaxsched.LinearWarmup` is a warmup
that does not waste the first step.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple, Union

import jax.numpy as jnp
import numpy as np

from ._base import (
    Array,
    Schedule,
    _is_tracer,
    arr,
    check_choice,
    check_float,
    check_int,
    check_lengths,
    check_lr,
    float_dtype,
    int_dtype,
    is_concrete,
    per_group,
    schedule_class,
)
from ._schedules import _set

LR = Union[float, tuple]

#: The names ``transformers.get_scheduler`` accepts (``transformers.SchedulerType``), in its order.
SCHEDULER_NAMES = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
    "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
    "warmup_stable_decay", "greedy",
)


# ----------------------------------------------------------------------------------------------------------
# shared pieces


class _HFSchedule(Schedule):
    """Base of the transformers schedules."""

    def _check_common(self, *steps: str) -> None:
        """Validate ``lr`` and the named step-count arguments (non-negative integers), as every schedule does."""
        n = type(self).__name__
        _set(self, "lr", check_lr(n, "lr", self.lr))
        for name in steps:
            _set(self, name, _steps(n, name, getattr(self, name)))


def _steps(cls: str, name: str, value, *, optional: bool = False):
    if optional and value is None:
        return None
    return check_int(cls, name, value, minimum=0)


def _opt_float(cls: str, name: str, value):
    return None if value is None else check_float(cls, name, value)


def _warmup(e: Array, W: int, dtype) -> Array:
    """transformers' linear warmup ``k / max(1, W)``."""
    return e.astype(dtype) / max(1, W)


def _turns(cycles, k: Array, den: int, dtype) -> Array:
    """``frac(cycles * k / den)`` in [0, 1) for an integer array ``k >= 0``, accurate to about 1e-7 in float32.

    A phase measured in turns reduces modulo 1 exactly, unlike an angle modulo 2*pi. With a concrete
    ``cycles`` the constant ``c = cycles / den`` is formed in float64; in float32 it is split into a 12-bit
    head and a tail, and ``k`` into 12-bit halves, so that the large partial products are exact and their
    fractional parts are taken before any rounding (a plain float32 ``c * k`` loses ``|c k| * 6e-8`` turns).
    """
    if not is_concrete(cycles):
        x = arr(cycles, dtype) * (k.astype(dtype) / den)
        return x - jnp.floor(x)
    c = float(cycles) / den
    if dtype == jnp.float64:
        x = jnp.asarray(c, dtype) * k.astype(dtype)
        return x - jnp.floor(x)
    m, ex = math.frexp(c)
    c_hi = math.ldexp(math.floor(m * 4096.0) / 4096.0, ex)
    c_lo = c - c_hi
    k_hi = (k // 4096).astype(dtype)
    k_lo = (k % 4096).astype(dtype)
    t1 = jnp.asarray(c_hi, dtype) * k_hi * 4096.0
    t2 = jnp.asarray(c_hi, dtype) * k_lo
    t3 = jnp.asarray(c_lo, dtype) * k.astype(dtype)
    f = (t1 - jnp.floor(t1)) + (t2 - jnp.floor(t2)) + (t3 - jnp.floor(t3))
    return f - jnp.floor(f)


def _cos2(phase: Array) -> Array:
    """``(1 + cos(2 pi phase)) / 2`` as ``cos(pi phase) ** 2``, without cancellation near the bottom."""
    c = jnp.cos(jnp.pi * phase)
    return c * c


def _lr_init(cls: str, lr, lr_init):
    """transformers' ``optimizer.defaults['lr']``: ``lr_init``, or ``lr`` itself with one parameter group."""
    if lr_init is not None:
        return check_float(cls, "lr_init", lr_init)
    if isinstance(lr, tuple):
        raise ValueError(
            f"{cls}: lr_init must be given with several parameter groups, got lr_init=None and lr={lr!r}. "
            f"transformers divides by optimizer.defaults['lr'] (the lr= passed to the optimizer's constructor), "
            f"which need not equal any group's lr; pass that value as lr_init."
        )
    return lr


def _min_lr_rate(cls: str, min_lr, min_lr_rate):
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError(f"{cls}: Only one of min_lr or min_lr_rate should be set "
                         f"(got min_lr={min_lr!r}, min_lr_rate={min_lr_rate!r}).")
    if min_lr is None and min_lr_rate is None:
        raise ValueError(f"{cls}: One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`.")


def _rate(min_lr, min_lr_rate, lr_init, lr, dtype):
    if min_lr_rate is not None:
        return arr(min_lr_rate, dtype)
    base = lr if lr_init is None else lr_init
    if is_concrete(min_lr) and is_concrete(base):
        return jnp.asarray(float(min_lr) / float(base), dtype)
    return arr(min_lr, dtype) / arr(base, dtype)


# ----------------------------------------------------------------------------------------------------------
# the LambdaLR family


@schedule_class
class ConstantSchedule(_HFSchedule):
    """``lr`` at every step: transformers' ``get_constant_schedule`` (name ``"constant"``).

    >>> from jaxsched.transformers import ConstantSchedule
    >>> [round(float(ConstantSchedule(0.1)(k)), 6) for k in range(3)]
    [0.1, 0.1, 0.1]
    """

    lr: LR

    _leaves = ("lr",)

    def __post_init__(self):
        _set(self, "lr", check_lr("ConstantSchedule", "lr", self.lr))

    def _value(self, e, dtype):
        return arr(self.lr, dtype) * jnp.ones_like(e, dtype=dtype)


@schedule_class
class ConstantScheduleWithWarmup(_HFSchedule):
    """``lr * k / W`` for ``k < W``, then ``lr``: transformers' ``get_constant_schedule_with_warmup``.

    >>> from jaxsched.transformers import ConstantScheduleWithWarmup
    >>> s = ConstantScheduleWithWarmup(0.1, num_warmup_steps=4)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]
    """

    lr: LR
    num_warmup_steps: int

    _leaves = ("lr",)

    def __post_init__(self):
        self._check_common("num_warmup_steps")

    def _value(self, e, dtype):
        W = self.num_warmup_steps
        f = jnp.where(e < W, _warmup(e, W, dtype), jnp.ones((), dtype))
        return arr(self.lr, dtype) * f


@schedule_class
class LinearScheduleWithWarmup(_HFSchedule):
    """Linear warmup from 0 over ``W`` steps, then linear decay to 0 at ``T``: transformers' ``"linear"``.

    ``lr * k / W`` for ``k < W``, then ``lr * max(0, (T - k) / max(1, T - W))``.

    >>> from jaxsched.transformers import LinearScheduleWithWarmup
    >>> s = LinearScheduleWithWarmup(0.1, num_warmup_steps=2, num_training_steps=6)
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.0, 0.05, 0.1, 0.075, 0.05, 0.025, 0.0, 0.0]
    """

    lr: LR
    num_warmup_steps: int
    num_training_steps: int

    _leaves = ("lr",)

    def __post_init__(self):
        self._check_common("num_warmup_steps", "num_training_steps")

    def _value(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        decay = jnp.maximum((T - e).astype(dtype) / max(1, T - W), 0.0)
        return arr(self.lr, dtype) * jnp.where(e < W, _warmup(e, W, dtype), decay)


@schedule_class
class CosineScheduleWithWarmup(_HFSchedule):
    """Linear warmup from 0, then ``(1 + cos(2 pi num_cycles p)) / 2``: transformers' ``"cosine"``.

    ``p = (k - W) / max(1, T - W)``. Not clamped at ``T``: with the default ``num_cycles=0.5`` the LR climbs
    back up after ``T`` (optax's warmup_cosine_decay_schedule holds 0), and ``num_cycles`` other than 0.5
    has no optax equivalent.

    >>> from jaxsched.transformers import CosineScheduleWithWarmup
    >>> s = CosineScheduleWithWarmup(0.1, num_warmup_steps=2, num_training_steps=6)
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.0, 0.05, 0.1, 0.085355, 0.05, 0.014645, 0.0, 0.014645]
    """

    lr: LR
    num_warmup_steps: int
    num_training_steps: int
    num_cycles: float = 0.5

    _leaves = ("lr", "num_cycles")

    def __post_init__(self):
        n = "CosineScheduleWithWarmup"
        self._check_common("num_warmup_steps", "num_training_steps")
        _set(self, "num_cycles", check_float(n, "num_cycles", self.num_cycles))

    def _value(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        k = jnp.maximum(e - W, 0)
        f = _cos2(_turns(self.num_cycles, k, max(1, T - W), dtype))
        return arr(self.lr, dtype) * jnp.where(e < W, _warmup(e, W, dtype), f)


def _hard_restart_torch(k: int, D: int, nc: float) -> float:
    """transformers' hard-restart factor after warmup, in Python floats exactly as transformers computes it."""
    progress = float(k) / float(D)
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(nc) * progress) % 1.0))))


_MAX_RESTART_TABLE = 1 << 15


@schedule_class
class CosineWithHardRestartsScheduleWithWarmup(_HFSchedule):
    """Linear warmup from 0, then ``num_cycles`` cosine decays from ``lr`` to 0, each restarting at ``lr``.

    transformers' ``"cosine_with_restarts"``: ``(1 + cos(pi ((num_cycles p) mod 1))) / 2`` with
    ``p = (k - W) / max(1, T - W)``, and 0 from ``T`` on.

    At a restart the factor jumps from about 0 to 1, so which side of the jump transformers lands on
    depends on how its float64 ``num_cycles * (k / D)`` rounds (``49 * (1 / 49) < 1``). The steps next to
    every restart are computed at trace time exactly as transformers computes them (for a concrete
    ``num_cycles`` and fewer than 32768 restarts); the others use the closed form.

    >>> from jaxsched.transformers import CosineWithHardRestartsScheduleWithWarmup as C
    >>> s = C(0.1, num_warmup_steps=0, num_training_steps=8, num_cycles=2)
    >>> [round(float(s(k)), 6) for k in range(9)]
    [0.1, 0.085355, 0.05, 0.014645, 0.1, 0.085355, 0.05, 0.014645, 0.0]
    """

    lr: LR
    num_warmup_steps: int
    num_training_steps: int
    num_cycles: float = 1

    _leaves = ("lr", "num_cycles")

    def __post_init__(self):
        n = "CosineWithHardRestartsScheduleWithWarmup"
        self._check_common("num_warmup_steps", "num_training_steps")
        _set(self, "num_cycles", check_float(n, "num_cycles", self.num_cycles))

    def _table(self, D: int):
        """Steps next to each restart and transformers' exact factor there."""
        nc = self.num_cycles
        if not is_concrete(nc) or abs(nc) >= _MAX_RESTART_TABLE or nc == 0:
            return None
        ks = set()
        for j in range(1, int(math.floor(abs(nc))) + 1):
            centre = int(math.floor(j * D / abs(nc)))
            ks.update(c for c in (centre - 1, centre, centre + 1) if 0 <= c < D)
        if not ks:
            return None
        ks = sorted(ks)
        return np.asarray(ks), np.asarray([_hard_restart_torch(k, D, nc) for k in ks], np.float64)

    def _value(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        D = max(1, T - W)
        k = jnp.maximum(e - W, 0)
        half = _turns(self.num_cycles, k, D, dtype) * 0.5  # (1 + cos(pi x)) / 2 == cos(pi x / 2) ** 2
        f = _cos2(half)
        table = self._table(D)
        if table is not None:
            ks, vals = table
            hits = k[..., None] == jnp.asarray(ks, k.dtype)
            exact = jnp.sum(jnp.where(hits, jnp.asarray(vals, dtype), 0.0), axis=-1)
            f = jnp.where(jnp.any(hits, axis=-1), exact, f)
        f = jnp.where(k >= D, 0.0, f)
        return arr(self.lr, dtype) * jnp.where(e < W, _warmup(e, W, dtype), f)


@schedule_class
class PolynomialDecayScheduleWithWarmup(_HFSchedule):
    """Linear warmup from 0, then polynomial decay to ``lr_end``: transformers' ``"polynomial"``.

    Factor ``((lr_init - lr_end) * ((T - k) / (T - W)) ** power + lr_end) / lr_init`` for ``W <= k <= T`` and
    ``lr_end / lr_init`` after ``T``. transformers takes ``lr_init`` from ``optimizer.defaults['lr']`` and
    multiplies every group's LR by that factor; here ``lr_init`` defaults to ``lr`` (one group) and must be
    given with several groups.

    >>> from jaxsched.transformers import PolynomialDecayScheduleWithWarmup as P
    >>> s = P(0.1, num_warmup_steps=1, num_training_steps=5, lr_end=0.02, power=2.0)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.0, 0.1, 0.065, 0.04, 0.025, 0.02, 0.02]
    """

    lr: LR
    num_warmup_steps: int
    num_training_steps: int
    lr_end: float = 1e-7
    power: float = 1.0
    lr_init: Any = None

    _leaves = ("lr", "lr_end", "power", "lr_init")

    def __post_init__(self):
        n = "PolynomialDecayScheduleWithWarmup"
        _set(self, "lr", check_lr(n, "lr", self.lr))
        W = _steps(n, "num_warmup_steps", self.num_warmup_steps)
        T = _steps(n, "num_training_steps", self.num_training_steps)
        _set(self, "num_warmup_steps", W)
        _set(self, "num_training_steps", T)
        _set(self, "lr_end", check_float(n, "lr_end", self.lr_end))
        _set(self, "power", check_float(n, "power", self.power))
        _set(self, "lr_init", _lr_init(n, self.lr, self.lr_init))
        if is_concrete(self.lr_init) and is_concrete(self.lr_end) and not self.lr_init > self.lr_end:
            raise ValueError(f"{n}: lr_end ({self.lr_end}) must be smaller than initial lr ({self.lr_init}).")
        if T == W:
            raise ValueError(
                f"{n}: num_training_steps must differ from num_warmup_steps, got num_warmup_steps={W} and "
                f"num_training_steps={T}: transformers divides by num_training_steps - num_warmup_steps at step "
                f"{W} (ZeroDivisionError)."
            )
        if is_concrete(self.power) and self.power < 0 and T > W:
            raise ValueError(
                f"{n}: power must be >= 0, got power={self.power!r}: transformers computes 0.0 ** power at step "
                f"num_training_steps={T} (ZeroDivisionError)."
            )

    def _value(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        lr_init, lr_end, p = arr(self.lr_init, dtype), arr(self.lr_end, dtype), arr(self.power, dtype)
        left = jnp.clip(T - e, 0, None).astype(dtype) / (T - W)  # never negative: no NaN from ** power
        safe = jnp.where(left > 0, left, 1.0)
        zero_power = (self.power == 0) if is_concrete(self.power) else (p == 0)  # a tiny power is not 0
        powed = jnp.where(left > 0, jnp.exp(p * jnp.log(safe)), jnp.where(zero_power, 1.0, 0.0))
        decay = ((lr_init - lr_end) * powed + lr_end) / lr_init
        f = jnp.where(e < W, _warmup(e, W, dtype), jnp.where(e > T, lr_end / lr_init, decay))
        return arr(self.lr, dtype) * f


@schedule_class
class InverseSqrtSchedule(_HFSchedule):
    """Linear warmup from 0, then ``1 / sqrt((k + timescale - W) / timescale)``: transformers' ``"inverse_sqrt"``.

    ``timescale`` defaults to ``num_warmup_steps``, or 10000 when that is 0.

    >>> from jaxsched.transformers import InverseSqrtSchedule
    >>> s = InverseSqrtSchedule(0.1, num_warmup_steps=2)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.0, 0.05, 0.1, 0.08165, 0.070711, 0.063246, 0.057735]
    """

    lr: LR
    num_warmup_steps: int
    timescale: Any = None

    _leaves = ("lr",)

    def __post_init__(self):
        n = "InverseSqrtSchedule"
        self._check_common("num_warmup_steps")
        if self.timescale is not None:
            _set(self, "timescale", check_int(n, "timescale", self.timescale, minimum=1,
                                              rule="a positive integer (transformers divides by it)"))

    @property
    def effective_timescale(self) -> int:
        return self.timescale if self.timescale is not None else (self.num_warmup_steps or 10_000)

    def _value(self, e, dtype):
        W, ts = self.num_warmup_steps, self.effective_timescale
        shifted = jnp.maximum(e + (ts - W), 1).astype(dtype)
        f = jnp.sqrt(ts / shifted)
        return arr(self.lr, dtype) * jnp.where(e < W, _warmup(e, W, dtype), f)


@schedule_class
class CosineWithMinLRScheduleWithWarmup(_HFSchedule):
    """transformers' ``"cosine_with_min_lr"``: the ``"cosine"`` schedule decaying to ``min_lr`` instead of 0.

    After the warmup (from 0) the factor is ``max(0, c * (1 - r) + r)`` with ``c`` the cosine of
    :class:`CosineScheduleWithWarmup` and ``r = min_lr_rate``, or ``min_lr / lr_init`` (give exactly one;
    ``lr_init`` is transformers' ``optimizer.defaults['lr']``, by default ``lr``).

    >>> from jaxsched.transformers import CosineWithMinLRScheduleWithWarmup as C
    >>> s = C(0.1, num_warmup_steps=1, num_training_steps=5, min_lr=0.02)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.0, 0.1, 0.088284, 0.06, 0.031716, 0.02]
    """

    lr: LR
    num_warmup_steps: int
    num_training_steps: int
    num_cycles: float = 0.5
    min_lr: Any = None
    min_lr_rate: Any = None
    lr_init: Any = None

    _leaves = ("lr", "num_cycles", "min_lr", "min_lr_rate", "lr_init")

    def __post_init__(self):
        n = type(self).__name__
        self._check_common("num_warmup_steps", "num_training_steps")
        _set(self, "num_cycles", check_float(n, "num_cycles", self.num_cycles))
        _set(self, "min_lr", _opt_float(n, "min_lr", self.min_lr))
        _set(self, "min_lr_rate", _opt_float(n, "min_lr_rate", self.min_lr_rate))
        _min_lr_rate(n, self.min_lr, self.min_lr_rate)
        if self.lr_init is not None or self.min_lr is not None:
            _set(self, "lr_init", _lr_init(n, self.lr, self.lr_init))
        self._more_checks()

    def _more_checks(self):
        pass

    def _value(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        r = _rate(self.min_lr, self.min_lr_rate, self.lr_init, self.lr, dtype)
        k = jnp.maximum(e - W, 0)
        c = _cos2(_turns(self.num_cycles, k, max(1, T - W), dtype))
        f = jnp.maximum(c * (1.0 - r) + r, 0.0)
        return arr(self.lr, dtype) * jnp.where(e < W, _warmup(e, W, dtype), f)


@schedule_class
class CosineWithMinLRScheduleWithWarmupLRRate(CosineWithMinLRScheduleWithWarmup):
    """transformers' ``"cosine_warmup_with_min_lr"``: a warmup that starts above 0, then cosine to ``min_lr``.

    Warmup (``k < W``): ``(k + 1) / max(1, W)``, or ``warmup_lr_rate + (1 - warmup_lr_rate) * k / max(1, W - 1)``
    when ``warmup_lr_rate`` is given. Then ``max(0, c * (1 - r) + r)`` with
    ``c = (1 + cos(2 pi num_cycles p)) / 2``, ``p = (k - W + 1) / max(1, T - W)`` (one step ahead of
    ``"cosine_with_min_lr"``), ``r = min_lr_rate`` or ``min_lr / lr_init``.

    >>> from jaxsched.transformers import CosineWithMinLRScheduleWithWarmupLRRate as C
    >>> s = C(0.1, num_warmup_steps=2, num_training_steps=6, min_lr_rate=0.0)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.05, 0.1, 0.085355, 0.05, 0.014645, 0.0, 0.014645]
    """

    lr: LR
    num_warmup_steps: int
    num_training_steps: int
    num_cycles: float = 0.5
    min_lr: Any = None
    min_lr_rate: Any = None
    warmup_lr_rate: Any = None
    lr_init: Any = None

    _leaves = ("lr", "num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate", "lr_init")

    def _more_checks(self):
        _set(self, "warmup_lr_rate", _opt_float(type(self).__name__, "warmup_lr_rate", self.warmup_lr_rate))

    def _value(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        r = _rate(self.min_lr, self.min_lr_rate, self.lr_init, self.lr, dtype)
        if self.warmup_lr_rate is None:
            warm = (e + 1).astype(dtype) / max(1, W)
        else:
            wr = arr(self.warmup_lr_rate, dtype)
            warm = wr + (1.0 - wr) * (e.astype(dtype) / max(1, W - 1))
        k = jnp.maximum(e - W + 1, 0)
        c = _cos2(_turns(self.num_cycles, k, max(1, T - W), dtype))
        f = jnp.maximum(c * (1.0 - r) + r, 0.0)
        return arr(self.lr, dtype) * jnp.where(e < W, warm, f)


_WSD_TYPES = ("linear", "cosine", "1-sqrt")


@schedule_class
class WSDSchedule(_HFSchedule):
    """Warmup, stable, decay: transformers' ``"warmup_stable_decay"`` (``get_wsd_schedule``).

    With ``m = min_lr_ratio``, ``S = num_stable_steps`` (default ``T - W - num_decay_steps``):

    * warmup, ``k < W``, ``p = k / max(1, W)``: ``max(0, w(p) (1 - m) + m)``, ``w(p)`` = ``p`` (linear),
      ``(1 - cos(pi p)) / 2`` (cosine) or ``1 - sqrt(1 - p)`` (1-sqrt);
    * stable, ``k < W + S``: 1;
    * decay, ``k < W + S + D``, ``q = (k - W - S) / max(1, D)``: ``max(0, d(q) (1 - m) + m)``, ``d(q)`` = ``1 - q``,
      ``(1 + cos(2 pi num_cycles q)) / 2`` or ``1 - sqrt(q)`` (no optax equivalent: its best approximation is
      off by 41% of the LR);
    * then ``m``.

    When both ``num_training_steps`` and ``num_stable_steps`` are given, ``num_stable_steps`` wins (as in
    transformers, which warns; here a warning is raised only when the two disagree).

    >>> from jaxsched.transformers import WSDSchedule
    >>> s = WSDSchedule(0.1, num_warmup_steps=2, num_decay_steps=4, num_training_steps=8, decay_type="1-sqrt")
    >>> [round(float(s(k)), 6) for k in range(9)]
    [0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.029289, 0.013397, 0.0]
    """

    lr: LR
    num_warmup_steps: int
    num_decay_steps: int
    num_training_steps: Any = None
    num_stable_steps: Any = None
    warmup_type: str = "linear"
    decay_type: str = "cosine"
    min_lr_ratio: float = 0.0
    num_cycles: float = 0.5

    _leaves = ("lr", "min_lr_ratio", "num_cycles")

    def __post_init__(self):
        n = "WSDSchedule"
        self._check_common("num_warmup_steps")
        _set(self, "num_decay_steps", _steps(n, "num_decay_steps", self.num_decay_steps))
        _set(self, "num_training_steps", _steps(n, "num_training_steps", self.num_training_steps, optional=True))
        _set(self, "num_stable_steps", _steps(n, "num_stable_steps", self.num_stable_steps, optional=True))
        if self.num_training_steps is None and self.num_stable_steps is None:
            raise ValueError(f"{n}: Either num_training_steps or num_stable_steps must be specified.")
        if self.warmup_type not in _WSD_TYPES:
            raise ValueError(f"{n}: Unknown warmup type: {self.warmup_type}, expected 'linear', 'cosine' or '1-sqrt'")
        if self.decay_type not in _WSD_TYPES:
            raise ValueError(f"{n}: Unknown decay type: {self.decay_type}, expected 'linear', 'cosine' or '1-sqrt'")
        _set(self, "min_lr_ratio", check_float(n, "min_lr_ratio", self.min_lr_ratio))
        _set(self, "num_cycles", check_float(n, "num_cycles", self.num_cycles))
        if self.num_training_steps is not None and self.num_stable_steps is not None \
                and self.num_warmup_steps + self.num_stable_steps + self.num_decay_steps != self.num_training_steps:
            warnings.warn(
                f"{n}: Both num_training_steps and num_stable_steps are specified. num_stable_steps will be used "
                f"(num_warmup_steps + num_stable_steps + num_decay_steps = "
                f"{self.num_warmup_steps + self.num_stable_steps + self.num_decay_steps} != "
                f"num_training_steps={self.num_training_steps}).", stacklevel=3)

    @property
    def stable_steps(self) -> int:
        """``num_stable_steps``, or ``num_training_steps - num_warmup_steps - num_decay_steps`` (may be < 0)."""
        if self.num_stable_steps is not None:
            return self.num_stable_steps
        return self.num_training_steps - self.num_warmup_steps - self.num_decay_steps

    def _value(self, e, dtype):
        W, S, D = self.num_warmup_steps, self.stable_steps, self.num_decay_steps
        m = arr(self.min_lr_ratio, dtype)
        p = _warmup(e, W, dtype)
        if self.warmup_type == "linear":
            w = p
        elif self.warmup_type == "cosine":
            s = jnp.sin(0.5 * jnp.pi * p)  # (1 - cos(pi p)) / 2
            w = s * s
        else:
            w = 1.0 - jnp.sqrt(jnp.maximum(1.0 - p, 0.0))
        kd = jnp.maximum(e - W - S, 0)
        q = kd.astype(dtype) / max(1, D)
        if self.decay_type == "linear":
            d = 1.0 - q
        elif self.decay_type == "cosine":
            d = _cos2(_turns(self.num_cycles, kd, max(1, D), dtype))
        else:
            d = 1.0 - jnp.sqrt(q)
        warm = jnp.maximum(w * (1.0 - m) + m, 0.0)
        decay = jnp.maximum(d * (1.0 - m) + m, 0.0)
        f = jnp.where(e < W, warm, jnp.where(e < W + S, jnp.ones((), dtype),
                                             jnp.where(e < W + S + D, decay, m)))
        return arr(self.lr, dtype) * f


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


@schedule_class
class GreedyLR(Schedule):
    """transformers' ``GreedyLR`` (name ``"greedy"``) as a functional, jittable state machine.

    After more than ``patience`` consecutive improving metrics the LR is divided by ``factor`` (up to
    ``max_lr``; then ``warmup`` metrics are ignored); after more than ``patience`` non-improving ones it is
    multiplied by ``factor`` (down to ``min_lr``; then ``cooldown`` metrics are ignored). A change smaller than
    ``eps`` is skipped. After ``reset_start`` cuts with every group at ``min_lr`` everything resets to the
    initial LR. ``smooth=True`` feeds the mean of the last ``window_size`` metrics instead of the metric.

    Use: ``state = g.init()``, then once per evaluation ``state = g.update(state, value=metric)``; ``g(state)``
    is the LR. ``update`` is branch-free and runs under ``jax.jit``. ``verbose=True`` cannot print from
    traced code and is rejected.

    Args: as ``transformers.optimization.GreedyLR``, with the optimizer replaced by its LR ``lr``.

    >>> import jaxsched
    >>> g = jaxsched.transformers.GreedyLR(0.1, patience=1, factor=0.5, min_lr=0.01)
    >>> state = g.init()
    >>> for metric in [1.0, 0.5, 0.4, 0.4, 0.4, 0.4]:
    ...     state = g.update(state, value=metric)
    ...     print(round(float(g(state)), 6), end=" ")
    0.1 0.2 0.2 0.2 0.1 0.1
    """

    lr: LR
    mode: str = "min"
    factor: float = 0.95
    patience: int = 10
    threshold: float = 1e-6
    threshold_mode: str = "abs"
    cooldown: int = 0
    warmup: int = 0
    min_lr: LR = 1e-3
    max_lr: LR = 1.0
    eps: float = 1e-8
    verbose: bool = False
    smooth: bool = False
    window_size: int = 50
    reset_start: int = 500

    _leaves = ("lr", "factor", "threshold", "min_lr", "max_lr", "eps")

    def __post_init__(self):
        n = "GreedyLR"
        f = check_float(n, "factor", self.factor)
        if not _is_tracer(f) and f >= 1.0:
            raise ValueError(f"{n}: Factor should be < 1.0, got factor={f!r}.")
        if not _is_tracer(f) and f <= 0.0:
            raise ValueError(f"{n}: factor must be > 0 (the LR is divided by it), got factor={f!r}.")
        _set(self, "factor", f)
        _set(self, "lr", check_lr(n, "lr", self.lr))
        _set(self, "min_lr", per_group(n, "min_lr", self.min_lr))
        _set(self, "max_lr", per_group(n, "max_lr", self.max_lr))
        groups = check_lengths(n, lr=self.lr, min_lr=self.min_lr, max_lr=self.max_lr)
        if groups is not None and not isinstance(self.lr, tuple):
            which = "min_lr" if isinstance(self.min_lr, tuple) else "max_lr"
            raise ValueError(f"{n}: expected 1 {which}s (one parameter group, lr={self.lr!r}), "
                             f"got {which}={getattr(self, which)!r}.")
        check_choice(n, "mode", self.mode, ("min", "max"))
        check_choice(n, "threshold_mode", self.threshold_mode, ("rel", "abs"))
        _set(self, "threshold", check_float(n, "threshold", self.threshold))
        _set(self, "eps", check_float(n, "eps", self.eps))
        _set(self, "patience", check_int(n, "patience", self.patience, minimum=0))
        _set(self, "cooldown", check_int(n, "cooldown", self.cooldown, minimum=0))
        _set(self, "warmup", check_int(n, "warmup", self.warmup, minimum=0))
        _set(self, "window_size", check_int(n, "window_size", self.window_size, minimum=1))
        _set(self, "reset_start", check_int(n, "reset_start", self.reset_start))
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

    def update(self, state: GreedyLRState, value=None, **extra_args) -> GreedyLRState:
        """One ``scheduler.step(metrics=value)``."""
        if value is None:
            raise TypeError("GreedyLR.update: value (the metric) is required: g.update(state, value=metric).")
        dtype = state.lr.dtype
        it = state.num_bad_epochs.dtype
        current = jnp.asarray(value).astype(dtype)
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
        bad = jnp.where(normal & ~better, state.num_bad_epochs + 1, 0).astype(it)
        good = jnp.where(normal & better, state.num_good_epochs + 1, 0).astype(it)
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
            warmup_counter=warmup, reset_start=reset_start, last_epoch=state.last_epoch + 1, window=window,
            window_count=count, window_head=head, window_sum=wsum,
        )

    def __call__(self, state: GreedyLRState, **extra_args) -> Array:
        """The LR the optimizer holds in ``state``."""
        if not isinstance(state, GreedyLRState):
            raise TypeError(
                f"GreedyLR is metric-driven: call it on its state (g(state), with state = g.init() and "
                f"state = g.update(state, value=metric)), got {type(state).__name__}."
            )
        return state.lr

    def _value(self, e, dtype):
        raise TypeError("GreedyLR has no closed form in the step: it depends on the metrics fed to update().")

    def _check_in_composite(self, owner, index):
        raise ValueError(
            f"{owner}: {owner} does not support `GreedyLR` as it requires the metric when calling `step`, but got "
            f"one at index {index} in the given schedulers sequence."
        )


# ----------------------------------------------------------------------------------------------------------
# get_scheduler


def _scheduler_type(name) -> str:
    value = getattr(name, "value", name)
    if value not in SCHEDULER_NAMES:
        raise ValueError(f"{value} is not a valid SchedulerType, please select one of {list(SCHEDULER_NAMES)}")
    return value


def _missing(name: str, arg: str) -> ValueError:
    return ValueError(f"SchedulerType.{name.upper()} requires `{arg}`, please provide that argument.")


def get_scheduler(name, lr, num_warmup_steps=None, num_training_steps=None, scheduler_specific_kwargs=None):
    """The jaxsched schedule ``transformers.get_scheduler(name, optimizer, ...)`` builds, on an optimizer of LR ``lr``.

    Args:
      name: one of :data:`SCHEDULER_NAMES` (``"linear"``, ``"cosine"``, ...), or a ``transformers.SchedulerType``.
      lr: the optimizer's LR (a tuple: one per parameter group).
      num_warmup_steps: required by every name except ``constant``, ``reduce_lr_on_plateau`` and ``greedy``.
      num_training_steps: required by ``linear``, ``cosine``, ``cosine_with_restarts``, ``polynomial`` and the two
        min-LR cosines; ``warmup_stable_decay`` needs it or ``num_stable_steps``.
      scheduler_specific_kwargs: the remaining arguments of the schedule (``num_cycles``, ``lr_end``, ``power``,
        ``timescale``, ``min_lr``, ``min_lr_rate``, ``num_decay_steps``, ... or ReduceLROnPlateau's/GreedyLR's);
        ``lr_init`` stands for transformers' ``optimizer.defaults['lr']`` where that is used.

    Missing arguments raise the ValueError transformers raises; an unknown keyword raises TypeError.

    >>> from jaxsched.transformers import get_scheduler
    >>> get_scheduler("cosine", 1e-3, num_warmup_steps=10, num_training_steps=100)
    CosineScheduleWithWarmup(0.001, num_warmup_steps=10, num_training_steps=100, num_cycles=0.5)
    >>> get_scheduler("linear", 1e-3, num_warmup_steps=10)
    Traceback (most recent call last):
    ...
    ValueError: SchedulerType.LINEAR requires `num_training_steps`, please provide that argument.
    """
    name = _scheduler_type(name)
    kw = dict(scheduler_specific_kwargs or {})
    if name == "constant":
        return ConstantSchedule(lr)
    if name == "reduce_lr_on_plateau":
        try:
            from ._plateau import ReduceLROnPlateau as plateau
        except ImportError:  # pragma: no cover - only before jaxsched.ReduceLROnPlateau existed
            raise NotImplementedError(
                "get_scheduler('reduce_lr_on_plateau'): jaxsched.ReduceLROnPlateau is not available in this "
                "version of jaxsched."
            ) from None
        return plateau(lr, **kw)
    if name == "greedy":
        return GreedyLR(lr, **kw)
    if num_warmup_steps is None:
        raise _missing(name, "num_warmup_steps")
    if name == "constant_with_warmup":
        return ConstantScheduleWithWarmup(lr, num_warmup_steps=num_warmup_steps)
    if name == "inverse_sqrt":
        return InverseSqrtSchedule(lr, num_warmup_steps=num_warmup_steps, **kw)
    if name == "warmup_stable_decay":
        return WSDSchedule(lr, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kw)
    if num_training_steps is None:
        raise _missing(name, "num_training_steps")
    cls = {
        "linear": LinearScheduleWithWarmup,
        "cosine": CosineScheduleWithWarmup,
        "cosine_with_restarts": CosineWithHardRestartsScheduleWithWarmup,
        "polynomial": PolynomialDecayScheduleWithWarmup,
        "cosine_with_min_lr": CosineWithMinLRScheduleWithWarmup,
        "cosine_warmup_with_min_lr": CosineWithMinLRScheduleWithWarmupLRRate,
    }[name]
    return cls(lr, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kw)


__all__ = [
    "SCHEDULER_NAMES",
    "ConstantSchedule",
    "ConstantScheduleWithWarmup",
    "CosineScheduleWithWarmup",
    "CosineWithHardRestartsScheduleWithWarmup",
    "CosineWithMinLRScheduleWithWarmup",
    "CosineWithMinLRScheduleWithWarmupLRRate",
    "GreedyLR",
    "GreedyLRState",
    "InverseSqrtSchedule",
    "LinearScheduleWithWarmup",
    "PolynomialDecayScheduleWithWarmup",
    "WSDSchedule",
    "get_scheduler",
]
