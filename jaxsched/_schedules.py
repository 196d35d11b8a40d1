"""The schedules that scale the optimizer's initial LR: torch.optim.lr_scheduler's closed-form family."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.core  # Tracer: a submodule type checkers see only when imported
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.core import Tracer

from . import _checks as checks
from ._base import LR, Affine, MultiplicativeSchedule, Schedule, leaf, static
from ._checks import check_callable, check_int
from ._numerics import Array, arr, check_loop_step, cos_blend, div, host, int_dtype, int_pow, is_concrete, mod


def _call_groups(fn, e: Array, dtype, groups: int | None) -> Array:
    """Evaluate a user callable (or a tuple of them, one per group) at step ``e`` as ``dtype``."""
    if isinstance(fn, tuple):
        return jnp.stack([jnp.asarray(f(e)).astype(dtype) for f in fn])
    out = jnp.asarray(fn(e)).astype(dtype)
    return out if groups is None else jnp.broadcast_to(out, (groups,))


def _const_in_step(fn) -> bool:
    """True when ``fn(step)`` does not depend on the step (MultiplicativeLR then has a closed form)."""
    for f in fn if isinstance(fn, tuple) else (fn,):
        closed = jax.make_jaxpr(f)(jnp.zeros((), int_dtype()))
        dependent = {id(closed.jaxpr.invars[0])}
        for eqn in closed.jaxpr.eqns:
            if any(id(v) in dependent for v in eqn.invars):
                dependent.update(id(v) for v in eqn.outvars)
        if any(id(v) in dependent for v in closed.jaxpr.outvars):
            return False
    return True


class LambdaLR(Schedule, mirrors="torch.optim.lr_scheduler.LambdaLR"):
    """``lr_e = lr * lr_lambda(e)``: torch.optim.lr_scheduler.LambdaLR.

    ``lr_lambda`` receives the step as a traced integer array and must be written with ``jax.numpy``
    (``jnp.where`` instead of ``if``). A tuple of callables gives one per parameter group.

    Args:
      lr: the optimizer's initial LR (a tuple for several parameter groups).
      lr_lambda: ``e -> factor``, or a tuple of them.

    >>> import jax.numpy as jnp, jaxsched
    >>> s = jaxsched.LambdaLR(0.1, lr_lambda=lambda e: jnp.minimum(1.0, (e + 1) / 4))
    >>> [round(float(s(k)), 6) for k in range(5)]
    [0.025, 0.05, 0.075, 0.1, 0.1]
    """

    lr: LR = leaf(check=checks.lr)
    lr_lambda: Any = static()

    def _validate(self):
        groups = self.num_groups
        if isinstance(self.lr_lambda, (list, tuple)) and groups is None:
            groups = len(self.lr_lambda)
            self._set("lr", (self.lr,) * groups)
        self._set("lr_lambda", check_callable("LambdaLR", "lr_lambda", self.lr_lambda, groups))

    def _get_closed_form_lr(self, e, dtype):
        return arr(self.lr, dtype) * _call_groups(self.lr_lambda, e, dtype, self.num_groups)


class MultiplicativeLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.MultiplicativeLR"):
    """``lr_e = lr * prod_{j=1..e} lr_lambda(j)``: torch.optim.lr_scheduler.MultiplicativeLR.

    torch multiplies the current LR by ``lr_lambda(e)`` at every step and never evaluates ``lr_lambda(0)``.
    When ``lr_lambda`` does not depend on the step, ``s(e)`` is the closed form ``lr * f ** e``. Otherwise
    ``s(e)`` must multiply ``e`` factors: it runs a loop of ``e`` iterations per call, which is fine for
    plots and checks but not inside a training step; use :class:`jaxsched.Running` there (O(1) per step).

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      lr_lambda: the factor applied at step ``e`` (``e >= 1``), written with ``jax.numpy``.

    >>> import jaxsched
    >>> s = jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.9)
    >>> [round(float(s(k)), 6) for k in range(4)]
    [0.1, 0.09, 0.081, 0.0729]
    """

    lr: LR = leaf(check=checks.lr)
    lr_lambda: Any = static()

    _uses_prev = True

    def _validate(self):
        groups = self.num_groups
        if isinstance(self.lr_lambda, (list, tuple)) and groups is None:
            groups = len(self.lr_lambda)
            self._set("lr", (self.lr,) * groups)
        self._set("lr_lambda", check_callable("MultiplicativeLR", "lr_lambda", self.lr_lambda, groups))

    @functools.cached_property
    def step_independent(self) -> bool:
        """Whether ``lr_lambda`` ignores the step (then ``s(e)`` is O(1))."""
        return _const_in_step(self.lr_lambda)

    @property
    def _loops(self):
        return None if self.step_independent else "lr_lambda depends on the step: s(e) multiplies e factors"

    def _check_step(self, step):
        why = self._loops
        if why is not None:
            check_loop_step("MultiplicativeLR", step, why)

    def _f(self, e, dtype):
        return _call_groups(self.lr_lambda, e, dtype, self.num_groups)

    @functools.cached_property
    def _constant(self):
        """The step-independent factor(s) as Python floats, evaluated in float64 (None if not concrete).

        ``f ** e`` is then ``exp(e * log f)`` with ``log f`` taken in float64 (as ExponentialLR does): rounding
        ``f`` to float32 first would cost ``e * 6e-8 / |log f|`` of the LR (1e-6 after 73 steps for f=0.99999).
        """
        fns = self.lr_lambda if isinstance(self.lr_lambda, tuple) else (self.lr_lambda,)
        try:
            with jax.ensure_compile_time_eval(), jax.enable_x64(True):
                vals = tuple(float(np.asarray(f(jnp.ones((), jnp.int64)), np.float64)) for f in fns)
        except jax.errors.JAXTypeError:  # the lambda closes over a traced value: no host constant
            return None
        return vals if isinstance(self.lr_lambda, tuple) else vals[0]

    def _product(self, j, dtype):
        """``prod_{i=1..j} f(i)``."""
        if self.step_independent:
            if self._constant is not None:
                return int_pow(self._constant, j, dtype)
            f = self._f(jnp.ones((), int_dtype()), dtype)
            return _float_pow(f, j, dtype)
        one = jnp.ones_like(self._f(jnp.ones((), int_dtype()), dtype))
        return lax.fori_loop(
            jnp.ones((), j.dtype), j + 1, lambda i, p: p * self._f(i, dtype), one
        )

    def _factor(self, e, dtype):
        return self._product(e, dtype)

    def _get_closed_form_lr(self, e, dtype):
        return arr(self.lr, dtype) * self._product(e, dtype)

    def _get_initial_lr(self, dtype):
        return Affine(1.0, 0.0)

    def _get_lr(self, e, dtype):
        return Affine(self._f(e, dtype), 0.0)

    def _restart(self, prev, j, dtype):
        # At a SequentialLR milestone torch has no closed form for MultiplicativeLR: it applies f(0) to the
        # LR the optimizer holds, then keeps multiplying.
        assert prev is not None  # _uses_prev: SequentialLR passes the LR held before the milestone
        return prev * self._f(jnp.zeros((), int_dtype()), dtype) * self._product(j, dtype)

    def _restart_affine(self, dtype):
        return Affine(self._f(jnp.zeros((), int_dtype()), dtype), 0.0)


def _float_pow(x: Array, k: Array, dtype) -> Array:
    """``x ** k`` for a float array ``x`` and an integer ``k >= 0`` (0 ** 0 == 1, NaN-free)."""
    kf = k.astype(dtype)
    mag = jnp.exp(kf * jnp.log(jnp.where(x == 0, 1.0, jnp.abs(x))))
    mag = jnp.where((x == 0) & (k > 0), 0.0, mag)
    return jnp.where((x < 0) & (k % 2 == 1), -mag, mag)


class StepLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.StepLR"):
    """``lr_e = lr * gamma ** (e // step_size)``: torch.optim.lr_scheduler.StepLR.

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      step_size: steps between two decays (a positive integer).
      gamma: the decay factor. Default 0.1.

    >>> import jaxsched
    >>> s = jaxsched.StepLR(0.1, step_size=3, gamma=0.5)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    """

    lr: LR = leaf(check=checks.lr)
    step_size: int = static(check=checks.integer(
        1, "a positive integer (torch raises ZeroDivisionError on the first step for 0)"))
    gamma: float = leaf(default=0.1, check=checks.real)

    def _factor(self, e, dtype):
        return int_pow(self.gamma, div(e, self.step_size), dtype)


    def _get_initial_lr(self, dtype):
        return Affine(1.0, 0.0)

    def _get_lr(self, e, dtype):
        decay = mod(e, self.step_size) == 0
        return Affine(jnp.where(decay, arr(self.gamma, dtype), jnp.ones((), dtype)), 0.0)


class MultiStepLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.MultiStepLR"):
    """``lr_e = lr * gamma ** #{m in milestones : m <= e}``: torch.optim.lr_scheduler.MultiStepLR.

    Milestones may repeat (torch counts them: a milestone listed twice decays by ``gamma ** 2``) and need
    not be sorted; a milestone 0 applies at construction.

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      milestones: the steps at which the LR decays (non-negative integers; repeats decay repeatedly).
      gamma: the decay factor. Default 0.1.

    >>> import jaxsched
    >>> s = jaxsched.MultiStepLR(0.1, milestones=[2, 4], gamma=0.1)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    """

    lr: LR = leaf(check=checks.lr)
    milestones: Sequence[int] = static()
    gamma: float = leaf(default=0.1, check=checks.real)

    def _validate(self):
        ms = self.milestones
        if isinstance(ms, (int, float)) or not hasattr(ms, "__iter__"):
            raise TypeError(f"MultiStepLR: milestones must be a list of integers, got milestones={ms!r}.")
        ms = tuple(check_int("MultiStepLR", f"milestones[{i}]", m, minimum=0,
                             rule=">= 0 (steps are counted from 0)") for i, m in enumerate(ms))
        self._set("milestones", ms)

    def _count(self, e):
        if not self.milestones:
            return jnp.zeros_like(e)
        ms = jnp.asarray(sorted(self.milestones), int_dtype())
        return jnp.sum(ms <= e[..., None], axis=-1, dtype=e.dtype)

    def _factor(self, e, dtype):
        ms = sorted(self.milestones)
        if not is_concrete(self.gamma) or len(ms) > 32:
            return int_pow(self.gamma, self._count(e), dtype)
        # Piecewise constant: a chain of selects between gamma ** k, each computed once on the host in float64
        # (torch's closed form), instead of a count and an exp per step.
        out = jnp.ones(e.shape, dtype)
        for k, m in enumerate(ms, start=1):
            out = jnp.where(e >= m, jnp.asarray(np.float64(self.gamma) ** k, dtype), out)
        return out


    def _get_initial_lr(self, dtype):
        return Affine(self._factor(jnp.zeros((), int_dtype()), dtype), 0.0)

    def _get_lr(self, e, dtype):
        if not self.milestones:
            return Affine(1.0, 0.0)
        ms = jnp.asarray(self.milestones, int_dtype())
        hits = jnp.sum(ms == e, dtype=e.dtype)
        return Affine(int_pow(self.gamma, hits, dtype), 0.0)


class ConstantLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.ConstantLR"):
    """``lr * factor`` for ``e < total_iters``, then ``lr``: torch.optim.lr_scheduler.ConstantLR.

    With ``total_iters=0`` torch's ``step()`` applies ``factor`` at construction and never restores it.

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      factor: the factor applied before ``total_iters``. Default 1/3.
      total_iters: the number of steps the factor applies. Default 5.

    >>> import jaxsched
    >>> s = jaxsched.ConstantLR(0.1, factor=0.5, total_iters=2)
    >>> [round(float(s(k)), 6) for k in range(4)]
    [0.05, 0.05, 0.1, 0.1]
    """

    lr: LR = leaf(check=checks.lr)
    factor: float = leaf(default=1.0 / 3, check=checks.real)
    total_iters: int = static(default=5, check=checks.integer(0))

    def _validate(self):
        f = self.factor
        if not isinstance(f, Tracer) and (f > 1.0 or f < 0):
            raise ValueError(
                f"ConstantLR: factor must be between 0 and 1 (Constant multiplicative factor expected to be "
                f"between 0 and 1), got factor={f!r}."
            )
        t = self.total_iters
        if not isinstance(f, Tracer) and f == 0 and t > 0:
            raise ValueError(
                f"ConstantLR: factor=0.0 with total_iters={t} makes torch divide by zero when it restores the "
                f"LR at step {t} (ZeroDivisionError); use a factor > 0."
            )

    def _factor(self, e, dtype):
        f = arr(self.factor, dtype)
        if self.total_iters == 0:
            return f * jnp.ones_like(e, dtype=dtype)
        return jnp.where(e < self.total_iters, f, jnp.ones((), dtype))


    def _get_initial_lr(self, dtype):
        return Affine(arr(self.factor, dtype), 0.0)

    def _get_lr(self, e, dtype):
        if self.total_iters == 0:
            return Affine(1.0, 0.0)
        restore = host(lambda f: 1.0 / f, lambda f: 1.0 / f, self.factor, dtype=dtype)
        return Affine(jnp.where(e == self.total_iters, restore, jnp.ones((), dtype)), 0.0)

    def _restart(self, prev, j, dtype):
        if self.total_iters == 0:  # torch's closed form at a milestone gives lr, and nothing changes after
            return arr(self.lr, dtype) * jnp.ones_like(j, dtype=dtype)
        return self._get_closed_form_lr(j, dtype)


class LinearLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.LinearLR"):
    """``lr * (start_factor + (end_factor - start_factor) * min(e, total_iters) / total_iters)``.

    torch.optim.lr_scheduler.LinearLR. With ``total_iters=0`` torch stays at ``lr * start_factor``.

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      start_factor: the factor at step 0. Default 1/3.
      end_factor: the factor from ``total_iters`` on. Default 1.0.
      total_iters: the length of the ramp in steps. Default 5.

    >>> import jaxsched
    >>> s = jaxsched.LinearLR(0.1, start_factor=0.25, end_factor=1.0, total_iters=4)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1]
    """

    lr: LR = leaf(check=checks.lr)
    start_factor: float = leaf(default=1.0 / 3, check=checks.real)
    end_factor: float = leaf(default=1.0, check=checks.real)
    total_iters: int = static(default=5, check=checks.integer(0))

    def _validate(self):
        sf = self.start_factor
        if not isinstance(sf, Tracer) and (sf > 1.0 or sf <= 0):
            raise ValueError(
                "LinearLR: start_factor must be greater than 0 and less or equal to 1 (Starting multiplicative "
                f"factor expected to be greater than 0 and less or equal to 1), got start_factor={sf!r}."
            )
        ef = self.end_factor
        if not isinstance(ef, Tracer) and (ef > 1.0 or ef < 0):
            raise ValueError(
                "LinearLR: end_factor must be between 0 and 1 (Ending multiplicative factor expected to be "
                f"between 0 and 1), got end_factor={ef!r}."
            )

    def _factor(self, e, dtype):
        sf, ef = arr(self.start_factor, dtype), arr(self.end_factor, dtype)
        if self.total_iters == 0:
            return sf * jnp.ones_like(e, dtype=dtype)
        frac = jnp.minimum(e, self.total_iters).astype(dtype) / self.total_iters
        return sf + (ef - sf) * frac


    def _get_initial_lr(self, dtype):
        return Affine(arr(self.start_factor, dtype), 0.0)

    def _get_lr(self, e, dtype):
        if self.total_iters == 0:
            return Affine(1.0, 0.0)
        sf, ef = arr(self.start_factor, dtype), arr(self.end_factor, dtype)
        d = ef - sf
        denom = self.total_iters * sf + (e - 1).astype(dtype) * d
        ratio = 1.0 + d / jnp.where(denom == 0, 1.0, denom)
        return Affine(jnp.where(e > self.total_iters, jnp.ones((), dtype), ratio), 0.0)

    def _check_in_composite(self, owner, index):
        if self.total_iters == 0 and owner == "SequentialLR" and index > 0:
            raise ValueError(
                f"SequentialLR: schedulers[{index}]=LinearLR(total_iters=0) cannot follow a milestone: torch "
                f"restarts it with its closed form, which divides by total_iters (ZeroDivisionError)."
            )


class ExponentialLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.ExponentialLR"):
    """``lr_e = lr * gamma ** e``: torch.optim.lr_scheduler.ExponentialLR.

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      gamma: the factor applied at every step.

    >>> import jaxsched
    >>> s = jaxsched.ExponentialLR(0.1, gamma=0.9)
    >>> [round(float(s(k)), 6) for k in range(4)]
    [0.1, 0.09, 0.081, 0.0729]
    """

    lr: LR = leaf(check=checks.lr)
    gamma: float = leaf(check=checks.real)

    def _factor(self, e, dtype):
        return int_pow(self.gamma, e, dtype)


    def _get_initial_lr(self, dtype):
        return Affine(1.0, 0.0)

    def _get_lr(self, e, dtype):
        return Affine(arr(self.gamma, dtype), 0.0)


class PolynomialLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.PolynomialLR"):
    """``lr_e = lr * (1 - min(e, total_iters) / total_iters) ** power``: torch's PolynomialLR.

    Exactly 0 from ``total_iters`` on (``power > 0``); never NaN under jit (optax's polynomial_schedule is).

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      total_iters: the step at which the LR reaches 0. Default 5.
      power: the exponent of the decay. Default 1.0.

    >>> import jaxsched
    >>> s = jaxsched.PolynomialLR(0.1, total_iters=4, power=1.0)
    >>> [round(float(s(k)), 6) for k in range(6)]
    [0.1, 0.075, 0.05, 0.025, 0.0, 0.0]
    """

    lr: LR = leaf(check=checks.lr)
    total_iters: int = static(default=5, check=checks.integer(0))
    power: float = leaf(default=1.0, check=checks.real)

    def _validate(self):
        p = self.power
        if not isinstance(p, Tracer) and p < 0 and self.total_iters > 0:
            raise ValueError(
                f"PolynomialLR: power must be >= 0 (torch raises ZeroDivisionError at step total_iters="
                f"{self.total_iters}, where it computes 0.0 ** power), got power={p!r}."
            )

    def _factor(self, e, dtype):
        if self.total_iters == 0:
            return jnp.ones_like(e, dtype=dtype)
        left = (self.total_iters - jnp.minimum(e, self.total_iters)).astype(dtype) / self.total_iters
        p = arr(self.power, dtype)
        # 0 ** p: 0 for p > 0, 1 for p == 0 (as in Python); never log(0) * 0.
        safe = jnp.where(left == 0, 1.0, left)
        out = safe ** p  # XLA turns a constant integer power into multiplications (no exp/log per step)
        # decide p == 0 on the exact value when it is concrete: a tiny power (1e-56) rounds to 0 in float32
        zero_power = (self.power == 0.0) if is_concrete(self.power) else (p == 0)
        return jnp.where(left == 0, jnp.where(zero_power, 1.0, 0.0), out)


    def _get_initial_lr(self, dtype):
        return Affine(1.0, 0.0)

    def _get_lr(self, e, dtype):
        if self.total_iters == 0:
            return Affine(1.0, 0.0)
        num = self._factor(e, dtype)
        den = self._factor(e - 1, dtype)
        ratio = jnp.where(den == 0, jnp.where(num == 0, 0.0, 1.0), num / jnp.where(den == 0, 1.0, den))
        return Affine(jnp.where(e > self.total_iters, jnp.ones((), dtype), ratio), 0.0)

    def _check_in_composite(self, owner, index):
        if self.total_iters == 0 and owner == "SequentialLR" and index > 0:
            raise ValueError(
                f"SequentialLR: schedulers[{index}]=PolynomialLR(total_iters=0) cannot follow a milestone: "
                f"torch restarts it with its closed form, which divides by total_iters (ZeroDivisionError)."
            )


def _half_cos(e: Array, T: int, dtype) -> Array:
    """``cos(pi * e / (2 T))`` for integer ``e``, accurate to a few ulp *relative* to its value.

    ``(1 + cos(pi e / T)) / 2 == cos(pi e / (2 T)) ** 2`` avoids the cancellation of ``1 + cos`` near the
    minimum. Reducing ``e`` modulo ``2 T`` in integers and writing the cosine as ``sin(pi (T - r) / (2 T))``
    keeps the argument small where the value is small, so float32 stays accurate near ``eta_min`` too
    (the recursion of ChainedScheduler divides by these values).
    """
    r = mod(e, 2 * T)
    return jnp.sin(jnp.pi * (T - r).astype(dtype) / (2 * T))


class CosineAnnealingLR(Schedule, mirrors="torch.optim.lr_scheduler.CosineAnnealingLR"):
    """``eta_min + (lr - eta_min) * (1 + cos(pi * e / T_max)) / 2``: torch's CosineAnnealingLR.

    Not clamped: past ``T_max`` the LR climbs back and reaches ``lr`` again at ``2 * T_max`` (torch is
    periodic; optax's cosine_decay_schedule clamps).

    Args:
      lr: the initial learning rate; a tuple for several parameter groups.
      T_max: the half-period in steps (a positive integer).
      eta_min: the minimum LR. Default 0.0.

    >>> import jaxsched
    >>> s = jaxsched.CosineAnnealingLR(0.1, T_max=3)
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.1, 0.075, 0.025, 0.0, 0.025, 0.075, 0.1, 0.075]
    """

    lr: LR = leaf(check=checks.lr)
    T_max: int = static(check=checks.integer(
        1, "a positive integer (torch raises ZeroDivisionError on the first step for 0)"))
    eta_min: float = leaf(default=0.0, check=checks.real)

    def _get_closed_form_lr(self, e, dtype):
        b, eta = arr(self.lr, dtype), arr(self.eta_min, dtype)
        T = self.T_max
        r = mod(e, 2 * T)  # cos(pi r / T) is symmetric about T: m = min(r, 2T - r) in [0, T]
        return cos_blend(b, eta, jnp.minimum(r, 2 * T - r), T, dtype)

    def _get_initial_lr(self, dtype):
        return Affine(1.0, 0.0)

    def _get_lr(self, e, dtype):
        T = self.T_max
        b, eta = arr(self.lr, dtype), arr(self.eta_min, dtype)
        rp = mod(e - 1, 2 * T)
        num = _half_cos(e, T, dtype) ** 2
        den = _half_cos(e - 1, T, dtype) ** 2
        ratio = num / jnp.where(den == 0, 1.0, den)
        additive = rp == T  # torch's `(e - 1 - T) % (2 T) == 0` branch adds (b - eta) (1 - cos(pi / T)) / 2
        bump = (b - eta) * jnp.sin(jnp.pi / (2 * T)) ** 2
        A = jnp.where(additive, jnp.ones((), dtype), ratio)
        C = jnp.where(additive, bump, eta * (1.0 - ratio))
        return Affine(A, C)
