"""Argument checks, run once at construction (never on traced values).

Each check takes the class name, the argument name and the value, and returns the value normalised (NumPy
scalars become Python numbers, lists become tuples) or raises with ``f"{cls}: {name} must be {rule}, got
{name}={value!r}."``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.core import Tracer

from ._numerics import float_dtype, int_dtype, int_max


def _is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def py_number(value):
    """A NumPy scalar (``np.float16(65504)``, ``np.int64(3)``) as the Python number it holds; anything else
    unchanged. NumPy scalars keep their dtype in arithmetic (a float16 sum overflows to inf)."""
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        return value.item()
    return value


def check_float(cls: str, name: str, value, *, allow_int: bool = True) -> float | Any:
    """A float hyperparameter: Python/NumPy numbers become ``float``; tracers pass through unchecked."""
    if _is_tracer(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"{cls}: {name} must be a float, got {name}={value!r}.")
    if isinstance(value, (np.ndarray, jax.Array)):
        if np.ndim(value) != 0:
            raise TypeError(
                f"{cls}: {name} must be a scalar float (use a tuple for one value per parameter group), "
                f"got {name}={value!r}."
            )
        value = np.asarray(value).item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):  # a bool or complex 0-d array
            raise TypeError(f"{cls}: {name} must be a real float, got {name}={value!r}.")
    if isinstance(value, numbers.Integral) and not allow_int:
        raise TypeError(f"{cls}: {name} must be a float, got {name}={value!r}.")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{cls}: {name} must be finite, got {name}={value!r}.")
    return check_float_range(cls, name, value)


def check_float_range(cls: str, name: str, value: float) -> float:
    """Refuse a finite float that the compute dtype cannot hold (``|x| > 3.4e38`` in float32, x64 off):
    it would become inf there and the schedule's values NaN."""
    limit = float(np.finfo(float_dtype()).max)
    if abs(value) > limit:
        hint = "" if jax.config.read("jax_enable_x64") else "; enable jax_enable_x64 for float64"
        raise ValueError(
            f"{cls}: {name} must be at most {limit:.4g} in magnitude (the largest "
            f"{np.dtype(float_dtype()).name}{hint}), got {name}={value!r}."
        )
    return value


def check_int(cls: str, name: str, value, *, minimum: int | None = None, rule: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer() and rule is None:
            value = int(value)
        else:
            raise TypeError(f"{cls}: {name} must be an integer, got {name}={value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{cls}: {name} must be {rule or f'>= {minimum}'}, got {name}={value!r}.")
    return check_int_range(cls, name, value)


def check_int_range(cls: str, name: str, value: int) -> int:
    """Refuse an integer the step dtype cannot hold (int32 with x64 off): it would fail or wrap at evaluation."""
    return check_steps(cls, name, value)


def check_steps(cls: str, what: str, value: int, **parts: Any) -> int:
    """A step count that the step arithmetic uses, checked at construction against the step dtype's range.

    The one check for every class: an integer argument (``what`` its name) or a count derived from several
    (``what`` the expression, e.g. ``"epochs * steps_per_epoch"``, and ``parts`` the arguments it is built from).
    Beyond the largest int32 (x64 off) or int64 the schedule would fail at its first evaluation with JAX's
    unnamed OverflowError, or wrap around to a negative step.
    """
    top = int_max()
    if abs(value) > top:
        hint = "" if jax.config.read("jax_enable_x64") else "; enable jax_enable_x64 for int64"
        built = f" with {', '.join(f'{k}={v!r}' for k, v in parts.items())}" if parts else ""
        raise ValueError(
            f"{cls}: {what} must be at most {top} in magnitude (the largest {np.dtype(int_dtype()).name}"
            f"{hint}), got {what}={value!r}{built}."
        )
    return value


def check_choice(cls: str, name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{cls}: {name} must be one of {allowed}, got {name}={value!r}.")
    return value


def per_group(cls: str, name: str, value, check=check_float, **kw):
    """A float or a per-group tuple of floats (lists are accepted and stored as tuples)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f"{cls}: {name} must not be empty, got {name}={value!r}.")
        return tuple(check(cls, f"{name}[{i}]", v, **kw) for i, v in enumerate(value))
    if isinstance(value, np.ndarray) and value.ndim == 1:
        raise TypeError(
            f"{cls}: {name} must be a float or a tuple of floats (one per parameter group), got a NumPy "
            f"array {name}={value!r}; torch would silently broadcast it. Pass tuple({name}) instead."
        )
    return check(cls, name, value, **kw)


def check_lr(cls: str, name: str, value):
    value = per_group(cls, name, value)
    for i, v in enumerate(value if isinstance(value, tuple) else (value,)):
        if not _is_tracer(v) and v < 0:
            shown = f"{name}[{i}]" if isinstance(value, tuple) else name
            raise ValueError(f"{cls}: {shown} must be >= 0 (torch's optimizers reject it), got {shown}={v!r}.")
    return value


def num_groups(*values) -> int | None:
    """The number of parameter groups implied by the tuple-valued arguments (None: all scalar)."""
    n = None
    for v in values:
        if isinstance(v, tuple):
            n = len(v) if n is None else n
    return n


def check_lengths(cls: str, **named) -> int | None:
    """All tuple arguments must have one length; returns it (None when every argument is a scalar)."""
    lengths = {k: len(v) for k, v in named.items() if isinstance(v, tuple)}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"{cls}: per-group arguments must have the same length (one per parameter group): {desc}.")
    return next(iter(lengths.values()), None)


def check_callable(cls: str, name: str, fn, n_groups: int | None):
    """A callable or a tuple of callables, one per group; each is traced once to catch Python control flow."""
    if isinstance(fn, (list, tuple)):
        if len(fn) == 0:
            raise ValueError(
                f"{cls}: {name} must be a function or a non-empty tuple of functions (one per parameter group), "
                f"got {name}={fn!r}."
            )
        if n_groups is not None and len(fn) != n_groups:
            raise ValueError(f"{cls}: Expected {n_groups} {name}s, but got {len(fn)} ({name}={fn!r}).")
        fns = tuple(fn)
    else:
        fns = (fn,)
    for i, f in enumerate(fns):
        shown = f"{name}[{i}]" if isinstance(fn, (list, tuple)) else name
        if not callable(f):
            raise TypeError(f"{cls}: {shown} should be a function, but got {type(f).__name__} ({shown}={f!r}).")
        trace_check(cls, shown, f)
    return fns if isinstance(fn, (list, tuple)) else fn


def trace_check(cls: str, name: str, f: Callable) -> None:
    """Trace ``f`` on an abstract integer step; explain how to fix Python control flow on the step."""
    try:
        out = jax.eval_shape(f, jax.ShapeDtypeStruct((), int_dtype()))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
            jax.errors.TracerIntegerConversionError) as err:
        raise TypeError(
            f"{cls}: {name} must be traceable by JAX: it is called with the step as a traced integer array "
            f"so that the schedule works under jax.jit, but {name} used the step in Python control flow "
            f"(if/while/min/max/int()) and JAX cannot evaluate that on a traced value.\n"
            f"Write the branch with jax.numpy instead, for example\n"
            f"    lambda e: 0.1 if e < 10 else 0.01            # fails\n"
            f"    lambda e: jnp.where(e < 10, 0.1, 0.01)       # works\n"
            f"    lambda e: min(1.0, (e + 1) / 10)             # fails\n"
            f"    lambda e: jnp.minimum(1.0, (e + 1) / 10)     # works\n"
            f"Original error: {type(err).__name__}: {str(err).splitlines()[0]}"
        ) from None
    except Exception as err:
        raise TypeError(
            f"{cls}: {name} failed when called with a traced integer step: {type(err).__name__}: {err}"
        ) from err
    shape = getattr(out, "shape", None)
    if shape is None or shape != ():
        raise TypeError(f"{cls}: {name} must return a scalar for a scalar step, got shape {shape!r}.")


# ----------------------------------------------------------------------------------------------------------
# field checks: ``leaf(check=...)`` / ``static(check=...)`` take a function ``(cls, name, value) -> value``


def real(cls: str, name: str, value):
    """A float hyperparameter (Python/NumPy numbers become ``float``; tracers pass through)."""
    return check_float(cls, name, value)


def group_real(cls: str, name: str, value):
    """A float, or a per-group tuple of floats."""
    return per_group(cls, name, value)


def integer(minimum: int | None = None, rule: str | None = None) -> Callable[[str, str, Any], int]:
    """An integer field, at least ``minimum``; ``rule`` is how the message states the requirement."""
    def check(cls: str, name: str, value) -> int:
        return check_int(cls, name, value, minimum=minimum, rule=rule)
    return check


def choice(*choices: str) -> Callable[[str, str, Any], str]:
    """One of ``choices``."""
    def check(cls: str, name: str, value) -> str:
        return check_choice(cls, name, value, choices)
    return check


def boolean(cls: str, name: str, value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{cls}: {name} must be a bool, got {name}={value!r}.")


#: ``check_lr`` under the field-check name.
lr = check_lr


# ----------------------------------------------------------------------------------------------------------
# metric-driven schedules: the metric given to ``update`` and a (possibly restored) state entering it


def metric(owner: str, value, dtype, name: str = "value"):
    """A metric as a real scalar array of ``dtype``: complex and non-scalar metrics are refused (torch: only
    one-element tensors convert to a Python number; a complex one would lose its imaginary part)."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError(value)
        a = jax.numpy.asarray(value)
    except (TypeError, ValueError):  # a string, an object, a ragged list: JAX's message names neither
        raise TypeError(
            f"{owner}: {name} must be a real scalar metric (a number or a one-element array), got "
            f"{name}={_short(value)} of type {type(value).__name__}."
        ) from None
    if jax.numpy.issubdtype(a.dtype, jax.numpy.complexfloating):
        raise TypeError(f"{owner}: {name} must be a real scalar metric, got a complex {name}={value!r}.")
    if not (jax.numpy.issubdtype(a.dtype, jax.numpy.floating) or jax.numpy.issubdtype(a.dtype, jax.numpy.integer)):
        raise TypeError(f"{owner}: {name} must be a real scalar metric, got {name} of dtype {a.dtype}.")
    if a.size != 1:
        raise ValueError(
            f"{owner}: {name} must be a scalar metric (torch: only one element tensors can be converted to "
            f"Python scalars), got an array of shape {a.shape}."
        )
    return a.reshape(()).astype(dtype)


def _concrete(a) -> np.ndarray | None:
    return None if _is_tracer(a) else np.asarray(a)


def state_float(owner: str, name: str, x, dtype, *, nonneg: bool = False, finite: bool = False,
                allow_nan: bool = False):
    """A float field of a restored state, cast to ``dtype`` (an integer ``best`` or ``lr`` would make every
    later comparison integer); a concrete NaN (with ``nonneg`` a negative value, with ``finite`` an infinite
    one) is refused; ``allow_nan`` lets NaN through (a smoothing window holds the metrics as given)."""
    try:
        a = jax.numpy.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: state.{name} must be a real float array, got {type(x).__name__} "
                        f"({name}={_short(x)}).") from None
    if not (jax.numpy.issubdtype(a.dtype, jax.numpy.floating) or jax.numpy.issubdtype(a.dtype, jax.numpy.integer)):
        raise TypeError(f"{owner}: state.{name} must be a real float array, got dtype {a.dtype} ({name}={_short(x)}).")
    c = _concrete(a)
    if c is not None:
        if not allow_nan and np.isnan(c).any():
            raise ValueError(f"{owner}: state.{name} must not be NaN (a corrupted state?), got {name}={_short(c)}.")
        if finite and np.isinf(c).any():
            raise ValueError(f"{owner}: state.{name} must be finite (no schedule reaches an infinite LR; a corrupted "
                             f"state?), got {name}={_short(c)}.")
        if nonneg and (c < 0).any():
            raise ValueError(f"{owner}: state.{name} must be >= 0, got {name}={c!r}.")
    return a.astype(dtype)


def state_count(owner: str, name: str, x, dtype, *, below: int | None = None, signed: bool = False):
    """A counter of a restored state: a non-negative integer array of ``dtype`` (a float array holding whole
    numbers, as some checkpoint formats write counters, is accepted; its values must fit ``dtype``). With
    ``below``, a concrete value must be less than it (a ring-buffer index); ``signed`` allows negative values."""
    try:
        a = jax.numpy.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: state.{name} must be an integer counter, got {type(x).__name__} "
                        f"({name}={_short(x)}).") from None
    c = _concrete(a)
    if not jax.numpy.issubdtype(a.dtype, jax.numpy.integer):
        if c is None or not jax.numpy.issubdtype(a.dtype, jax.numpy.floating) or not (np.floor(c) == c).all():
            raise TypeError(f"{owner}: state.{name} must be an integer counter, got dtype {a.dtype} "
                            f"({name}={_short(x)}).")
    if c is not None and not signed and (c < 0).any():
        raise ValueError(f"{owner}: state.{name} must be >= 0 (a counter), got {name}={_short(c)}.")
    info = np.iinfo(np.dtype(dtype))
    if c is not None and not np.issubdtype(c.dtype, np.integer):
        c = c.astype(np.float64)  # whole numbers (checked above): compared exactly with the integer bounds
    if c is not None and c.size and (c.max() > info.max or c.min() < info.min):
        raise ValueError(f"{owner}: state.{name} must be at most {info.max} in magnitude (the largest "
                         f"{np.dtype(dtype).name}), got {name}={_short(c)}.")
    if c is not None and below is not None and (c >= below).any():
        raise ValueError(f"{owner}: state.{name} must be < {below} (as init() and update() keep it), got "
                         f"{name}={_short(c)}.")
    return a.astype(dtype)


def state_shape(owner: str, name: str, x, shape: tuple[int, ...], groups: int | None = None) -> None:
    """A field of a restored state must have the shape this schedule gives it (shapes are static: checked under
    ``jax.jit`` too). For ``lr``, ``groups`` is the schedule's number of parameter groups (``None``: scalar)."""
    try:
        got = tuple(np.shape(x))  # a tracer's static shape, too
    except ValueError:  # a ragged list
        raise TypeError(f"{owner}: state.{name} must be an array, got {name}={_short(x)}.") from None
    if got != tuple(shape):
        if name == "lr":
            what = ("a single LR: the schedule has no parameter groups" if groups is None
                    else f"one LR for each of the schedule's {groups} parameter groups")
            why = "the state of a schedule with another number of parameter groups?"
        else:
            what, why = "as init() gives it", "the state of a schedule with another configuration?"
        raise ValueError(f"{owner}: state.{name} must have shape {tuple(shape)} ({what}), got shape {got}: {why}")


def state_of(owner: str, state, state_type: type, update_call: str) -> None:
    """``s(state)`` on a stateful schedule: ``state`` must be its state, not a step (``s(5)``)."""
    if not isinstance(state, state_type):
        raise TypeError(
            f"{owner}: state must be a {state_type.__name__} (from init() or update()), got "
            f"{type(state).__name__}; a stateful schedule is called on its state, not on a step: "
            f"state = s.init(), then state = {update_call} and lr = s(state)."
        )


def _short(x, limit: int = 120) -> str:
    """``repr(x)`` on one line, cut to ``limit`` characters (an error message stays one line)."""
    text = " ".join(repr(x).split())
    return text if len(text) <= limit else text[:limit] + "..."
