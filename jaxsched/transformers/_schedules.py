"""transformers' LambdaLR-family schedules (``get_*_schedule*``) as jaxsched schedules."""


from __future__ import annotations

import math
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._base import LR, Schedule, leaf, static
from .._checks import check_float, check_int, check_lr, check_steps
from .._numerics import Array, arr, is_concrete

#: The names ``transformers.get_scheduler`` accepts (``transformers.SchedulerType``), in its order.
SCHEDULER_NAMES = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
    "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
    "warmup_stable_decay", "greedy",
)


# ----------------------------------------------------------------------------------------------------------
# shared pieces


class _HFSchedule(Schedule):
    """Base of the transformers schedules: the optimizer's LR, ``lr`` (a tuple: one per parameter group)."""

    lr: LR = leaf(check=check_lr)


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


class _Warmup(_HFSchedule):
    """A warm-up over ``num_warmup_steps``, then the schedule's own factor: ``lr * warm(k)`` for ``k < W``, else
    ``lr * after(k)``. transformers' warm-up is ``k / max(1, W)``, from 0."""

    num_warmup_steps: int = static(check=_steps)

    def _warm(self, e: Array, dtype) -> Array:
        """The factor during the warm-up (``e < num_warmup_steps``)."""
        return _warmup(e, self.num_warmup_steps, dtype)

    def _after(self, e: Array, dtype) -> Array:
        """The factor from step ``num_warmup_steps`` on."""
        raise NotImplementedError

    def _get_closed_form_lr(self, e, dtype):
        f = jnp.where(e < self.num_warmup_steps, self._warm(e, dtype), self._after(e, dtype))
        return arr(self.lr, dtype) * f


class _WarmupDecay(_Warmup):
    """A warm-up, then a decay that ends at ``num_training_steps``."""

    num_training_steps: int = static(check=_steps)

    @property
    def _decay_steps(self) -> int:
        """``max(1, T - W)``: the length transformers divides the progress after the warm-up by."""
        return max(1, self.num_training_steps - self.num_warmup_steps)


# ----------------------------------------------------------------------------------------------------------
# the LambdaLR family


class ConstantSchedule(_HFSchedule, mirrors="transformers.optimization.get_constant_schedule"):
    """``lr`` at every step: transformers' ``get_constant_schedule`` (name ``"constant"``).

    Mirrors ``get_constant_schedule(optimizer, last_epoch=-1)`` with the optimizer replaced by its LR ``lr``.
    ``last_epoch`` has no counterpart: ``s(k)`` is the LR after ``k`` calls of ``scheduler.step()``, for any ``k``,
    so a resumed run evaluates ``s`` at the step it resumes from.

    Args:
      lr: the optimizer's LR, >= 0 (a tuple: one per parameter group).

    >>> from jaxsched.transformers import ConstantSchedule
    >>> [round(float(ConstantSchedule(0.1)(k)), 6) for k in range(3)]
    [0.1, 0.1, 0.1]
    """

    def _get_closed_form_lr(self, e, dtype):
        return arr(self.lr, dtype) * jnp.ones_like(e, dtype=dtype)


class ConstantScheduleWithWarmup(_Warmup, mirrors="transformers.optimization.get_constant_schedule_with_warmup"):
    """``lr * k / W`` for ``k < W``, then ``lr``: transformers' ``get_constant_schedule_with_warmup``.

    Mirrors ``get_constant_schedule_with_warmup(optimizer, num_warmup_steps, last_epoch=-1)`` (name
    ``"constant_with_warmup"``) with the optimizer replaced by its LR ``lr``. ``last_epoch`` has no counterpart:
    ``s(k)`` is the LR after ``k`` calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at
    the step it resumes from.

    Args:
      lr: the LR after the warm-up, >= 0 (a tuple: one per parameter group, all warmed up by the same factor).
      num_warmup_steps: ``W``, the warm-up's length in steps, a non-negative integer: the LR climbs linearly
        from 0 at step 0 and is ``lr`` from step ``W`` on (0: no warm-up).

    >>> from jaxsched.transformers import ConstantScheduleWithWarmup
    >>> s = ConstantScheduleWithWarmup(0.1, num_warmup_steps=4)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]
    """

    def _after(self, e, dtype):
        return jnp.ones((), dtype)


class LinearScheduleWithWarmup(_WarmupDecay, mirrors="transformers.optimization.get_linear_schedule_with_warmup"):
    """Linear warmup from 0 over ``W`` steps, then linear decay to 0 at ``T``: transformers' ``"linear"``.

    ``lr * k / W`` for ``k < W``, then ``lr * max(0, (T - k) / max(1, T - W))``.

    Mirrors ``get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1)`` with
    the optimizer replaced by its LR ``lr``. ``last_epoch`` has no counterpart: ``s(k)`` is the LR after ``k`` calls
    of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at the step it resumes from.

    Args:
      lr: the peak LR, reached at step ``W``, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the warm-up's length in steps, a non-negative integer (0: no warm-up).
      num_training_steps: ``T``, the step from which the LR is 0, a non-negative integer. It is not checked
        against ``W``: with ``T <= W`` the LR drops to 0 when the warm-up ends, as in transformers.

    >>> from jaxsched.transformers import LinearScheduleWithWarmup
    >>> s = LinearScheduleWithWarmup(0.1, num_warmup_steps=2, num_training_steps=6)
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.0, 0.05, 0.1, 0.075, 0.05, 0.025, 0.0, 0.0]
    """

    def _after(self, e, dtype):
        return jnp.maximum((self.num_training_steps - e).astype(dtype) / self._decay_steps, 0.0)


class CosineScheduleWithWarmup(_WarmupDecay, mirrors="transformers.optimization.get_cosine_schedule_with_warmup"):
    """Linear warmup from 0, then ``(1 + cos(2 pi num_cycles p)) / 2``: transformers' ``"cosine"``.

    ``p = (k - W) / max(1, T - W)``. Not clamped at ``T``: with the default ``num_cycles=0.5`` the LR climbs
    back up after ``T`` (optax's warmup_cosine_decay_schedule holds 0), and ``num_cycles`` other than 0.5
    has no optax equivalent.

    Mirrors ``get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, num_cycles=0.5,
    last_epoch=-1)`` with the optimizer replaced by its LR ``lr``. ``last_epoch`` has no counterpart: ``s(k)`` is
    the LR after ``k`` calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at the step it
    resumes from.

    Args:
      lr: the peak LR, reached at step ``W``, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the linear warm-up's length in steps, a non-negative integer (0: no warm-up).
      num_training_steps: ``T``, a non-negative integer: the progress ``p`` reaches 1 at step ``T`` (where the
        default half cosine reaches 0).
      num_cycles: the number of cosine periods while ``p`` goes from 0 to 1, a float (default 0.5: a half
        cosine from ``lr`` down to 0).

    >>> from jaxsched.transformers import CosineScheduleWithWarmup
    >>> s = CosineScheduleWithWarmup(0.1, num_warmup_steps=2, num_training_steps=6)
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.0, 0.05, 0.1, 0.085355, 0.05, 0.014645, 0.0, 0.014645]
    """

    num_cycles: float = leaf(default=0.5, check=check_float)

    def _after(self, e, dtype):
        k = jnp.maximum(e - self.num_warmup_steps, 0)
        return _cos2(_turns(self.num_cycles, k, self._decay_steps, dtype))


def _hard_restart_torch(k: int, D: int, nc: float) -> float:
    """transformers' hard-restart factor after warmup, in Python floats exactly as transformers computes it."""
    progress = float(k) / float(D)
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(nc) * progress) % 1.0))))


_MAX_RESTART_TABLE = 1 << 15


class CosineWithHardRestartsScheduleWithWarmup(
    _WarmupDecay,
    mirrors="transformers.optimization.get_cosine_with_hard_restarts_schedule_with_warmup",
):
    """Linear warmup from 0, then ``num_cycles`` cosine decays from ``lr`` to 0, each restarting at ``lr``.

    transformers' ``"cosine_with_restarts"``: ``(1 + cos(pi ((num_cycles p) mod 1))) / 2`` with
    ``p = (k - W) / max(1, T - W)``, and 0 from ``T`` on.

    At a restart the factor jumps from about 0 to 1, so which side of the jump transformers lands on
    depends on how its float64 ``num_cycles * (k / D)`` rounds (``49 * (1 / 49) < 1``). The steps next to
    every restart are computed at trace time exactly as transformers computes them (for a concrete
    ``num_cycles`` and fewer than 32768 restarts); the others use the closed form.

    Mirrors ``get_cosine_with_hard_restarts_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps,
    num_cycles=1, last_epoch=-1)`` with the optimizer replaced by its LR ``lr``. ``last_epoch`` has no counterpart:
    ``s(k)`` is the LR after ``k`` calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at
    the step it resumes from.

    Args:
      lr: the LR at the end of the warm-up and after every restart, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the linear warm-up's length in steps, a non-negative integer (0: no warm-up).
      num_training_steps: ``T``, a non-negative integer: the LR is 0 from step ``W + max(1, T - W)`` on
        (from ``T`` when ``T > W``).
      num_cycles: the number of cosine decays between ``W`` and ``T`` (default 1: one decay, no restart). A
        float, as transformers computes it (``float(num_cycles)``, though it annotates ``int``): 2.5 gives two
        full decays and the first half of a third.

    >>> from jaxsched.transformers import CosineWithHardRestartsScheduleWithWarmup as C
    >>> s = C(0.1, num_warmup_steps=0, num_training_steps=8, num_cycles=2)
    >>> [round(float(s(k)), 6) for k in range(9)]
    [0.1, 0.085355, 0.05, 0.014645, 0.1, 0.085355, 0.05, 0.014645, 0.0]
    """

    num_cycles: float = leaf(default=1, check=check_float)

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

    def _after(self, e, dtype):
        D = self._decay_steps
        k = jnp.maximum(e - self.num_warmup_steps, 0)
        half = _turns(self.num_cycles, k, D, dtype) * 0.5  # (1 + cos(pi x)) / 2 == cos(pi x / 2) ** 2
        f = _cos2(half)
        table = self._table(D)
        if table is not None:
            ks, vals = table
            hits = k[..., None] == jnp.asarray(ks, k.dtype)
            exact = jnp.sum(jnp.where(hits, jnp.asarray(vals, dtype), 0.0), axis=-1)
            f = jnp.where(jnp.any(hits, axis=-1), exact, f)
        return jnp.where(k >= D, 0.0, f)


class PolynomialDecayScheduleWithWarmup(
    _WarmupDecay,
    mirrors="transformers.optimization.get_polynomial_decay_schedule_with_warmup",
):
    """Linear warmup from 0, then polynomial decay to ``lr_end``: transformers' ``"polynomial"``.

    Factor ``((lr_init - lr_end) * ((T - k) / (T - W)) ** power + lr_end) / lr_init`` for ``W <= k <= T`` and
    ``lr_end / lr_init`` after ``T``. transformers takes ``lr_init`` from ``optimizer.defaults['lr']`` and
    multiplies every group's LR by that factor; here ``lr_init`` defaults to ``lr`` (one group) and must be
    given with several groups.

    Mirrors ``get_polynomial_decay_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps,
    lr_end=1e-7, power=1.0, last_epoch=-1)`` with the optimizer replaced by its LR ``lr`` and its
    ``optimizer.defaults['lr']`` by ``lr_init``. ``last_epoch`` has no counterpart: ``s(k)`` is the LR after ``k``
    calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at the step it resumes from.

    Args:
      lr: the optimizer's LR, >= 0 (a tuple: one per parameter group, each multiplied by the factor above).
      num_warmup_steps: ``W``, the linear warm-up's length in steps, a non-negative integer (0: no warm-up).
      num_training_steps: ``T``, the step at which the decay ends, a non-negative integer; it must differ from
        ``W`` (transformers divides by ``T - W``: ZeroDivisionError).
      lr_end: the LR at step ``T`` and after for a group whose LR is ``lr_init`` (each group ends at
        ``lr * lr_end / lr_init``); it must be smaller than ``lr_init``, as transformers checks (default 1e-7).
      power: the decay's exponent (default 1.0: linear). It must be >= 0 when ``T > W`` (transformers raises
        ZeroDivisionError computing ``0.0 ** power`` at step ``T``).
      lr_init: transformers' ``optimizer.defaults['lr']`` (the ``lr=`` given to the optimizer's constructor),
        the LR the decay starts from in the factor (default None: ``lr``; required when ``lr`` is a tuple).
        transformers has no such argument: pass it by keyword.

    >>> from jaxsched.transformers import PolynomialDecayScheduleWithWarmup as P
    >>> s = P(0.1, num_warmup_steps=1, num_training_steps=5, lr_end=0.02, power=2.0)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.0, 0.1, 0.065, 0.04, 0.025, 0.02, 0.02]
    """

    lr_end: float = leaf(default=1e-7)
    power: float = leaf(default=1.0)
    lr_init: Any = leaf(default=None)

    def _validate(self):
        n = "PolynomialDecayScheduleWithWarmup"
        W, T = self.num_warmup_steps, self.num_training_steps
        self._set("lr_end", check_float(n, "lr_end", self.lr_end))
        self._set("power", check_float(n, "power", self.power))
        self._set("lr_init", _lr_init(n, self.lr, self.lr_init))
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

    def _after(self, e, dtype):
        W, T = self.num_warmup_steps, self.num_training_steps
        lr_init, lr_end, p = arr(self.lr_init, dtype), arr(self.lr_end, dtype), arr(self.power, dtype)
        left = jnp.clip(T - e, 0, None).astype(dtype) / (T - W)  # never negative: no NaN from ** power
        safe = jnp.where(left > 0, left, 1.0)
        zero_power = (self.power == 0) if is_concrete(self.power) else (p == 0)  # a tiny power is not 0
        powed = jnp.where(left > 0, jnp.exp(p * jnp.log(safe)), jnp.where(zero_power, 1.0, 0.0))
        decay = ((lr_init - lr_end) * powed + lr_end) / lr_init
        return jnp.where(e > T, lr_end / lr_init, decay)


class InverseSqrtSchedule(_Warmup, mirrors="transformers.optimization.get_inverse_sqrt_schedule"):
    """Linear warmup from 0, then ``1 / sqrt((k + timescale - W) / timescale)``: transformers' ``"inverse_sqrt"``.

    ``timescale`` defaults to ``num_warmup_steps``, or 10000 when that is 0.

    Mirrors ``get_inverse_sqrt_schedule(optimizer, num_warmup_steps, timescale=None, last_epoch=-1)`` with the
    optimizer replaced by its LR ``lr``. ``last_epoch`` has no counterpart: ``s(k)`` is the LR after ``k`` calls of
    ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at the step it resumes from.

    Args:
      lr: the peak LR, reached at step ``W``, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the linear warm-up's length in steps, a non-negative integer (0: no warm-up).
      timescale: a positive integer: the LR is ``lr / sqrt(2)`` at ``timescale`` steps after the warm-up and
        ``lr / 2`` at ``3 * timescale`` steps after it (default None: ``num_warmup_steps``, or 10000 when that
        is 0, as in transformers; ``effective_timescale`` gives the value used).

    >>> from jaxsched.transformers import InverseSqrtSchedule
    >>> s = InverseSqrtSchedule(0.1, num_warmup_steps=2)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.0, 0.05, 0.1, 0.08165, 0.070711, 0.063246, 0.057735]
    """

    timescale: Any = static(default=None)

    def _validate(self):
        n = "InverseSqrtSchedule"
        if self.timescale is not None:
            self._set("timescale", check_int(n, "timescale", self.timescale, minimum=1,
                                              rule="a positive integer (transformers divides by it)"))

    @property
    def effective_timescale(self) -> int:
        return self.timescale if self.timescale is not None else (self.num_warmup_steps or 10_000)

    def _after(self, e, dtype):
        W, ts = self.num_warmup_steps, self.effective_timescale
        shifted = jnp.maximum(e + (ts - W), 1).astype(dtype)
        return jnp.sqrt(ts / shifted)


class CosineWithMinLRScheduleWithWarmup(
    _WarmupDecay,
    mirrors="transformers.optimization.get_cosine_with_min_lr_schedule_with_warmup",
):
    """transformers' ``"cosine_with_min_lr"``: the ``"cosine"`` schedule decaying to ``min_lr`` instead of 0.

    After the warmup (from 0) the factor is ``max(0, c * (1 - r) + r)`` with ``c`` the cosine of
    :class:`CosineScheduleWithWarmup` and ``r = min_lr_rate``, or ``min_lr / lr_init`` (give exactly one;
    ``lr_init`` is transformers' ``optimizer.defaults['lr']``, by default ``lr``).

    Mirrors ``get_cosine_with_min_lr_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps,
    num_cycles=0.5, last_epoch=-1, min_lr=None, min_lr_rate=None)`` with the optimizer replaced by its LR ``lr`` and
    its ``optimizer.defaults['lr']`` by ``lr_init``. ``last_epoch`` has no counterpart: ``s(k)`` is the LR after
    ``k`` calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at the step it resumes
    from. Positions differ after ``num_cycles`` (transformers' fifth argument is ``last_epoch``): pass ``min_lr``,
    ``min_lr_rate`` and ``lr_init`` by keyword.

    Args:
      lr: the peak LR, reached at step ``W``, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the linear warm-up's length in steps, a non-negative integer (0: no warm-up).
      num_training_steps: ``T``, a non-negative integer: the cosine's progress ``p = (k - W) / max(1, T - W)``
        reaches 1 at step ``T`` (where the default half cosine reaches the floor).
      num_cycles: the number of cosine periods while ``p`` goes from 0 to 1 (default 0.5: a half cosine from
        ``lr`` down to the floor; not clamped after ``T``, as in transformers).
      min_lr: the floor as an LR: ``r = min_lr / lr_init``, so a group of LR ``lr_init`` ends at ``min_lr``
        (default None). Give exactly one of ``min_lr`` and ``min_lr_rate`` (ValueError otherwise, with
        transformers' message).
      min_lr_rate: the floor as a fraction ``r`` of each group's LR (default None).
      lr_init: transformers' ``optimizer.defaults['lr']``, which ``min_lr`` is divided by; used only with
        ``min_lr``, where it must not be 0 (default None: ``lr``; required with ``min_lr`` when ``lr`` is a
        tuple).

    >>> from jaxsched.transformers import CosineWithMinLRScheduleWithWarmup as C
    >>> s = C(0.1, num_warmup_steps=1, num_training_steps=5, min_lr=0.02)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.0, 0.1, 0.088284, 0.06, 0.031716, 0.02]
    """

    num_cycles: float = leaf(default=0.5, check=check_float)
    min_lr: Any = leaf(default=None)
    min_lr_rate: Any = leaf(default=None)
    lr_init: Any = leaf(default=None)

    #: the cosine's progress is this many steps ahead after the warm-up (1 for the LRRate variant)
    _ahead = 0

    def _validate(self):
        n = type(self).__name__
        self._set("min_lr", _opt_float(n, "min_lr", self.min_lr))
        self._set("min_lr_rate", _opt_float(n, "min_lr_rate", self.min_lr_rate))
        _min_lr_rate(n, self.min_lr, self.min_lr_rate)
        if self.lr_init is not None or self.min_lr is not None:
            self._set("lr_init", _lr_init(n, self.lr, self.lr_init))
        if self.min_lr is not None and is_concrete(self.lr_init) and self.lr_init == 0:
            raise ValueError(
                f"{n}: min_lr needs a non-zero initial LR: transformers computes min_lr_rate = min_lr / "
                f"optimizer.defaults['lr'] at construction (ZeroDivisionError), got min_lr={self.min_lr!r} with "
                f"lr_init={self.lr_init!r}. Give min_lr_rate instead."
            )
        self._more_checks()

    def _more_checks(self):
        pass

    def _after(self, e, dtype):
        r = _rate(self.min_lr, self.min_lr_rate, self.lr_init, self.lr, dtype)
        k = jnp.maximum(e - self.num_warmup_steps + self._ahead, 0)
        c = _cos2(_turns(self.num_cycles, k, self._decay_steps, dtype))
        return jnp.maximum(c * (1.0 - r) + r, 0.0)


class CosineWithMinLRScheduleWithWarmupLRRate(
    CosineWithMinLRScheduleWithWarmup,
    mirrors="transformers.optimization.get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
):
    """transformers' ``"cosine_warmup_with_min_lr"``: a warmup that starts above 0, then cosine to ``min_lr``.

    Warmup (``k < W``): ``(k + 1) / max(1, W)``, or ``warmup_lr_rate + (1 - warmup_lr_rate) * k / max(1, W - 1)``
    when ``warmup_lr_rate`` is given. Then ``max(0, c * (1 - r) + r)`` with
    ``c = (1 + cos(2 pi num_cycles p)) / 2``, ``p = (k - W + 1) / max(1, T - W)`` (one step ahead of
    ``"cosine_with_min_lr"``), ``r = min_lr_rate`` or ``min_lr / lr_init``.

    Mirrors ``get_cosine_with_min_lr_schedule_with_warmup_lr_rate(optimizer, num_warmup_steps, num_training_steps,
    num_cycles=0.5, last_epoch=-1, min_lr=None, min_lr_rate=None, warmup_lr_rate=None)`` with the optimizer replaced
    by its LR ``lr`` and its ``optimizer.defaults['lr']`` by ``lr_init``. ``last_epoch`` has no counterpart:
    ``s(k)`` is the LR after ``k`` calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at
    the step it resumes from. Positions differ after ``num_cycles`` (transformers' fifth argument is
    ``last_epoch``): pass the rest by keyword.

    Args:
      lr: the peak LR, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the warm-up's length in steps, a non-negative integer (0: no warm-up). The
        warm-up reaches ``lr`` at its last step, ``W - 1`` (except with ``warmup_lr_rate`` and ``W = 1``).
      num_training_steps: ``T``, a non-negative integer: the cosine's progress ``p`` reaches 1 at step
        ``T - 1`` (one step earlier than in ``"cosine_with_min_lr"``).
      num_cycles: the number of cosine periods while ``p`` goes from 0 to 1 (default 0.5: a half cosine from
        ``lr`` down to the floor; not clamped after ``T - 1``, as in transformers).
      min_lr: the floor as an LR: ``r = min_lr / lr_init``, so a group of LR ``lr_init`` ends at ``min_lr``
        (default None). Give exactly one of ``min_lr`` and ``min_lr_rate`` (ValueError otherwise, with
        transformers' message).
      min_lr_rate: the floor as a fraction ``r`` of each group's LR (default None).
      lr_init: transformers' ``optimizer.defaults['lr']``, which ``min_lr`` is divided by; used only with
        ``min_lr``, where it must not be 0 (default None: ``lr``; required with ``min_lr`` when ``lr`` is a
        tuple).
      warmup_lr_rate: the warm-up's start as a fraction of ``lr``: the LR climbs linearly from
        ``warmup_lr_rate * lr`` at step 0 to ``lr`` at step ``W - 1`` (default None: ``(k + 1) / W``, which
        starts at ``lr / W``).

    >>> from jaxsched.transformers import CosineWithMinLRScheduleWithWarmupLRRate as C
    >>> s = C(0.1, num_warmup_steps=2, num_training_steps=6, min_lr_rate=0.0)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.05, 0.1, 0.085355, 0.05, 0.014645, 0.0, 0.014645]
    """

    warmup_lr_rate: Any = leaf(default=None)

    _ahead = 1

    def _more_checks(self):
        self._set("warmup_lr_rate", _opt_float(type(self).__name__, "warmup_lr_rate", self.warmup_lr_rate))

    def _warm(self, e, dtype):
        W = self.num_warmup_steps
        if self.warmup_lr_rate is None:
            return (e + 1).astype(dtype) / max(1, W)
        wr = arr(self.warmup_lr_rate, dtype)
        return wr + (1.0 - wr) * (e.astype(dtype) / max(1, W - 1))


_WSD_TYPES = ("linear", "cosine", "1-sqrt")


class WSDSchedule(_Warmup, mirrors="transformers.optimization.get_wsd_schedule"):
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

    Mirrors ``get_wsd_schedule(optimizer, num_warmup_steps, num_decay_steps, num_training_steps=None,
    num_stable_steps=None, warmup_type="linear", decay_type="cosine", min_lr_ratio=0, num_cycles=0.5,
    last_epoch=-1)`` with the optimizer replaced by its LR ``lr``. ``last_epoch`` has no counterpart: ``s(k)`` is
    the LR after ``k`` calls of ``scheduler.step()``, for any ``k``, so a resumed run evaluates ``s`` at the step it
    resumes from.

    Args:
      lr: the LR of the stable phase, >= 0 (a tuple: one per parameter group).
      num_warmup_steps: ``W``, the warm-up's length in steps, a non-negative integer; the warm-up climbs from
        ``m * lr`` at step 0 (0: no warm-up).
      num_decay_steps: ``D``, the decay's length in steps, a non-negative integer (required, as in
        transformers).
      num_training_steps: ``T``, the total number of steps, a non-negative integer (default None). Without
        ``num_stable_steps`` the stable phase lasts ``T - W - D`` steps; when that is negative there is no
        stable phase and the decay is already part-way through when the warm-up ends, as in transformers.
      num_stable_steps: ``S``, the stable phase's length in steps, a non-negative integer (default None:
        ``T - W - D``). Give it or ``num_training_steps`` (ValueError when neither is given).
      warmup_type: the warm-up's shape ``w``: ``"linear"`` (default), ``"cosine"`` or ``"1-sqrt"``.
      decay_type: the decay's shape ``d``: ``"cosine"`` (default), ``"linear"`` or ``"1-sqrt"``.
      min_lr_ratio: ``m``, the floor as a fraction of ``lr``: the warm-up starts there, the decay ends there
        and the LR stays there from step ``W + S + D`` on (default 0.0; transformers' default is the int 0).
      num_cycles: the number of cosine periods over the decay, used with ``decay_type="cosine"`` only
        (default 0.5: a half cosine from ``lr`` down to ``m * lr``).

    >>> from jaxsched.transformers import WSDSchedule
    >>> s = WSDSchedule(0.1, num_warmup_steps=2, num_decay_steps=4, num_training_steps=8, decay_type="1-sqrt")
    >>> [round(float(s(k)), 6) for k in range(9)]
    [0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.029289, 0.013397, 0.0]
    """

    num_decay_steps: int = static()
    num_training_steps: Any = static(default=None)
    num_stable_steps: Any = static(default=None)
    warmup_type: str = static(default="linear")
    decay_type: str = static(default="cosine")
    min_lr_ratio: float = leaf(default=0.0)
    num_cycles: float = leaf(default=0.5)

    def _validate(self):
        n = "WSDSchedule"
        self._set("num_decay_steps", _steps(n, "num_decay_steps", self.num_decay_steps))
        self._set("num_training_steps", _steps(n, "num_training_steps", self.num_training_steps, optional=True))
        self._set("num_stable_steps", _steps(n, "num_stable_steps", self.num_stable_steps, optional=True))
        if self.num_training_steps is None and self.num_stable_steps is None:
            raise ValueError(f"{n}: Either num_training_steps or num_stable_steps must be specified.")
        W, D = self.num_warmup_steps, self.num_decay_steps
        if self.num_stable_steps is None:  # the step arithmetic uses W + S and W + S + D
            check_steps(n, "num_training_steps - num_warmup_steps - num_decay_steps", self.stable_steps,
                        num_training_steps=self.num_training_steps, num_warmup_steps=W, num_decay_steps=D)
        else:
            check_steps(n, "num_warmup_steps + num_stable_steps + num_decay_steps", W + self.num_stable_steps + D,
                        num_warmup_steps=W, num_stable_steps=self.num_stable_steps, num_decay_steps=D)
        if self.warmup_type not in _WSD_TYPES:
            raise ValueError(f"{n}: Unknown warmup type: {self.warmup_type}, expected 'linear', 'cosine' or '1-sqrt'")
        if self.decay_type not in _WSD_TYPES:
            raise ValueError(f"{n}: Unknown decay type: {self.decay_type}, expected 'linear', 'cosine' or '1-sqrt'")
        self._set("min_lr_ratio", check_float(n, "min_lr_ratio", self.min_lr_ratio))
        self._set("num_cycles", check_float(n, "num_cycles", self.num_cycles))
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

    def _get_closed_form_lr(self, e, dtype):
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
