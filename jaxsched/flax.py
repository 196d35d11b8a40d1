"""Flax linen: a ``TrainState`` whose ``apply_gradients`` forwards extra arguments (``value=loss``) to the optimizer.

``flax.training.train_state.TrainState.apply_gradients(grads=g, **kwargs)`` treats every keyword as a field
to ``replace``, so ``apply_gradients(grads=g, value=loss)`` never reaches ``tx.update``, and an optimizer
whose schedule needs the metric (the in-optimizer plateau of :func:`jaxsched.optim.scheduled`) fails with
"the metric is missing". :class:`TrainState` keeps flax's behaviour for its fields and passes every other
keyword to ``tx.update(grads, opt_state, params, **extra)``, optax's extra-arguments protocol.

Flax NNX: :func:`set_optimizer_lr` is :func:`jaxsched.optim.set_lr` for an ``nnx.Optimizer``. Assigning
``optimizer.opt_state = jaxsched.optim.set_lr(optimizer.opt_state, lr)`` works but turns the LR's
``nnx.OptArray`` into a bare array: ``nnx.state(optimizer, nnx.OptState)`` (what a checkpoint saves) no longer
holds the LR, and the next ``nnx.jit`` call retraces. This writes the value into the existing variables.

Importing this module needs ``flax`` (``pip install "jaxsched[flax]"``).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import optax

try:
    from flax.training import train_state
except ModuleNotFoundError as err:  # the extra is missing: say which
    if (err.name or "").split(".")[0] != "flax":
        raise
    raise ModuleNotFoundError("jaxsched.flax needs flax: pip install 'jaxsched[flax]'", name=err.name) from None

from . import optim
from ._inspect import get_lr

__all__ = ["TrainState", "reads_a_metric", "set_optimizer_lr"]


class TrainState(train_state.TrainState):
    """``flax.training.train_state.TrainState`` whose ``apply_gradients`` forwards extra keywords to ``tx.update``.

    A drop-in subclass: ``create``, the fields and the pytree are flax's. In ``apply_gradients``,
    keywords that name a field of the state (including fields of your own subclass) are replaced as flax
    does; every other keyword (``value=loss`` for :class:`jaxsched.ReduceLROnPlateau` inside the optimizer)
    is passed to ``tx.update``. The property :attr:`lr` is the LR the last update applied
    (:func:`jaxsched.optim.get_lr` on ``opt_state``).

    Args:
      step: the number of ``apply_gradients`` calls, 0 from ``create``.
      apply_fn: usually ``model.apply`` (static).
      params: the parameters.
      tx: the optax optimizer (static); one that takes extra arguments to ``update``
        (``optax.GradientTransformationExtraArgs``, as every ``jaxsched.optim`` optimizer is) when extra
        keywords are given.
      opt_state: ``tx``'s state.

    >>> import jax.numpy as jnp, optax, jaxsched
    >>> from jaxsched.flax import TrainState
    >>> plateau = jaxsched.ReduceLROnPlateau(0.1, patience=0, factor=0.5)
    >>> state = TrainState.create(apply_fn=lambda p, x: p * x, params=jnp.ones(2),
    ...                           tx=jaxsched.optim.scheduled(optax.sgd, plateau))
    >>> for loss in [1.0, 2.0, 2.0]:
    ...     state = state.apply_gradients(grads=jnp.ones(2), value=loss)
    >>> round(float(state.lr), 6)     # the LR of the third update: cut once, after the second loss
    0.05
    """

    def apply_gradients(self, *, grads, **kwargs) -> Any:
        """``step + 1``, params and opt_state updated; field keywords replaced, other keywords sent to ``tx.update``.

        Args:
          grads: gradients with the structure of ``params``.
          **kwargs: fields of the state to replace (flax's meaning), and extra arguments for ``tx.update``
            (e.g. ``value=loss``).
        """
        fields = {f.name for f in dataclasses.fields(self)}
        replace = {k: v for k, v in kwargs.items() if k in fields}
        extra = {k: v for k, v in kwargs.items() if k not in fields}
        if extra and not isinstance(self.tx, optax.GradientTransformationExtraArgs):
            raise TypeError(
                f"TrainState.apply_gradients: {sorted(extra)} are not fields of {type(self).__name__}, so they "
                f"would go to tx.update, but tx is a plain optax.GradientTransformation that takes no extra "
                f"arguments; build it with jaxsched.optim.scheduled / optax.inject_hyperparams, or wrap it in "
                f"optax.with_extra_args_support if it should ignore them."
            )
        if "value" in extra and not reads_a_metric(self.opt_state):
            warnings.warn(
                "TrainState.apply_gradients: value= goes to tx.update, but nothing in tx reads a metric (its "
                "state holds no ReduceLROnPlateau, GreedyLR, timm PlateauLRScheduler or "
                "optax.contrib.reduce_on_plateau state), so the value is ignored. To cut the LR on a plateau, "
                "build tx with jaxsched.optim.scheduled(optax.adam, jaxsched.ReduceLROnPlateau(lr)); if a "
                "transformation of your own reads value=, filter this warning.",
                UserWarning, stacklevel=2)
        owg = getattr(train_state, "OVERWRITE_WITH_GRADIENT", "_overwrite_with_gradient")
        with_owg = not isinstance(grads, jax.Array) and owg in grads
        grads_opt = grads["params"] if with_owg else grads
        params_opt = self.params["params"] if with_owg else self.params
        updates, opt_state = self.tx.update(grads_opt, self.opt_state, params_opt, **extra)
        new_params = optax.apply_updates(params_opt, updates)
        if with_owg:
            new_params = {"params": new_params, owg: grads[owg]}
        return self.replace(step=self.step + 1, params=new_params, opt_state=opt_state, **replace)

    @property
    def lr(self) -> jax.Array:
        """The LR the last update applied (``jaxsched.optim.get_lr(self.opt_state)``)."""
        return get_lr(self.opt_state)


def reads_a_metric(opt_state: Any) -> bool:
    """Whether an optimizer state holds the state of something that reads ``value=`` in ``update``.

    The known readers: jaxsched's metric-driven schedules (ReduceLROnPlateau, ``optim.accumulate``,
    ``transformers.GreedyLR``, ``timm.PlateauLRScheduler``) inside ``optax.inject_hyperparams`` /
    :func:`jaxsched.optim.scheduled`, and ``optax.contrib.reduce_on_plateau``. A transformation of your own that
    reads ``value=`` is not known here.
    """
    from . import timm as _timm
    from ._plateau import PlateauState
    from .transformers._greedy import GreedyLRState

    kinds: tuple[type, ...] = (PlateauState, _timm.PlateauState, GreedyLRState)
    contrib = getattr(optax, "contrib", None)
    if contrib is not None and hasattr(contrib, "ReduceLROnPlateauState"):
        kinds += (contrib.ReduceLROnPlateauState,)
    found = False

    def visit(x) -> bool:
        nonlocal found
        if isinstance(x, kinds):
            found = True
            return True
        return False

    jax.tree_util.tree_leaves(opt_state, is_leaf=visit)
    return found


def set_optimizer_lr(optimizer, lr, *, name: str = "learning_rate", group_names=None) -> None:
    """Set the injected ``name`` of an ``nnx.Optimizer`` in place, keeping its ``nnx.Variable`` containers.

    The NNX form of :func:`jaxsched.optim.set_lr` (same arguments after ``optimizer``): the torch pattern of a
    ReduceLROnPlateau stepped once per epoch by the training loop, whose LR the optimizer uses from then on.
    Each variable holding the hyperparameter gets its new value (same dtype and shape), so the optimizer's
    state keeps its structure: ``nnx.state(optimizer, nnx.OptState)`` still holds the LR and a jitted train
    step does not retrace.

    Args:
      optimizer: a ``flax.nnx.Optimizer`` built with an injected, constant ``name``
        (``jaxsched.optim.scheduled(optax.sgd, plateau.lr)``).
      lr: the new value (a scalar, or one per group for an optimizer built by ``jaxsched.optim.grouped``).
      name: the hyperparameter. Default ``"learning_rate"``.
      group_names: as in :func:`jaxsched.optim.set_lr`. Default ``None``.
    """
    from flax import nnx  # flax.nnx is imported only by this function

    def is_var(x):
        return isinstance(x, nnx.Variable)

    old = jax.tree_util.tree_leaves(optimizer.opt_state, is_leaf=is_var)
    new = jax.tree_util.tree_leaves(optim.set_lr(optimizer.opt_state, lr, name=name, group_names=group_names),
                                    is_leaf=is_var)
    if len(old) != len(new):
        raise ValueError(f"set_optimizer_lr: the optimizer state changed structure ({len(old)} leaves became "
                         f"{len(new)}); is optimizer a flax.nnx.Optimizer?")
    for var, value in zip(old, new):
        if is_var(var) and not is_var(value):
            if hasattr(var, "set_value"):   # flax >= 0.12 (the .value setter is deprecated there)
                var.set_value(value)
            else:
                var.value = value
