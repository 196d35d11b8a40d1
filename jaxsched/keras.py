"""Keras 3's learning-rate schedules as jaxsched schedules, and any jaxsched schedule as a Keras schedule.

``jaxsched.keras.<Name>(...)`` takes the arguments of ``keras.optimizers.schedules.<Name>`` (same names, same
defaults, ``name`` included); ``s(t)`` is what Keras' ``schedule(t)`` returns, in float32 and with x64 (checked
against live Keras 3.15 on the JAX backend to 1e-6 / 1e-10 of the largest LR by ``tests/parity/test_keras_parity.py``).
They are jaxsched values: jittable, vmappable over their float hyperparameters, hashable, with a JSON config
(registry names ``"keras.<Name>"``), and optax schedules as they stand.

=========================  ===========================================================================
class                      value at step ``t``
=========================  ===========================================================================
:class:`ExponentialDecay`  ``lr0 * rate ** (t / T)`` (``floor(t / T)`` with ``staircase``)
:class:`PiecewiseConstantDecay`  ``values[j]`` for ``boundaries[j-1] < t <= boundaries[j]``
:class:`PolynomialDecay`   ``(lr0 - end) * (1 - min(t, T) / T) ** power + end`` (or cycling)
:class:`InverseTimeDecay`  ``lr0 / (1 + rate * t / T)``
:class:`CosineDecay`       linear warm-up, then a cosine that stays at ``alpha`` after ``T`` steps
:class:`CosineDecayRestarts`  SGDR: cosine cycles of length ``T * t_mul ** i``, heights ``m_mul ** i``
=========================  ===========================================================================

Where Keras and torch differ: Keras' ``CosineDecay`` holds its floor after ``decay_steps`` where torch's
``CosineAnnealingLR`` rises again (it is periodic); Keras' ``PolynomialDecay`` ends at ``end_learning_rate``
(default ``1e-4``, not 0); ``CosineDecayRestarts`` allows a fractional ``t_mul`` and an ``m_mul`` that torch's
``CosineAnnealingWarmRestarts`` has no counterpart for.

Restrictions (documented refusals, not gaps): step counts (``decay_steps``, ``first_decay_steps``) are positive
integers and ``boundaries`` integers, as Keras documents them; ``decay_rate`` is >= 0 (a negative rate gives NaN
or a division by zero in Keras); ``t_mul`` is >= 1 (below 1 the cycles shrink to a finite total after which Keras
returns NaN). ``CosineDecayRestarts`` places each step in its cycle exactly, where Keras' float64
``floor(log(...) / log(t_mul))`` can fall one cycle short exactly at a restart (``t_mul=3``, step
``121 * first_decay_steps``: Keras gives ``alpha``, the bottom of the previous cycle; jaxsched the top of the new
one); see :mod:`jaxsched._cycles`.

In Keras, the classes drop in for Keras' own: ``keras.optimizers.SGD(learning_rate=jaxsched.keras.CosineDecay(0.1,
100))`` steps with the LR Keras' ``CosineDecay`` gives, in ``model.fit`` too, and a model saved to a ``.keras``
file loads back with its schedule (registered with Keras as ``"jaxsched>keras.<Name>"``). Importing jaxsched never
imports Keras: once Keras is imported, the classes become subclasses of Keras' ``LearningRateSchedule`` (see
:func:`register_with_keras`). Tested on Keras' JAX backend (``tests/integrations/test_keras_dropin.py``) and, for an
optimizer step, on the torch backend (the LR is computed in JAX on the host and handed to Keras as a torch
tensor); TensorFlow's graph mode cannot call JAX, so with that backend a schedule fails inside ``tf.function``.

:func:`as_keras` goes the other way: any jaxsched schedule as a ``keras.optimizers.schedules.LearningRateSchedule``
(``keras.optimizers.SGD(learning_rate=jaxsched.keras.as_keras(s))``), serialisable with Keras.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from . import _checks as checks
from ._base import Schedule, StatefulSchedule
from ._cycles import check_cycles, cos_half, cycle, power_of
from ._numerics import Array, arr, div, int_pow, is_concrete, mod
from ._value import from_config, leaf, static

__all__ = ["CLASSES", "CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "PolynomialDecay", "as_keras", "register_with_keras"]


# ----------------------------------------------------------------------------------------------------------
# field checks


def _nonneg(cls: str, name: str, value):
    value = checks.check_float(cls, name, value)
    if is_concrete(value) and value < 0:
        raise ValueError(f"{cls}: {name} must be >= 0, got {name}={value!r}.")
    return value


def _steps(cls: str, name: str, value) -> int:
    """A positive number of steps (Keras: ``Argument `decay_steps` must be > 0``)."""
    return checks.check_int(cls, name, value, minimum=1, rule="> 0 (a positive integer)")


def _name(cls: str, name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{cls}: {name} must be a string, got {name}={value!r}.")
    return value


def _opt_float(cls: str, name: str, value):
    return None if value is None else checks.check_float(cls, name, value)


def _t_mul(cls: str, name: str, value) -> float:
    value = checks.check_float(cls, name, value)
    if value < 1.0:
        raise ValueError(
            f"{cls}: {name} must be >= 1, got {name}={value!r}: with t_mul < 1 the cycles shrink to a finite total "
            f"length after which Keras returns NaN."
        )
    return value


# ----------------------------------------------------------------------------------------------------------
# the classes as Keras LearningRateSchedules, without jaxsched importing Keras
#
# Keras hands an optimizer's iteration count to a learning-rate object only when it is an instance of
# ``keras.optimizers.schedules.LearningRateSchedule``; any other callable is called with no argument. So that
# ``jaxsched.keras.CosineDecay`` drops in where Keras' class does, every class here derives (last in its bases)
# from :class:`_LearningRateSchedule`, a plain class until Keras is imported, whose base then becomes Keras'
# ``LearningRateSchedule`` (:func:`register_with_keras`). jaxsched never imports Keras itself: importing Keras
# picks its backend from the environment, so an import from here could pick the wrong one, or fail (the default
# backend is TensorFlow). Keras' base adds no state and no method that the classes do not define themselves
# (``__call__``, ``get_config``, ``from_config``), so the swap changes ``isinstance`` and nothing else: the
# classes stay the same objects, equal, hashable pytrees with the same registry names.


class _Unbound:
    """The base of :class:`_LearningRateSchedule` until Keras is imported (CPython swaps only between two plain
    classes, not away from ``object``)."""


class _LearningRateSchedule(_Unbound):
    """Keras' ``LearningRateSchedule`` once :func:`register_with_keras` has run; an empty class before."""


_NO_STEP: Any = object()
_BOUND = False


def register_with_keras() -> dict[str, type]:
    """Make the ``jaxsched.keras`` classes Keras ``LearningRateSchedule`` subclasses and register them for
    Keras' loading; returns ``{registered name: class}`` (usable as ``custom_objects=``).

    It runs by itself: when ``jaxsched.keras`` is imported after Keras, when Keras is imported after jaxsched (a
    one-shot import hook, for Keras installed as a plain package), and whenever a ``jaxsched.keras`` schedule is
    built in a process that has imported Keras. So ``keras.optimizers.SGD(learning_rate=CosineDecay(0.1, 100))``
    and ``keras.models.load_model(path)`` need nothing more. Call it yourself only where the hook cannot apply
    (Keras loaded from a zip or by a custom importer) before loading a saved model. It never imports Keras: it
    raises when Keras is not imported.
    """
    global _BOUND
    keras = sys.modules.get("keras")
    base = getattr(getattr(getattr(keras, "optimizers", None), "schedules", None), "LearningRateSchedule", None)
    if keras is None or base is None:
        raise RuntimeError("register_with_keras: Keras is not imported; run `import keras` first (jaxsched never "
                           "imports Keras: Keras picks its backend when first imported).")
    if not _BOUND:
        _LearningRateSchedule.__bases__ = (base,)
        for cls in CLASSES.values():
            keras.saving.register_keras_serializable(package="jaxsched", name=cls._name)(cls)
        _BOUND = True
    return {keras.saving.get_registered_name(cls): cls for cls in CLASSES.values()}


def _bind_if_keras_is_imported() -> None:
    if not _BOUND and hasattr(sys.modules.get("keras"), "optimizers"):
        register_with_keras()


class _KerasEntryPoints:
    """What Keras calls on a ``LearningRateSchedule``: ``schedule(iterations)``, ``get_config()``,
    ``from_config(config)``; and the binding to Keras, checked at construction."""

    def __post_init__(self) -> None:
        _bind_if_keras_is_imported()
        super().__post_init__()  # type: ignore[misc]

    def __call__(self, step: Any = _NO_STEP) -> Array:
        name = type(self).__name__
        if step is _NO_STEP:
            raise TypeError(
                f"{name}: called without a step. Keras calls a learning rate with the step only when it is a "
                f"keras.optimizers.schedules.LearningRateSchedule, which a jaxsched.keras schedule becomes once "
                f"jaxsched has seen Keras imported; here it had not (Keras not a plain package, and the schedule "
                f"built before `import keras`): call jaxsched.keras.register_with_keras() after `import keras`."
            )
        keras = sys.modules.get("keras")
        if keras is not None and isinstance(step, keras.Variable):  # the optimizer's iteration count
            if keras.backend.backend() == "jax":  # traced inside Keras' jitted train step
                return super().__call__(jnp.asarray(keras.ops.convert_to_tensor(step)))  # type: ignore[misc]
            # another backend (eager): compute in JAX on the host, hand Keras a tensor of its own backend
            lr = super().__call__(np.asarray(keras.ops.convert_to_numpy(step)))  # type: ignore[misc]
            return keras.ops.convert_to_tensor(np.asarray(lr))
        return super().__call__(step)  # type: ignore[misc]

    def get_config(self) -> dict:
        """Keras' config: the constructor's keyword arguments (as Keras' own class gives them)."""
        config: dict = self.to_config()["args"]  # type: ignore[attr-defined]
        return config

    @classmethod
    def from_config(cls, config: dict) -> Any:
        """The schedule from :meth:`get_config` output (what Keras calls when it loads a saved optimizer)."""
        return cls(**config)


class _KerasSchedule(_KerasEntryPoints, Schedule, _LearningRateSchedule):
    """Base of the Keras schedules: keyword arguments in the repr, no parameter groups."""

    _positional = None

    @property
    def num_groups(self) -> int | None:
        return None


class _FromInitial(_KerasSchedule):
    """The schedules that start from ``initial_learning_rate``, Keras' first argument (all but the piecewise one)."""

    initial_learning_rate: float = leaf(check=checks.real)

    @property
    def _base(self):
        return self.initial_learning_rate


class _Decay(_FromInitial):
    """The schedules whose second argument is ``decay_steps``."""

    decay_steps: int = static(check=_steps)


def _progress(e: Array, T: int, dtype, staircase: bool) -> Array:
    """``t / T`` (or ``floor(t / T)``) for an integer step and step count, exact in its integer part."""
    q = div(e, T).astype(dtype)
    if staircase:
        return q
    return q + mod(e, T).astype(dtype) / T


# ----------------------------------------------------------------------------------------------------------
# the six schedules


class ExponentialDecay(_Decay, name="keras.ExponentialDecay",
                       mirrors="keras.optimizers.schedules.ExponentialDecay"):
    """``initial_learning_rate * decay_rate ** (t / decay_steps)``: Keras' ``ExponentialDecay``.

    With ``staircase=True`` the exponent is ``floor(t / decay_steps)``. torch's ``ExponentialLR(lr, gamma)`` is
    ``decay_steps=1`` with ``decay_rate=gamma``.

    Args:
      initial_learning_rate: the LR at step 0.
      decay_steps: a positive integer: the steps over which the LR is multiplied by ``decay_rate``.
      decay_rate: the factor per ``decay_steps`` (>= 0).
      staircase: decay in whole multiples of ``decay_steps`` (default False).
      name: Keras' name scope (default ``"ExponentialDecay"``); no effect on the values.

    >>> from jaxsched.keras import ExponentialDecay
    >>> s = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    >>> [round(float(s(t)), 6) for t in range(5)]
    [0.1, 0.070711, 0.05, 0.035355, 0.025]
    """

    decay_rate: float = leaf(check=_nonneg)
    staircase: bool = static(default=False, check=checks.boolean)
    name: str = static(default="ExponentialDecay", check=_name)

    def _get_closed_form_lr(self, e, dtype):
        p = _progress(e, self.decay_steps, dtype, self.staircase)
        lr = arr(self.initial_learning_rate, dtype)
        rate = self.decay_rate
        if is_concrete(rate) and rate > 0:
            return lr * jnp.exp(p * jnp.asarray(np.log(np.float64(rate)), dtype))
        if self.staircase:
            return lr * int_pow(rate, div(e, self.decay_steps), dtype)
        return lr * jnp.power(arr(rate, dtype), p)


class PiecewiseConstantDecay(_KerasSchedule, name="keras.PiecewiseConstantDecay",
                             mirrors="keras.optimizers.schedules.PiecewiseConstantDecay"):
    """``values[0]`` up to ``boundaries[0]`` (inclusive), ``values[j]`` up to ``boundaries[j]``, then
    ``values[-1]``: Keras' ``PiecewiseConstantDecay``.

    torch's ``MultiStepLR`` holds the new LR *from* a milestone; Keras switches one step later (``t >
    boundary``), and its values need not be geometric.

    Args:
      boundaries: increasing integer steps (one fewer than ``values``).
      values: the LR on each interval (floats: pytree leaves).
      name: Keras' name scope (default ``"PiecewiseConstant"``).

    >>> from jaxsched.keras import PiecewiseConstantDecay
    >>> s = PiecewiseConstantDecay(boundaries=[2, 4], values=[1.0, 0.5, 0.1])
    >>> [round(float(s(t)), 6) for t in range(6)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.1]
    """

    boundaries: Sequence[int] = static(check=lambda c, n, v: _int_tuple(c, n, v))
    values: Sequence[float] = leaf(check=lambda c, n, v: _float_tuple(c, n, v))
    name: str = static(default="PiecewiseConstant", check=_name)

    def _validate(self) -> None:
        n = type(self).__name__
        if len(self.boundaries) != len(self.values) - 1:
            raise ValueError(
                f"{n}: The length of boundaries should be 1 less than the length of values, got "
                f"boundaries={list(self.boundaries)!r} of length {len(self.boundaries)} and "
                f"values={list(self.values)!r} of length {len(self.values)}."
            )
        if any(b > a for a, b in zip(self.boundaries[1:], self.boundaries[:-1])):
            raise ValueError(f"{n}: boundaries must be non-decreasing, got boundaries={list(self.boundaries)!r}.")

    @property
    def _base(self):
        return self.values[0]

    def _get_closed_form_lr(self, e, dtype):
        # Keras: values[0] while t <= b[0], values[j] while b[j-1] < t <= b[j]; one select per boundary
        out = jnp.broadcast_to(arr(self.values[0], dtype), e.shape)
        for b, v in zip(self.boundaries, self.values[1:]):
            out = jnp.where(e > b, arr(v, dtype), out)
        return out


def _int_tuple(cls: str, name: str, value) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise TypeError(f"{cls}: {name} must be a non-empty list of integers, got {name}={value!r}.")
    return tuple(checks.check_int(cls, f"{name}[{i}]", v) for i, v in enumerate(value))


def _float_tuple(cls: str, name: str, value) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) < 1:
        raise TypeError(f"{cls}: {name} must be a non-empty list of floats, got {name}={value!r}.")
    return tuple(checks.check_float(cls, f"{name}[{i}]", v) for i, v in enumerate(value))


class PolynomialDecay(_Decay, name="keras.PolynomialDecay",
                      mirrors="keras.optimizers.schedules.PolynomialDecay"):
    """``(initial_learning_rate - end_learning_rate) * (1 - t' / T) ** power + end_learning_rate``: Keras'
    ``PolynomialDecay``.

    ``t' = min(t, T)`` (the LR stays at ``end_learning_rate`` after ``T = decay_steps``); with ``cycle=True``,
    ``T`` becomes ``decay_steps * ceil(t / decay_steps)`` (``decay_steps`` at ``t = 0``) and ``t' = t``, so the
    LR jumps back up after each multiple of ``decay_steps``. torch's ``PolynomialLR`` is
    ``end_learning_rate=0`` and ``cycle=False``.

    A positive ``power`` too small for float32 (below ``1.4e-45``, which float32 holds as 0) still gives
    ``0 ** power = 0`` at the end of each decay, as Keras does in float64 (not ``0 ** 0 = 1``).

    Args:
      initial_learning_rate: the LR at step 0.
      decay_steps: a positive integer.
      end_learning_rate: the final LR (default 1e-4).
      power: the exponent (default 1.0, linear).
      cycle: restart the decay after ``decay_steps`` (default False).
      name: Keras' name scope (default ``"PolynomialDecay"``).

    >>> from jaxsched.keras import PolynomialDecay
    >>> s = PolynomialDecay(1.0, decay_steps=4, end_learning_rate=0.0, power=2.0, cycle=True)
    >>> [round(float(s(t)), 6) for t in range(7)]
    [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.140625, 0.0625]
    """

    end_learning_rate: float = leaf(default=0.0001, check=checks.real)
    power: float = leaf(default=1.0, check=checks.real)
    cycle: bool = static(default=False, check=checks.boolean)
    name: str = static(default="PolynomialDecay", check=_name)

    def _get_closed_form_lr(self, e, dtype):
        T = self.decay_steps
        if self.cycle:
            # ceil(t / T) (1 at t = 0) and mult * T - t from the quotient and remainder: t + T - 1 and mult * T
            # would wrap around past the largest step
            k, r = div(e, T), mod(e, T)
            mult = jnp.maximum(k + (r > 0).astype(e.dtype), 1)
            gap = jnp.where(r > 0, T - r, jnp.where(e == 0, T, 0))
            left = gap.astype(dtype) / (mult.astype(dtype) * T)
        else:
            left = (T - jnp.minimum(e, T)).astype(dtype) / T
        lr0, end = arr(self.initial_learning_rate, dtype), arr(self.end_learning_rate, dtype)
        if is_concrete(self.power) and self.power == 1.0:
            frac = left
        else:
            frac = jnp.power(left, arr(self.power, dtype))
            if is_concrete(self.power) and self.power > 0:
                # 0 ** power = 0, decided on the host: float32 holds a power below 1.4e-45 as 0 (0 ** 0 = 1)
                frac = jnp.where(left > 0, frac, 0.0)
        return (lr0 - end) * frac + end


class InverseTimeDecay(_Decay, name="keras.InverseTimeDecay",
                       mirrors="keras.optimizers.schedules.InverseTimeDecay"):
    """``initial_learning_rate / (1 + decay_rate * t / decay_steps)``: Keras' ``InverseTimeDecay``.

    With ``staircase=True``, ``t / decay_steps`` is floored. No torch scheduler has this form.

    Args:
      initial_learning_rate: the LR at step 0.
      decay_steps: a positive integer.
      decay_rate: the rate (>= 0).
      staircase: decay in whole multiples of ``decay_steps`` (default False).
      name: Keras' name scope (default ``"InverseTimeDecay"``).

    >>> from jaxsched.keras import InverseTimeDecay
    >>> s = InverseTimeDecay(1.0, decay_steps=2, decay_rate=1.0)
    >>> [round(float(s(t)), 6) for t in range(5)]
    [1.0, 0.666667, 0.5, 0.4, 0.333333]
    """

    decay_rate: float = leaf(check=_nonneg)
    staircase: bool = static(default=False, check=checks.boolean)
    name: str = static(default="InverseTimeDecay", check=_name)

    def _get_closed_form_lr(self, e, dtype):
        p = _progress(e, self.decay_steps, dtype, self.staircase)
        return arr(self.initial_learning_rate, dtype) / (1.0 + arr(self.decay_rate, dtype) * p)


class CosineDecay(_Decay, name="keras.CosineDecay", mirrors="keras.optimizers.schedules.CosineDecay"):
    """A linear warm-up, then a cosine decay that holds its floor: Keras' ``CosineDecay``.

    Without ``warmup_target``: ``lr0 * ((1 - alpha) * (1 + cos(pi * min(t, T) / T)) / 2 + alpha)`` with
    ``T = decay_steps``. With ``warmup_target``: ``lr0 + (warmup_target - lr0) * t / W`` for ``t < W =
    warmup_steps``, then the same cosine from ``warmup_target`` over ``t - W``, held after ``W + T``.
    Unlike torch's ``CosineAnnealingLR`` (periodic: it rises again after ``T_max``), Keras' cosine clamps, and its
    floor is ``alpha`` times the peak rather than an absolute ``eta_min``.

    Args:
      initial_learning_rate: the LR at step 0 (the warm-up's start, or the cosine's peak without warm-up).
      decay_steps: a positive integer: the length of the cosine.
      alpha: the floor as a fraction of the peak (default 0.0).
      name: Keras' name scope (default ``"CosineDecay"``).
      warmup_target: the peak reached after the warm-up (default None: no warm-up; with ``warmup_steps=0`` the
        cosine starts from ``warmup_target``, as in Keras).
      warmup_steps: a non-negative integer (default 0).

    >>> from jaxsched.keras import CosineDecay
    >>> s = CosineDecay(0.0, decay_steps=4, warmup_target=1.0, warmup_steps=2)
    >>> [round(float(s(t)), 6) for t in range(8)]
    [0.0, 0.5, 1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]
    """

    alpha: float = leaf(default=0.0, check=checks.real)
    name: str = static(default="CosineDecay", check=_name)
    warmup_target: float | None = leaf(default=None, check=_opt_float)
    warmup_steps: int = static(default=0, check=checks.integer(0))

    def _get_closed_form_lr(self, e, dtype):
        T, W = self.decay_steps, self.warmup_steps
        lr0, alpha = arr(self.initial_learning_rate, dtype), arr(self.alpha, dtype)

        def decay(k, peak):
            x = jnp.minimum(k, T).astype(dtype) / T
            return peak * ((1.0 - alpha) * cos_half(x) + alpha)

        if self.warmup_target is None:
            return decay(e, lr0)
        target = arr(self.warmup_target, dtype)
        if W == 0:
            return decay(e, target)
        warm = (target - lr0) * (e.astype(dtype) / W) + lr0
        return jnp.where(e < W, warm, decay(jnp.maximum(e - W, 0), target))


class CosineDecayRestarts(_FromInitial, name="keras.CosineDecayRestarts",
                          mirrors="keras.optimizers.schedules.CosineDecayRestarts"):
    """Cosine cycles with warm restarts (SGDR): Keras' ``CosineDecayRestarts``.

    Cycle ``i`` lasts ``T_i = first_decay_steps * t_mul ** i`` steps and starts at ``S_i = first_decay_steps *
    (t_mul ** i - 1) / (t_mul - 1)`` (``first_decay_steps * i`` for ``t_mul = 1``); inside it the LR is
    ``lr0 * ((1 - alpha) * m_mul ** i * (1 + cos(pi * (t - S_i) / T_i)) / 2 + alpha)``. torch's
    ``CosineAnnealingWarmRestarts(lr, T_0, T_mult, eta_min)`` is ``t_mul=T_mult`` (an integer there),
    ``m_mul=1`` and ``alpha=eta_min / lr`` here.

    Each step is placed in its cycle exactly (see the module docstring for where Keras' float64 formula is one
    cycle short); ``t_mul`` close to 1 is refused when 4096 cycles end before step ``2**31 - 1``. ``t_mul`` 1
    and 2 cost about a bare cosine per step; 3 and more 2-4.5x, a fractional one 5.5-10x (a cycle table) on CPU.

    Args:
      initial_learning_rate: the LR at step 0.
      first_decay_steps: a positive integer: the first cycle's length.
      t_mul: the factor on each cycle's length (>= 1; default 2.0; static: it shapes the cycle table). Taken as
        written (``1.1`` is 11/10); within about ``1e-3`` of 1 Keras' own float64 formula is inaccurate and
        jaxsched deliberately does not follow it (README, deliberate differences).
      m_mul: the factor on each cycle's height (default 1.0).
      alpha: the floor as a fraction of ``initial_learning_rate`` (default 0.0).
      name: Keras' name scope (default ``"SGDRDecay"``).

    >>> from jaxsched.keras import CosineDecayRestarts
    >>> s = CosineDecayRestarts(1.0, first_decay_steps=2, t_mul=2.0, m_mul=0.5)
    >>> [round(float(s(t)), 6) for t in range(8)]
    [1.0, 0.5, 0.5, 0.426777, 0.25, 0.073223, 0.25, 0.240485]
    """

    first_decay_steps: int = static(check=_steps)
    t_mul: float = static(default=2.0, check=_t_mul)
    m_mul: float = leaf(default=1.0, check=checks.real)
    alpha: float = leaf(default=0.0, check=checks.real)
    name: str = static(default="SGDRDecay", check=_name)

    def _validate(self) -> None:
        check_cycles(type(self).__name__, "t_mul", self.first_decay_steps, self.t_mul, None)

    def _get_closed_form_lr(self, e, dtype):
        i, t_curr, t_i = cycle(e, self.first_decay_steps, self.t_mul, None, dtype)
        alpha = arr(self.alpha, dtype)
        height = power_of(self.m_mul, i, dtype)
        return arr(self.initial_learning_rate, dtype) * ((1.0 - alpha) * height * cos_half(t_curr / t_i) + alpha)


#: Keras' class name -> the jaxsched class.
CLASSES: dict[str, type[_KerasSchedule]] = {
    c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay,
                            CosineDecay, CosineDecayRestarts)
}


class _BindAfterKerasLoads(importlib.abc.MetaPathFinder):
    """A one-shot import hook: when ``import keras`` completes, :func:`register_with_keras` runs, so that a
    process that imported jaxsched first (``import jaxsched`` sorts before ``import keras``) can load a saved
    model without building a schedule first. It claims nothing: it asks the other finders for Keras' spec and,
    when Keras is a plain source (or compiled) package, gives it a loader of the same class that binds after
    executing Keras; anything else is left alone (a schedule built later binds anyway). It removes itself once
    Keras has loaded (a bare ``importlib.util.find_spec("keras")`` availability probe leaves it in place), and a
    failing bind never fails Keras' import."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        loader = getattr(spec, "loader", None)
        if spec is None or type(loader) not in (importlib.machinery.SourceFileLoader,
                                                 importlib.machinery.SourcelessFileLoader):
            return spec
        hook = self

        class _ThenBind(type(loader)):  # type: ignore[misc]
            def exec_module(self, module):
                super().exec_module(module)
                if hook in sys.meta_path:
                    sys.meta_path.remove(hook)
                try:
                    register_with_keras()
                except Exception:  # noqa: BLE001 - Keras loaded; a schedule built later binds or says why not
                    pass

        spec.loader = _ThenBind(fullname, loader.path)  # type: ignore[union-attr]
        return spec


if hasattr(sys.modules.get("keras"), "optimizers"):
    register_with_keras()  # Keras imported before jaxsched: bind now
elif "keras" not in sys.modules and importlib.util.find_spec("keras") is not None:
    sys.meta_path.insert(0, _BindAfterKerasLoads())


# ----------------------------------------------------------------------------------------------------------
# any jaxsched schedule as a Keras schedule


def as_keras(schedule: Schedule) -> Any:
    """``schedule`` as a ``keras.optimizers.schedules.LearningRateSchedule`` (Keras 3, imported here).

    Keras calls a learning-rate callable with no argument unless it is a ``LearningRateSchedule``, so a jaxsched
    schedule given directly as ``learning_rate=`` fails; wrapped, the optimizer calls it with its iteration
    count and the LR it applies at update ``k`` (0-based) is ``schedule(k)``. The wrapper serialises with Keras
    (``get_config`` holds the schedule's JSON config; it is registered as ``"jaxsched>Schedule"``, so a saved
    optimizer or model loads back once ``jaxsched.keras`` is imported and :func:`keras_class` called).

    >>> import os; os.environ.setdefault("KERAS_BACKEND", "jax")  # doctest: +SKIP
    >>> import keras, jaxsched  # doctest: +SKIP
    >>> opt = keras.optimizers.SGD(learning_rate=jaxsched.keras.as_keras(jaxsched.StepLR(0.1, step_size=2)))
    ...                                                                   # doctest: +SKIP

    Args:
      schedule: a jaxsched schedule of the step (a StatefulSchedule such as ReduceLROnPlateau is refused: Keras
        passes only the iteration count).
    """
    return keras_class()(schedule)


@functools.cache
def keras_class() -> type:
    """The ``LearningRateSchedule`` subclass :func:`as_keras` builds (Keras is imported on the first call)."""
    import keras

    @keras.saving.register_keras_serializable(package="jaxsched", name="Schedule")
    class JaxschedSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """A jaxsched schedule as a Keras ``LearningRateSchedule``."""

        def __init__(self, schedule):
            super().__init__()
            if isinstance(schedule, dict):
                schedule = from_config(schedule)
            if isinstance(schedule, StatefulSchedule):
                raise TypeError(
                    f"as_keras: schedule must be a schedule of the step, got {type(schedule).__name__}, which "
                    f"carries its own state (update(state, ...)); Keras calls a LearningRateSchedule with the "
                    f"iteration count only."
                )
            if not isinstance(schedule, Schedule):
                raise TypeError(f"as_keras: schedule must be a jaxsched schedule, got schedule={schedule!r}.")
            self._jaxsched_schedule = schedule

        @property
        def schedule(self) -> Schedule:
            return self._jaxsched_schedule

        def __call__(self, step):
            step = jnp.asarray(keras.ops.convert_to_tensor(step))
            if not jnp.issubdtype(step.dtype, jnp.integer):
                step = step.astype(jnp.int32)
            return self._jaxsched_schedule(step)

        def get_config(self) -> dict:
            return {"schedule": self._jaxsched_schedule.to_config()}

        def __repr__(self) -> str:
            return f"as_keras({self._jaxsched_schedule!r})"

    return JaxschedSchedule
