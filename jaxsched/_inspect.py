"""Reading back the hyperparameters an optax optimizer state last applied: ``get_lr`` and ``get_momentum``.

``optax.tree_utils.tree_get(opt_state, "learning_rate")`` fails on every state built with an injected
schedule: ``inject_hyperparams`` keeps the value under ``hyperparams["learning_rate"]`` *and* the schedule's
state under ``hyperparams_states["learning_rate"]``, so the key is found twice ("Found multiple values"),
and a state built by :func:`jaxsched.optim.grouped` holds one value per group. These functions look only at
``hyperparams`` of every ``inject_hyperparams`` state, through ``optax.chain``, ``optax.MultiSteps``,
masks and the partition of :func:`jaxsched.optim.grouped`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["get_lr", "get_momentum"]

_INJECT = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


def _is_node(x) -> bool:
    return isinstance(x, (*_INJECT, optax.PartitionState))


def _find(state, names: tuple[str, ...]) -> list[tuple[tuple, Any]]:
    """Every ``(group path, value)`` of the first of ``names`` found in each inject state inside ``state``."""
    found: list[tuple[tuple, Any]] = []
    for node in jax.tree_util.tree_leaves(state, is_leaf=_is_node):
        if isinstance(node, optax.PartitionState):
            for key, sub in node.inner_states.items():
                found.extend(((key, *path), value) for path, value in _find(sub, names))
        elif isinstance(node, _INJECT):
            for name in names:
                if name in node.hyperparams:
                    found.append(((), node.hyperparams[name]))
                    break
    return found


def _get(fn_name: str, opt_state, names: tuple[str, ...], group_names: Sequence | None):
    found = _find(opt_state, names)
    what = " or ".join(repr(n) for n in names)
    if not found:
        raise ValueError(
            f"{fn_name}: no optax.inject_hyperparams state with a {what} hyperparameter was found in opt_state; "
            f"build the optimizer with jaxsched.optim.scheduled / grouped (or optax.inject_hyperparams) so that "
            f"the applied value is recorded in the state."
        )
    ungrouped = [value for path, value in found if not path]
    if ungrouped and len(found) > len(ungrouped):
        raise ValueError(f"{fn_name}: opt_state holds {what} both inside and outside a parameter-group partition; "
                         f"read the partition's inner_states separately.")
    if ungrouped:
        if len(ungrouped) > 1:
            raise ValueError(
                f"{fn_name}: opt_state holds {len(ungrouped)} injected {what} values outside any parameter-group "
                f"partition (several inject_hyperparams in one chain), so which one is 'the' LR is ambiguous; "
                f"read them from the chain's states, e.g. opt_state[i].hyperparams."
            )
        return jnp.asarray(ungrouped[0])
    by_group: dict[Any, Any] = {}
    for path, value in found:
        key = path[0]
        if key in by_group or len(path) > 1:
            raise ValueError(f"{fn_name}: group {key!r} holds more than one injected {what}; nested partitions "
                             f"are not supported.")
        by_group[key] = value
    if group_names is None:
        keys = sorted(by_group, key=repr)
        if set(by_group) != set(range(len(by_group))):
            raise ValueError(
                f"{fn_name}: the parameter groups are named {keys!r}; pass group_names=(...) in the order of the "
                f"schedule's LR tuple (as given to jaxsched.optim.grouped) to say which is group 0, 1, ..."
            )
        order: list = list(range(len(by_group)))
    else:
        order = list(group_names)
        missing = [name for name in order if name not in by_group]
        if missing:
            raise KeyError(f"{fn_name}: group_names={tuple(group_names)!r} names {missing[0]!r}, but opt_state's "
                           f"groups with an injected {what} are {sorted(by_group, key=repr)!r}.")
    return jnp.stack([jnp.asarray(by_group[name]) for name in order])


def get_lr(opt_state, *, group_names: Sequence | None = None) -> jax.Array:
    """The learning rate the last update applied, read from any optimizer state built with jaxsched.optim.

    Finds the ``inject_hyperparams`` state anywhere in ``opt_state`` (inside ``optax.chain``,
    ``optax.MultiSteps``, masks) and returns its ``hyperparams["learning_rate"]``: after update ``k`` that
    is the LR update ``k`` used (``schedule(k)``, torch's index ``k``); before the first update it is the LR
    the first update will use. For a state built by :func:`jaxsched.optim.grouped` it returns the ``(G,)``
    array of the groups' LRs in group order. Pure: works under ``jax.jit``.

    Args:
      opt_state: the optimizer state.
      group_names: for a grouped state whose groups have names, the names in the order of the schedule's
        LR tuple (as passed to :func:`jaxsched.optim.grouped`). Default ``None``: groups ``0..G-1``.

    Returns:
      A scalar array, or a ``(G,)`` array for a grouped state.

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> from jaxsched._inspect import get_lr   # public as jaxsched.optim.get_lr
    >>> opt = optax.chain(optax.clip_by_global_norm(1.0),
    ...                   jaxsched.optim.scheduled(optax.sgd, jaxsched.StepLR(0.1, step_size=1, gamma=0.5)))
    >>> params = jnp.zeros(2); st = opt.init(params)
    >>> for k in range(2):
    ...     _, st = opt.update(jnp.ones(2), st, params)
    ...     print(round(float(get_lr(st)), 6))
    0.1
    0.05
    """
    return _get("get_lr", opt_state, ("learning_rate",), group_names)


def get_momentum(opt_state, *, group_names: Sequence | None = None) -> jax.Array:
    """The momentum the last update applied: SGD's ``momentum``, or Adam's ``b1`` (torch's ``betas[0]``).

    Same search as :func:`get_lr`. When the schedule cycles momentum (``OneCycleLR``, ``CyclicLR`` with
    ``cycle_momentum=True``) this is ``schedule.momentum(k)`` after update ``k``; otherwise it is the
    constant the optimizer was built with.

    Args:
      opt_state: the optimizer state.
      group_names: as in :func:`get_lr`. Default ``None``.

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> from jaxsched._inspect import get_momentum   # public as jaxsched.optim.get_momentum
    >>> opt = jaxsched.optim.scheduled(optax.adam, jaxsched.OneCycleLR(max_lr=1.0, total_steps=10))
    >>> params = jnp.zeros(2); st = opt.init(params)
    >>> _, st = opt.update(jnp.ones(2), st, params)
    >>> round(float(get_momentum(st)), 6)
    0.95
    """
    return _get("get_momentum", opt_state, ("momentum", "b1"), group_names)
