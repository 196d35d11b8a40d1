"""The machinery every jaxsched schedule shares.

A schedule is a frozen dataclass that is also a pytree: float hyperparameters are leaves (so a schedule can
be passed through ``jax.jit`` or ``jax.vmap`` without retracing when they change), everything else (ints,
strings, tuples of ints, callables) is static auxiliary data. Unflattening never re-runs ``__init__``, so
validation never sees a tracer.

Every schedule answers three questions about torch's behaviour:

* ``_value(e, dtype)``: the closed form, the LR torch holds after ``e`` calls of ``scheduler.step()``.
* ``_init_affine(dtype)`` and ``_affine(e, dtype)``: torch's *chainable* update written as an affine map of
  the LR the optimizer currently holds, ``lr_new = A * lr + C``. ``_init_affine`` is the effect of the
  constructor (index 0), ``_affine(e)`` the effect of the ``e``-th ``step()``. ChainedScheduler and the
  running form (:class:`jaxsched.Running`) are built from these.
* ``_restart(prev, j, dtype)``: the value ``j`` steps after SequentialLR switched to this schedule at a
  milestone, where ``prev`` is the LR the optimizer held just before the milestone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

REGISTRY: dict[str, type["Schedule"]] = {}


# ----------------------------------------------------------------------------------------------------------
# dtypes


def float_dtype():
    """float64 when ``jax_enable_x64`` is on, float32 otherwise."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def int_dtype():
    return jnp.int64 if jax.config.jax_enable_x64 else jnp.int32


def int_max() -> int:
    return int(np.iinfo(int_dtype()).max)


def as_step(step, cls_name: str) -> Array:
    """The step as a non-negative integer array of the canonical int dtype."""
    if isinstance(step, bool):
        raise TypeError(f"{cls_name}: step must be an integer, got step={step!r}.")
    if isinstance(step, numbers.Integral):
        if step < 0:
            raise ValueError(f"{cls_name}: step must be >= 0, got step={step!r}.")
        if step > int_max():
            raise ValueError(
                f"{cls_name}: step must be <= {int_max()} (the largest {np.dtype(int_dtype()).name}; "
                f"enable jax_enable_x64 for more), got step={step!r}."
            )
        return jnp.asarray(step, int_dtype())
    step = jnp.asarray(step)
    if not jnp.issubdtype(step.dtype, jnp.integer):
        raise TypeError(
            f"{cls_name}: step must be an integer (the number of scheduler.step() calls), "
            f"got an array of dtype {step.dtype}. Cast it with step.astype(int)."
        )
    return jnp.maximum(step.astype(int_dtype()), 0)


def div(e: Array, n: int) -> Array:
    """``e // n`` for a non-negative integer array ``e`` and a positive int ``n`` (one integer division;
    ``jnp.floor_divide`` adds sign corrections that steps, clamped to >= 0, never need)."""
    return jax.lax.div(e, jnp.asarray(n, e.dtype))


def mod(e: Array, n: int) -> Array:
    """``e % n`` for a non-negative integer array ``e`` and a positive int ``n``."""
    return jax.lax.rem(e, jnp.asarray(n, e.dtype))


def map_steps(fn: Callable[[Array], Array], e: Array) -> Array:
    """``fn`` on a scalar step, mapped over an array of steps: output shape ``e.shape + fn's shape``."""
    if e.ndim == 0:
        return fn(e)
    flat = jax.vmap(fn)(e.reshape(-1))
    return flat.reshape(e.shape + flat.shape[1:])


def arr(x, dtype) -> Array:
    """A hyperparameter (float, tuple of floats, or a traced leaf) as an array of ``dtype``."""
    if isinstance(x, tuple):
        return jnp.asarray(np.asarray(x, np.float64), dtype) if all(_is_num(v) for v in x) else jnp.stack(
            [jnp.asarray(v).astype(dtype) for v in x]
        )
    if _is_num(x):
        return jnp.asarray(np.float64(x), dtype)
    return jnp.asarray(x).astype(dtype)


def _is_num(x) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool)


def is_concrete(x) -> bool:
    """True for Python numbers and tuples of them: values we can do float64 arithmetic on at trace time."""
    if isinstance(x, tuple):
        return all(_is_num(v) for v in x)
    return _is_num(x)


def host(fn: Callable, jfn: Callable, *xs, dtype):
    """``fn`` in float64 on the host when every input is a concrete number, else ``jfn`` in ``dtype``.

    Derived constants such as ``log(gamma)`` are computed once in float64 and rounded once to the compute
    dtype; in float32 this keeps e.g. ``gamma ** e`` accurate for ``gamma`` close to 1 (rounding ``gamma``
    itself to float32 first would cost up to 1e-4 of the LR).
    """
    if all(is_concrete(x) for x in xs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = fn(*[np.asarray(x, np.float64) for x in xs])
        return jnp.asarray(out, dtype)
    return jfn(*[arr(x, dtype) for x in xs])


def int_pow(base, k: Array, dtype) -> Array:
    """``base ** k`` for a float hyperparameter ``base`` and an integer array ``k >= 0``, NaN-free.

    Computed as ``sign * exp(k * log|base|)`` with ``log|base|`` in float64 when ``base`` is concrete;
    ``base ** 0 == 1`` (also for base 0), ``0 ** k == 0`` for ``k > 0``, negative bases alternate sign.
    """
    if _is_num(base) and base > 0:
        # The common case, decided at trace time: exp(k * log(base)) is already 1 at k = 0 and never 0 or
        # negative, so the selects below would return it unchanged; skipping them keeps the traced program
        # (and so the compile time) small.
        return jnp.exp(k.astype(dtype) * jnp.asarray(np.log(np.float64(base)), dtype))
    log_abs = host(lambda b: np.log(np.abs(b)), lambda b: jnp.log(jnp.abs(b)), base, dtype=dtype)
    b = arr(base, dtype)
    kf = k.astype(dtype)
    zero_k = k == 0
    mag = jnp.exp(jnp.where(zero_k, jnp.zeros_like(log_abs), kf * jnp.where(b == 0, 0.0, log_abs)))
    mag = jnp.where((b == 0) & ~zero_k, 0.0, mag)
    odd = (k % 2) == 1
    return jnp.where((b < 0) & odd, -mag, mag)


# ----------------------------------------------------------------------------------------------------------
# argument checking (construction time only)


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


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
    if isinstance(value, numbers.Integral) and not allow_int:
        raise TypeError(f"{cls}: {name} must be a float, got {name}={value!r}.")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{cls}: {name} must be finite, got {name}={value!r}.")
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
    except Exception as err:  # noqa: BLE001 - report whatever the user's function raised
        raise TypeError(
            f"{cls}: {name} failed when called with a traced integer step: {type(err).__name__}: {err}"
        ) from err
    shape = getattr(out, "shape", None)
    if shape is None or shape != ():
        raise TypeError(f"{cls}: {name} must return a scalar for a scalar step, got shape {shape!r}.")


# ----------------------------------------------------------------------------------------------------------
# the base class


def _leaf_key(v):
    if v is None:  # an optional float argument left unset
        return None
    if isinstance(v, tuple):
        return tuple(_leaf_key(x) for x in v)
    if isinstance(v, Schedule):
        return v
    if _is_num(v):
        return float(v)
    raise TypeError(f"a schedule holding array or traced hyperparameters is not hashable (got {v!r})")


def _values_equal(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if _is_num(a) and _is_num(b):
        return float(a) == float(b)
    if isinstance(a, (jax.Array, np.ndarray)) or isinstance(b, (jax.Array, np.ndarray)):
        if _is_tracer(a) or _is_tracer(b):
            return a is b
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return a == b


class Schedule:
    """Base class: a torch LR scheduler as an immutable, jittable function of the step.

    ``s(step)`` is the LR torch holds after ``step`` calls of ``scheduler.step()``: a scalar array, or shape
    ``(G,)`` with ``G`` parameter groups. It is an ``optax.Schedule`` as it stands.
    """

    # Names of dataclass fields that are pytree leaves (floats, tuples of floats, nested schedules).
    _leaves: ClassVar[tuple[str, ...]] = ()
    # The constructor argument given positionally in the repr (torch's optimizer slot), if any.
    _positional: ClassVar[str | None] = "lr"
    # True when every step is `lr *= factor` (no additive term): ChainedScheduler then has a closed form.
    _multiplicative: ClassVar[bool] = False
    # True when `_restart` needs `prev` (the LR before a SequentialLR milestone).
    _uses_prev: ClassVar[bool] = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        REGISTRY[cls.__name__] = cls

    @classmethod
    def _register_pytree(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
        leaves = cls._leaves
        statics = tuple(n for n in names if n not in leaves)

        def flatten(s):
            children = [(jax.tree_util.GetAttrKey(n), getattr(s, n)) for n in leaves]
            aux = tuple(getattr(s, n) for n in statics)
            return children, aux

        def unflatten(aux, children):
            obj = object.__new__(cls)
            for n, v in zip(statics, aux):
                object.__setattr__(obj, n, v)
            for n, v in zip(leaves, children):
                object.__setattr__(obj, n, v)
            return obj

        jax.tree_util.register_pytree_with_keys(cls, flatten, unflatten)
        return cls

    # -- the public interface ------------------------------------------------------------------------------

    def __call__(self, step) -> Array:
        """The LR torch holds after ``step`` calls of ``scheduler.step()`` (0 = right after construction)."""
        e = as_step(step, type(self).__name__)
        self._check_step(step)
        dtype = float_dtype()
        return map_steps(lambda x: self._value(x, dtype), e)

    @property
    def num_groups(self) -> int | None:
        """Number of parameter groups (``None`` when every argument is a scalar: ``s(step)`` is a scalar).

        Only float hyperparameters (the pytree leaves) are per group: MultiStepLR's milestones are a tuple too.
        """
        return num_groups(*(getattr(self, n) for n in self._leaves))

    def to_config(self) -> dict:
        """A JSON-serialisable description: ``{"name": "StepLR", "args": {...}}``."""
        args = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            args[f.name] = _to_json(type(self).__name__, f.name, v)
        return {"name": type(self).__name__, "args": args}

    # -- value semantics -----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            text = _fmt(v)
            parts.append(text if f.name == self._positional else f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _values_equal(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + tuple(_leaf_key(getattr(self, f.name)) if f.name in self._leaves
                                                  else _hashable(getattr(self, f.name))
                                                  for f in dataclasses.fields(self)))

    # -- to be provided by subclasses -----------------------------------------------------------------------

    def _check_step(self, step) -> None:
        """Eager checks on a concrete step (e.g. OneCycleLR past its end)."""

    def _value(self, e: Array, dtype) -> Array:
        raise NotImplementedError

    @property
    def _base(self):
        """The optimizer's initial LR (``base_lrs``) that this schedule was built on."""
        return self.lr

    def _init_affine(self, dtype):
        """Effect of the constructor on the LR the optimizer holds: ``(A, C)``; default: absolute."""
        return 0.0, self._value(jnp.zeros((), int_dtype()), dtype)

    def _affine(self, e: Array, dtype):
        """Effect of the ``e``-th ``step()`` (``e >= 1``) on the current LR; default: absolute."""
        return 0.0, self._value(e, dtype)

    def _restart(self, prev: Array | None, j: Array, dtype) -> Array:
        """Value ``j`` steps after a SequentialLR milestone switched to this schedule (default: closed form)."""
        return self._value(j, dtype)

    def _check_in_composite(self, owner: str, index: int) -> None:
        """Raise if this schedule cannot be a member of a SequentialLR/ChainedScheduler."""


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, tuple):
        return tuple(_hashable(x) for x in v)
    return v


def _fmt(v) -> str:
    if isinstance(v, tuple):
        inner = ", ".join(_fmt(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if callable(v) and not isinstance(v, Schedule):
        name = getattr(v, "__qualname__", None) or repr(v)
        return f"<function {name}>" if name else repr(v)
    if isinstance(v, float):
        return repr(v)
    return repr(v)


def _to_json(cls: str, name: str, v):
    if isinstance(v, Schedule):
        return v.to_config()
    if isinstance(v, (tuple, list)):
        return [_to_json(cls, name, x) for x in v]
    if callable(v):
        raise TypeError(
            f"{cls}.to_config: {name}={_fmt(v)} is a Python callable and cannot be serialised to JSON. "
            f"Keep the schedule in code, or use a schedule whose arguments are all numbers and strings."
        )
    if isinstance(v, (jax.Array, np.ndarray)):
        if _is_tracer(v):
            raise TypeError(f"{cls}.to_config: {name} is a traced value and cannot be serialised.")
        return np.asarray(v).tolist()
    return v


def from_config(config: dict | str) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_config` output (a dict or its JSON text)."""
    if isinstance(config, str):
        config = json.loads(config)
    if not isinstance(config, dict) or "name" not in config or "args" not in config:
        raise ValueError(f"from_config: expected a dict with 'name' and 'args', got config={config!r}.")
    name = config["name"]
    if name not in REGISTRY or name.startswith("_"):
        known = ", ".join(sorted(k for k in REGISTRY if not k.startswith("_")))
        raise ValueError(f"from_config: unknown schedule name={name!r}; known schedules: {known}.")
    cls = REGISTRY[name]
    args = {k: _from_json(v) for k, v in config["args"].items()}
    return cls(**args)


def _from_json(v):
    if isinstance(v, dict) and "name" in v and "args" in v:
        return from_config(v)
    if isinstance(v, list):
        return tuple(_from_json(x) for x in v)
    return v


def schedule_class(cls):
    """Decorator: make ``cls`` a frozen dataclass registered as a pytree (without the dataclass eq/repr)."""
    cls = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
    return cls._register_pytree()
