"""The value base: immutable, typed dataclasses that are pytrees, with each field declared where it is defined.

Every public jaxsched object (step schedules, stateful schedules, adapters) is a :class:`Value`. Subclassing is
all it takes: the subclass becomes a frozen dataclass (type checkers see its constructor through
``typing.dataclass_transform``), it is registered as a pytree and, when its name is public, in the registry that
``from_config`` and ``parse_spec`` read. Each field says what it is::

    class StepLR(MultiplicativeSchedule, mirrors="torch.optim.lr_scheduler.StepLR"):
        lr: LR = leaf(check=checks.lr)                 # a float (or per-group tuple): a pytree leaf
        step_size: int = static(check=checks.positive_int)  # everything else: static (part of the treedef)
        gamma: float = leaf(default=0.1, check=checks.real)

* :func:`leaf`: a float hyperparameter, a tuple of them (one per parameter group) or a nested value. Leaves
  can be traced: a schedule passes through ``jax.jit`` without retracing when they change and can be vmapped
  over them.
* :func:`static`: ints, strings, bools, tuples of ints, callables. A new static value is a new treedef.

Each field's ``check`` runs once in ``__init__`` (on concrete values; a tracer passes through a float check
unchanged), then the class's ``_validate`` hook runs for what spans several fields. Unflattening never re-runs
either, so validation never sees a tracer inside ``jit``. ``repr`` reads like the constructor call, equality and
hashing are by value, and ``to_config``/``from_config`` round-trip through JSON: all written once, here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, dataclass_transform

import jax
import jax.core  # Tracer: a submodule type checkers see only when imported
import numpy as np
from jax.core import Tracer

from ._numerics import _is_num

#: Every public value class by the name ``to_config`` writes (``"StepLR"``, ``"transformers.GreedyLR"``...).
REGISTRY: dict[str, type[Value]] = {}
#: The other framework's object each class mirrors: ``"torch.optim.lr_scheduler.StepLR" -> StepLR``.
CATALOGUE: dict[str, type[Value]] = {}

Check = Callable[[str, str, Any], Any]
_MISSING: Any = dataclasses.MISSING


def leaf(*, default: Any = _MISSING, check: Check | None = None, init: bool = True) -> Any:
    """Declare a pytree-leaf field: a float hyperparameter, a per-group tuple of floats, or a nested value."""
    return dataclasses.field(default=default, init=init, metadata={"leaf": True, "check": check})


def static(*, default: Any = _MISSING, check: Check | None = None, init: bool = True) -> Any:
    """Declare a static field: an int, string, bool, tuple of ints or a callable (part of the treedef)."""
    return dataclasses.field(default=default, init=init, metadata={"leaf": False, "check": check})


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(leaf, static))
class Value:
    """Base of every jaxsched value: a frozen dataclass, a pytree, with value equality, repr and JSON config.

    Class keywords:
      name: the registry name (default: the class name; catalogue modules use ``"keras.CosineDecay"``-style
        names so that frameworks cannot collide).
      mirrors: the dotted path of the other framework's object this class reproduces
        (``"torch.optim.lr_scheduler.StepLR"``); it enters :data:`CATALOGUE`, which ``from_torch``/``from_keras``/
        ``from_timm``, the parity runner, the test strategies and the benchmarks read.
    """

    #: The field shown positionally in the repr (torch's optimizer slot), if any.
    _positional: ClassVar[str | None] = None
    #: Set by ``__init_subclass__``.
    _leaf_names: ClassVar[tuple[str, ...]] = ()
    _static_names: ClassVar[tuple[str, ...]] = ()
    _name: ClassVar[str] = ""
    _mirrors: ClassVar[str | None] = None
    #: Where the mirrored object keeps a field under another name: ``{field: attribute}`` (a dotted path for a
    #: nested attribute). The converters (``from_torch``, ``from_timm``) read every other field from the
    #: same-named attribute.
    _counterpart_attrs: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, *, name: str | None = None, mirrors: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        for f in fields:
            if "leaf" not in f.metadata:
                raise TypeError(
                    f"{cls.__name__}.{f.name}: declare the field with jaxsched's leaf(...) (a float hyperparameter, "
                    f"traceable and vmappable) or static(...) (ints, strings, callables); a bare annotation would "
                    f"silently be static."
                )
        cls._leaf_names = tuple(f.name for f in fields if f.metadata["leaf"])
        cls._static_names = tuple(f.name for f in fields if not f.metadata["leaf"])
        cls._name = name or cls.__name__
        cls._mirrors = mirrors
        _register_pytree(cls)
        abstract = any(getattr(getattr(cls, n, None), "__isabstractmethod__", False) for n in dir(cls))
        if not cls.__name__.startswith("_") and not abstract:
            other = REGISTRY.get(cls._name)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"{cls.__name__}: the registry name {cls._name!r} is taken by {other!r}.")
            REGISTRY[cls._name] = cls
        if mirrors is not None:
            CATALOGUE[mirrors] = cls

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check = f.metadata["check"]
            if check is not None:
                object.__setattr__(self, f.name, check(name, f.name, getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:
        """Checks that span several fields; may normalise fields with :meth:`_set`. Runs once, in ``__init__``."""

    def _set(self, name: str, value: Any) -> None:
        """Replace a field's value during ``_validate`` (the instance is frozen afterwards)."""
        object.__setattr__(self, name, value)

    # -- value semantics -----------------------------------------------------------------------------------

    def to_config(self) -> dict:
        """A JSON-serialisable description: ``{"name": "StepLR", "args": {...}}``."""
        return {"name": self._name, "args": {f.name: _to_json(self._name, f.name, getattr(self, f.name))
                                             for f in dataclasses.fields(self) if f.init}}  # type: ignore[arg-type]

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.init:
                continue
            text = _fmt(getattr(self, f.name))
            parts.append(text if f.name == self._positional else f"{f.name}={text}")
        return f"{_display_name(type(self))}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_values_equal(getattr(self, n), getattr(other, n)) for n in self._leaf_names + self._static_names)

    def __hash__(self) -> int:
        return hash((self._name,) + tuple(_leaf_key(getattr(self, n)) for n in self._leaf_names)
                    + tuple(_hashable(getattr(self, n)) for n in self._static_names))


def _display_name(cls: type) -> str:
    return cls.__name__


def _register_pytree(cls: type[Value]) -> None:
    leaves, statics = cls._leaf_names, cls._static_names
    keys = tuple(jax.tree_util.GetAttrKey(n) for n in leaves)

    def flatten(s):
        return [(k, getattr(s, n)) for k, n in zip(keys, leaves)], tuple(getattr(s, n) for n in statics)

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for n, v in zip(statics, aux):
            object.__setattr__(obj, n, v)
        for n, v in zip(leaves, children):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten, unflatten)


# ----------------------------------------------------------------------------------------------------------
# equality, hashing, repr and JSON of field values


def _is_tracer(x) -> bool:
    return isinstance(x, Tracer)


def _leaf_key(v: Any) -> Any:
    if v is None:  # an optional float argument left unset
        return None
    if isinstance(v, tuple):
        return tuple(_leaf_key(x) for x in v)
    if isinstance(v, Value):
        return v
    if _is_num(v):
        return float(v)
    raise TypeError(f"a schedule holding array or traced hyperparameters is not hashable (got {v!r})")


def _values_equal(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if _is_num(a) and _is_num(b):
        return float(a) == float(b)  # pyright: ignore[reportArgumentType] - _is_num: a real number
    if isinstance(a, (jax.Array, np.ndarray)) or isinstance(b, (jax.Array, np.ndarray)):
        if _is_tracer(a) or _is_tracer(b):
            return a is b
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return a == b


def _hashable(v):
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    return v


def _fmt(v) -> str:
    if isinstance(v, tuple):
        inner = ", ".join(_fmt(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if callable(v) and not isinstance(v, Value):
        name = getattr(v, "__qualname__", None) or repr(v)
        return f"<function {name}>" if name else repr(v)
    return repr(v)


def _to_json(cls: str, name: str, v):
    if isinstance(v, Value):
        return v.to_config()
    if isinstance(v, (tuple, list)):
        return [_to_json(cls, name, x) for x in v]
    if callable(v):
        raise TypeError(
            f"{cls}.to_config: {name}={_fmt(v)} is a Python callable and cannot be serialised to JSON. "
            f"Keep the schedule in code, or use a schedule whose arguments are all numbers and strings."
        )
    if isinstance(v, (jax.Array, np.ndarray, np.generic)):
        if _is_tracer(v):
            raise TypeError(f"{cls}.to_config: {name} is a traced value and cannot be serialised.")
        return np.asarray(v).tolist()
    return v


#: Deepest nesting of dicts and lists a config may hold (a schedule is two: its dict and its ``args``). The
#: deepest schedule a spec can write (32 levels of calls, lists and tuples) stays well within it.
MAX_CONFIG_DEPTH = 100


def _check_depth(config) -> None:
    """Refuse a config nested deeper than :data:`MAX_CONFIG_DEPTH`, walking it without recursion (rebuilding it,
    or even printing it, would exceed Python's recursion limit)."""
    stack = [(config, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"from_config: config must be nested at most {MAX_CONFIG_DEPTH} levels deep (dicts "
                             f"and lists), got a deeper one; a schedule's to_config() output is far shallower.")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)


def from_config(config: dict | str) -> Value:
    """Rebuild a schedule from :meth:`Value.to_config` output (a dict or its JSON text)."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as err:
            raise ValueError(f"from_config: config is not valid JSON ({err}).") from None
        except RecursionError:
            raise ValueError(f"from_config: config must be nested at most {MAX_CONFIG_DEPTH} levels deep (dicts "
                             f"and lists), got JSON text nested too deeply to parse.") from None
    _check_depth(config)
    if (not isinstance(config, dict) or set(config) != {"name", "args"} or not isinstance(config["name"], str)
            or not isinstance(config["args"], dict)):
        shown = repr(config)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        raise ValueError(
            f"from_config: expected {{'name': str, 'args': dict}} (the output of to_config()), got config={shown}."
        )
    name = config["name"]
    cls = REGISTRY.get(name)
    if cls is None:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"from_config: unknown schedule name={name[:100]!r}; known schedules: {known}.")
    args = {k: _from_json(v) for k, v in config["args"].items()}
    return cls(**args)


def _from_json(v):
    if isinstance(v, dict) and set(v) == {"name", "args"}:
        return from_config(v)
    if isinstance(v, list):
        return tuple(_from_json(x) for x in v)
    return v
