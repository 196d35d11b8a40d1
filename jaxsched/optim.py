"""Wiring jaxsched schedules into optax optimizers, one call each.

* :func:`scheduled`: an optimizer whose LR (and SGD ``momentum`` / Adam ``b1`` when the schedule cycles
  momentum) follows a schedule; update ``k`` applies the LR torch holds at index ``k``.
* :func:`grouped`: the same for a schedule with a tuple of LRs, one per labelled parameter group.
* :func:`set_lr`: the torch pattern for ReduceLROnPlateau, stepped once per epoch by the training loop and
  written into the optimizer state.
* :func:`accumulate`: the plateau inside the optimizer, fed a metric on every update, deciding on the mean of
  every ``accumulation_size`` values.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import _checks as checks
from ._adapters import Running
from ._base import Schedule, StatefulSchedule, leaf, static
from ._inspect import get_lr as get_lr
from ._inspect import get_momentum as get_momentum
from ._numerics import Array, float_dtype, int_dtype
from ._plateau import PlateauState, ReduceLROnPlateau

__all__ = ["Accumulate", "AccumulateState", "accumulate", "get_lr", "get_momentum", "grouped", "scheduled", "set_lr"]


# ----------------------------------------------------------------------------------------------------------
# momentum


def _inner(schedule) -> Any:
    return schedule.schedule if isinstance(schedule, Running) else schedule


def _cycles_momentum(schedule) -> bool:
    return bool(getattr(_inner(schedule), "cycle_momentum", False)) and hasattr(_inner(schedule), "momentum")


def _momentum_name(factory, fn_name: str) -> str:
    params = inspect.signature(factory).parameters
    for name in ("momentum", "b1"):
        if name in params:
            return name
    raise ValueError(
        f"{fn_name}: the schedule cycles the momentum (cycle_momentum=True), but the optimizer factory "
        f"{getattr(factory, '__name__', factory)!r} has neither a 'momentum' (SGD) nor a 'b1' (Adam) argument. "
        f"torch refuses this too (optimizer must support momentum or beta1); build the schedule with "
        f"cycle_momentum=False."
    )


def _is_constant(schedule) -> bool:
    if isinstance(schedule, tuple):
        return len(schedule) > 0 and all(_is_constant(x) for x in schedule)
    return isinstance(schedule, (int, float)) and not isinstance(schedule, bool)


def _check_schedule(schedule, fn_name: str):
    ok = isinstance(schedule, (Schedule, StatefulSchedule)) or _is_constant(schedule)
    if not ok:
        raise TypeError(
            f"{fn_name}: schedule must be a jaxsched schedule, a StatefulSchedule (Running, ReduceLROnPlateau, "
            f"transformers.GreedyLR, accumulate(...)), or "
            f"a constant LR (a float, or a tuple of floats for groups, to be set with set_lr), got "
            f"schedule={schedule!r}."
        )
    if _is_constant(schedule):  # NaN, inf and negative LRs refused as every schedule constructor does
        checks.check_lr(fn_name, "schedule", schedule)


def _groups(schedule):
    if _is_constant(schedule):
        return len(schedule) if isinstance(schedule, tuple) else None
    inner = _inner(schedule)
    if isinstance(inner, Accumulate):
        inner = inner.plateau
    return inner.num_groups


# ----------------------------------------------------------------------------------------------------------
# scheduled


def scheduled(factory: Callable[..., optax.GradientTransformation], schedule, *, hyperparam_dtype=None,
              **kwargs) -> optax.GradientTransformationExtraArgs:
    """``factory(learning_rate=schedule, **kwargs)`` with the LR (and cycled momentum) following ``schedule``.

    Built on ``optax.inject_hyperparams``: the LR applied at update ``k`` is ``schedule(k)`` (torch's
    index ``k``), and ``opt_state.hyperparams['learning_rate']`` holds it after the update. When the
    schedule cycles momentum (CyclicLR/OneCycleLR with ``cycle_momentum=True``) the factory's ``momentum``
    (``optax.sgd``) or ``b1`` (``optax.adam`` and friends) follows ``schedule.momentum`` as torch's
    ``momentum`` / ``betas[0]`` does. ``schedule`` may also be :class:`jaxsched.Running`,
    :class:`jaxsched.ReduceLROnPlateau` (then pass the metric to every update:
    ``opt.update(grads, state, params, value=loss)``), :func:`accumulate`, or a constant float that
    :func:`set_lr` changes (the per-epoch plateau pattern).

    Args:
      factory: an optax optimizer factory, e.g. ``optax.sgd`` or ``optax.adam``.
      schedule: the schedule (single parameter group; use :func:`grouped` for several).
      hyperparam_dtype: passed to ``inject_hyperparams`` (e.g. ``jnp.float32`` to keep float32 optimizer
        state when ``jax_enable_x64`` is on but the parameters are float32).
      **kwargs: the factory's other arguments.

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> s = jaxsched.OneCycleLR(max_lr=1.0, total_steps=10)
    >>> opt = jaxsched.optim.scheduled(optax.sgd, s)
    >>> params = jnp.zeros(2); st = opt.init(params)
    >>> lrs = []
    >>> for k in range(3):
    ...     _, st = opt.update(jnp.ones(2), st, params)
    ...     lrs.append((round(float(st.hyperparams['learning_rate']), 6),
    ...                 round(float(st.hyperparams['momentum']), 6)))
    >>> lrs
    [(0.04, 0.95), (0.52, 0.9), (1.0, 0.85)]
    """
    _check_schedule(schedule, "scheduled")
    if _groups(schedule) is not None:
        raise ValueError(
            f"scheduled: the schedule has {_groups(schedule)} parameter groups (a tuple of LRs); use "
            f"jaxsched.optim.grouped(factory, schedule, labels) to give each labelled group its LR."
        )
    kw = dict(kwargs)
    if "learning_rate" in kw:
        raise TypeError("scheduled: learning_rate is set by the schedule; do not pass it.")
    kw["learning_rate"] = schedule
    if _cycles_momentum(schedule):
        name = _momentum_name(factory, "scheduled")
        if name in kw:
            raise TypeError(f"scheduled: {name} follows the schedule's cycled momentum; do not pass it.")
        kw[name] = _inner(schedule).momentum
    return optax.inject_hyperparams(factory, hyperparam_dtype=hyperparam_dtype)(**kw)


# ----------------------------------------------------------------------------------------------------------
# grouped


@dataclasses.dataclass(frozen=True)
class _Pick:
    """Group ``index`` of a stateful schedule's LR (each group keeps a copy of the shared state)."""

    schedule: Any
    index: int

    def init(self):
        return self.schedule.init()

    def update(self, state, **extra_args):
        return self.schedule.update(state, **extra_args)

    def __call__(self, state, **extra_args):
        return self.schedule(state, **extra_args)[self.index]


def _pick(fn, index):
    return lambda count: fn(count)[index]


def grouped(factory: Callable[..., optax.GradientTransformation], schedule, labels,
            *, group_names: Sequence | None = None, hyperparam_dtype=None,
            **kwargs) -> optax.GradientTransformationExtraArgs:
    """One schedule with a tuple of LRs applied to a params pytree split into labelled groups.

    torch's parameter groups: ``jaxsched.StepLR((0.1, 0.01), ...)`` gives group ``i`` the LR
    ``schedule(k)[i]``. ``labels`` says which group each parameter belongs to: a pytree like the params
    (or a function of the params returning one) whose leaves are group indices ``0..G-1``, or names
    listed in ``group_names`` (group ``i`` is ``group_names[i]``). Built on ``optax.multi_transform``
    with one :func:`scheduled` optimizer per group, so per-group cycled momentum follows too; stateful
    schedules (Running, ReduceLROnPlateau) keep one copy of their state per group, all stepped alike.
    ``schedule`` may also be a tuple of constant LRs, which :func:`set_lr` changes (the plateau stepped
    once per epoch by the training loop).

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> s = jaxsched.StepLR((0.1, 0.01), step_size=1, gamma=0.5)
    >>> params = {"body": jnp.zeros(2), "head": jnp.zeros(1)}
    >>> opt = jaxsched.optim.grouped(optax.sgd, s, {"body": "body", "head": "head"},
    ...                              group_names=("body", "head"))
    >>> st = opt.init(params)
    >>> for k in range(2):
    ...     upd, st = opt.update({"body": jnp.ones(2), "head": jnp.ones(1)}, st, params)
    ...     print(round(-float(upd["body"][0]), 6), round(-float(upd["head"][0]), 6))
    0.1 0.01
    0.05 0.005
    """
    _check_schedule(schedule, "grouped")
    G = _groups(schedule)
    if G is None:
        raise ValueError(
            "grouped: the schedule has a single LR; pass a tuple of LRs (one per parameter group), or use "
            "jaxsched.optim.scheduled for one group."
        )
    names = tuple(range(G)) if group_names is None else tuple(group_names)
    if len(names) != G:
        raise ValueError(f"grouped: the schedule has {G} parameter groups but group_names has {len(names)}: "
                         f"group_names={group_names!r}.")
    if len(set(names)) != G:
        raise ValueError(f"grouped: group_names must be distinct, got group_names={group_names!r}.")
    if "learning_rate" in kwargs:
        raise TypeError("grouped: learning_rate is set by the schedule; do not pass it.")
    cycles = _cycles_momentum(schedule)
    mom_name = _momentum_name(factory, "grouped") if cycles else None
    stateful = isinstance(schedule, StatefulSchedule)
    transforms = {}
    for i, name in enumerate(names):
        kw = dict(kwargs)
        if _is_constant(schedule):
            kw["learning_rate"] = float(schedule[i])
        else:
            kw["learning_rate"] = _Pick(schedule, i) if stateful else _pick(schedule, i)
        if cycles:
            assert mom_name is not None  # set with cycles
            kw[mom_name] = _pick(_inner(schedule).momentum, i)
        transforms[name] = optax.inject_hyperparams(factory, hyperparam_dtype=hyperparam_dtype)(**kw)
    if not callable(labels):
        bad = [x for x in jax.tree_util.tree_leaves(labels) if x not in names]
        if bad:
            raise ValueError(f"grouped: labels must be group names from {list(names)!r}, got {bad[0]!r}.")
    return optax.multi_transform(transforms, labels)


# ----------------------------------------------------------------------------------------------------------
# set_lr: the plateau stepped by the training loop


def set_lr(opt_state, lr, *, name: str = "learning_rate", group_names: Sequence | None = None):
    """``opt_state`` with the injected hyperparameter ``name`` set to ``lr`` (torch's ``group['lr'] = lr``).

    The torch pattern for ReduceLROnPlateau: the training loop steps the plateau once per epoch and the
    optimizer uses its LR from then on::

        opt = jaxsched.optim.scheduled(optax.sgd, plateau.lr)   # a constant LR (grouped() for a tuple)
        pstate = plateau.init()
        for epoch in range(epochs):
            ...  # updates
            pstate = plateau.update(pstate, value=val_loss)
            opt_state = jaxsched.optim.set_lr(opt_state, plateau(pstate))

    Every ``inject_hyperparams`` state inside ``opt_state`` (also inside ``optax.chain``) gets the value,
    cast to the dtype it already has, so a jitted update does not retrace. For a ``(G,)`` LR (a state
    built by :func:`grouped`), group ``i`` gets ``lr[i]``. Pure: works under ``jax.jit``.

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    >>> st = jaxsched.optim.set_lr(opt.init(jnp.zeros(1)), 0.05)
    >>> round(float(st.hyperparams["learning_rate"]), 6)
    0.05
    """
    lr = jnp.asarray(lr)
    found = []

    def is_inject(x):
        return isinstance(x, (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState))

    def set_one(st, value):
        if name not in st.hyperparams:
            raise KeyError(f"set_lr: the injected hyperparameters are {sorted(st.hyperparams)}; no {name!r}.")
        if name in getattr(st, "hyperparams_states", {}):
            raise ValueError(
                f"set_lr: {name} follows a schedule in this optimizer, which overwrites it at the next update; "
                f"build the optimizer with a constant LR to set it from the training loop, e.g. "
                f"jaxsched.optim.scheduled(optax.sgd, plateau.lr) or grouped(optax.sgd, plateau.lr, labels)."
            )
        hp = dict(st.hyperparams)
        old = jnp.asarray(hp[name])
        hp[name] = jnp.asarray(value).astype(old.dtype).reshape(old.shape)
        found.append(True)
        return st._replace(hyperparams=hp)

    if lr.ndim == 0:
        out = jax.tree_util.tree_map(lambda x: set_one(x, lr) if is_inject(x) else x, opt_state, is_leaf=is_inject)
    else:
        def visit(x):
            if isinstance(x, optax.PartitionState):
                names: list[Any] = list(range(lr.shape[0])) if group_names is None else list(group_names)
                inner = {}
                for key, sub in x.inner_states.items():
                    if key not in names:
                        raise KeyError(f"set_lr: group {key!r} is not in group_names={names!r}.")
                    i = names.index(key)
                    inner[key] = jax.tree_util.tree_map(lambda y, i=i: set_one(y, lr[i]) if is_inject(y) else y, sub,
                                                        is_leaf=is_inject)
                return x._replace(inner_states=inner)
            return x

        is_part = lambda x: isinstance(x, optax.PartitionState)  # noqa: E731
        out = jax.tree_util.tree_map(visit, opt_state, is_leaf=is_part)
    if not found:
        raise ValueError(
            "set_lr: no optax.inject_hyperparams state found in opt_state; build the optimizer with "
            "optax.inject_hyperparams(optax.sgd)(learning_rate=...) so that its LR can be set."
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# accumulate: the plateau stepped every update, deciding once per accumulation_size values


def _check_plateau(cls: str, name: str, value):
    if not isinstance(value, ReduceLROnPlateau):
        raise TypeError(f"accumulate: {name} must be a jaxsched.ReduceLROnPlateau, got {name}={value!r}.")
    return value


class AccumulateState(NamedTuple):
    """State of :func:`accumulate`.

    Attributes:
      plateau: the :class:`jaxsched.PlateauState`, stepped once per ``accumulation_size`` values.
      total: float array, shape ``()``: the sum of the values since the last plateau step.
      count: int array, shape ``()``: how many values that sum holds.
    """

    plateau: PlateauState
    total: Array
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride] - a field named as torch-free users read it


class Accumulate(StatefulSchedule):
    """A ReduceLROnPlateau stepped with the mean of every ``accumulation_size`` metric values.

    Made by :func:`accumulate`; an optax stateful schedule (``init``/``update(state, value=...)``/
    ``__call__``).

    Args:
      plateau: the :class:`jaxsched.ReduceLROnPlateau` to step.
      accumulation_size: how many values make one plateau step (a positive integer).
    """

    plateau: ReduceLROnPlateau = leaf(check=_check_plateau)
    accumulation_size: int = static(check=checks.integer(1, "a positive integer"))

    _positional = "plateau"

    @property
    def num_groups(self) -> int | None:
        return self.plateau.num_groups

    def init(self) -> AccumulateState:
        p = self.plateau.init()
        return AccumulateState(p, jnp.zeros((), p.best.dtype), jnp.zeros((), p.num_bad_epochs.dtype))

    def update(self, state: AccumulateState, value=None, **extra_args) -> AccumulateState:
        del extra_args
        if value is None:
            raise TypeError("accumulate: the metric is missing: pass value=metric to every update.")
        o = "accumulate.update"
        if not isinstance(state, AccumulateState):
            raise TypeError(f"{o}: state must be an AccumulateState (from init()), got {type(state).__name__}.")
        dtype = float_dtype()
        total = checks.state_float(o, "total", state.total, dtype)  # a restored state: checked and cast
        count = checks.state_count(o, "count", state.count, int_dtype(), below=self.accumulation_size)
        total = total + checks.metric(o, value, dtype)
        count = count + 1  # < accumulation_size before (checked above, or kept so by every update)
        full = count >= self.accumulation_size
        stepped = self.plateau.update(state.plateau, value=total / self.accumulation_size)
        plateau = jax.tree_util.tree_map(lambda new, old: jnp.where(full, new, old), stepped, state.plateau)
        return AccumulateState(plateau, jnp.where(full, jnp.zeros_like(total), total),
                               jnp.where(full, jnp.zeros_like(count), count))

    def __call__(self, state: AccumulateState, **extra_args) -> Array:
        del extra_args
        checks.state_of("accumulate", state, AccumulateState, "s.update(state, value=metric)")
        return self.plateau(state.plateau)


def accumulate(plateau: ReduceLROnPlateau, accumulation_size: int) -> Accumulate:
    """Step ``plateau`` with the mean of every ``accumulation_size`` values given to ``update``.

    For the plateau inside the optimizer, fed the minibatch loss on every update: it decides once per
    ``accumulation_size`` updates (an epoch) on the mean loss, with torch's decisions (compare
    ``optax.contrib.reduce_on_plateau(accumulation_size=...)``, which cuts one epoch earlier). The mean is
    the sum in update order divided by ``accumulation_size``.

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> p = jaxsched.optim.accumulate(jaxsched.ReduceLROnPlateau(0.1, patience=0, factor=0.5), 2)
    >>> opt = jaxsched.optim.scheduled(optax.sgd, p)
    >>> params = jnp.zeros(1); st = opt.init(params)
    >>> lrs = []
    >>> for loss in [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]:
    ...     _, st = opt.update(jnp.ones(1), st, params, value=loss)
    ...     lrs.append(round(float(st.hyperparams["learning_rate"]), 6))
    >>> lrs
    [0.1, 0.1, 0.1, 0.1, 0.05, 0.05]
    """
    return Accumulate(plateau, accumulation_size)
