"""The two kinds of jaxsched schedule: :class:`Schedule` (step -> LR) and :class:`StatefulSchedule`.

A :class:`Schedule` answers, for torch's scheduler of the same name, the questions torch's own code answers:

* ``_get_closed_form_lr(e, dtype)`` (abstract; torch's ``_get_closed_form_lr``): the LR torch holds after ``e``
  calls of ``scheduler.step()``.
* ``_get_lr(e, dtype)`` (torch's chainable ``get_lr``): the ``e``-th ``step()`` (``e >= 1``) as an
  :class:`Affine` map of the LR the optimizer holds, ``lr_new = A * lr + C``; ``_get_initial_lr(dtype)`` is the
  effect of the constructor (index 0). ChainedScheduler and the running form (:class:`jaxsched.Running`) are
  built from these. The default is absolute (``A = 0``): the closed form overwrites the LR.
* ``_restart(prev, j, dtype)`` and ``_restart_affine(dtype)``: the value ``j`` steps after SequentialLR switched
  to this schedule at a milestone, where ``prev`` is the LR held just before it (needed only when the class sets
  ``_uses_prev``: MultiplicativeLR and SWALR continue from the held LR; the rest restart their closed form).

Class attributes instead of type tests: ``_loops`` (why the closed form runs one loop iteration per step, or
``None``) and ``_group_keys`` (fields torch keeps in the optimizer's param groups, which the members of a
composite must agree on). Every hook is described, with worked examples, on the docs page "Writing a schedule"
(``docs/writing-a-schedule.md``).

A :class:`MultiplicativeSchedule` is one whose every step is ``lr *= factor``: it declares ``_factor(e, dtype)``
and gets the closed form ``lr * factor(e)``; a ChainedScheduler of such members has a closed form too.

A :class:`StatefulSchedule` is optax's stateful-schedule protocol (``init()``, ``update(state, **metrics)``,
``__call__(state)``): ReduceLROnPlateau, transformers' GreedyLR, :class:`jaxsched.Running`, and
``jaxsched.optim.accumulate``. ``metric_driven`` says whether ``update`` needs a metric (``value=``).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple

import jax.numpy as jnp
from jax import lax

from ._checks import num_groups as _num_groups
from ._numerics import Array, arr, as_step, float_dtype, int_dtype, map_steps
from ._value import REGISTRY, Value, from_config, leaf, static

#: A learning rate argument: a float, or a tuple of floats (one per parameter group).
LR = float | tuple

__all__ = ["LR", "Affine", "MultiplicativeSchedule", "REGISTRY", "Schedule", "StatefulSchedule", "Value",
           "from_config", "leaf", "static"]


class Affine(NamedTuple):
    """torch's chainable update as an affine map of the LR the optimizer holds: ``lr_new = A * lr + C``.

    What a schedule's ``_get_lr`` (one ``step()``), ``_get_initial_lr`` (the constructor) and ``_restart_affine``
    (a SequentialLR milestone) return, so that ChainedScheduler and :class:`Running` can apply each member's
    update to whatever LR the optimizer holds, as torch's recursive ``get_lr`` does (see "Writing a schedule").
    ``Affine(0.0, lr_e)`` overwrites the LR with a closed-form value; ``Affine(factor, 0.0)`` multiplies it, so
    an LR changed outside the scheduler keeps being multiplied.

    Attributes:
      A: the factor on the LR held: a float, or an array of shape ``()`` or ``(G,)`` (one per parameter group).
      C: the term added after the multiplication: a float, or an array of shape ``()`` or ``(G,)``.

    >>> from jaxsched import Affine
    >>> halve = Affine(0.5, 0.0)                     # StepLR's decay step: lr *= 0.5
    >>> halve.then(Affine(1.0, 0.01))                # then add 0.01
    Affine(A=0.5, C=0.01)
    >>> round(float(halve.then(Affine(1.0, 0.01)).apply(0.2)), 6)
    0.11
    """

    A: Any
    C: Any

    def apply(self, lr: Array) -> Array:
        return self.A * lr + self.C

    def then(self, other: Affine) -> Affine:
        """This map followed by ``other`` (the next member of a ChainedScheduler)."""
        return Affine(other.A * self.A, other.A * self.C + other.C)


#: ``lr`` unchanged.
IDENTITY = Affine(1.0, 0.0)


class Schedule(Value, abc.ABC):
    """Base class: a torch LR scheduler as an immutable, jittable function of the step.

    ``s(step)`` is the LR torch holds after ``step`` calls of ``scheduler.step()``: a scalar array, or shape
    ``(G,)`` with ``G`` parameter groups. It is an ``optax.Schedule`` as it stands.
    """

    _positional = "lr"
    #: True when ``_restart`` needs ``prev`` (the LR before a SequentialLR milestone).
    _uses_prev: ClassVar[bool] = False
    #: Fields torch keeps in the optimizer's param groups (SWALR's ``swa_lr``), so the schedule constructed last
    #: sets them for all: the members of a SequentialLR/ChainedScheduler must agree on them.
    _group_keys: ClassVar[tuple[str, ...]] = ()

    # -- the public interface ------------------------------------------------------------------------------

    def __call__(self, step) -> Array:
        """The LR torch holds after ``step`` calls of ``scheduler.step()`` (0 = right after construction)."""
        e = as_step(step, type(self).__name__)
        self._check_step(step)
        dtype = float_dtype()
        return map_steps(lambda x: self._get_closed_form_lr(x, dtype), e)

    @property
    def num_groups(self) -> int | None:
        """Number of parameter groups (``None`` when every argument is a scalar: ``s(step)`` is a scalar).

        Only float hyperparameters (the pytree leaves) are per group: MultiStepLR's milestones are a tuple too.
        """
        return _num_groups(*(getattr(self, n) for n in self._leaf_names))

    # -- torch's two questions ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _get_closed_form_lr(self, e: Array, dtype) -> Array:
        """The LR after ``e`` calls of ``step()`` (``e`` a non-negative integer array)."""

    def _get_initial_lr(self, dtype) -> Affine:
        """Effect of the constructor on the LR the optimizer holds; default: the closed form at 0."""
        return Affine(0.0, self._get_closed_form_lr(jnp.zeros((), int_dtype()), dtype))

    def _get_lr(self, e: Array, dtype) -> Affine:
        """Effect of the ``e``-th ``step()`` (``e >= 1``) on the current LR; default: the closed form."""
        return Affine(0.0, self._get_closed_form_lr(e, dtype))

    # -- SequentialLR ---------------------------------------------------------------------------------------

    def _restart(self, prev: Array | None, j: Array, dtype) -> Array:
        """Value ``j`` steps after a SequentialLR milestone switched to this schedule (default: closed form)."""
        return self._get_closed_form_lr(j, dtype)

    def _restart_affine(self, dtype) -> Affine:
        """The restart at a milestone (index 0) as an affine map of the LR held before it."""
        return Affine(0.0, self._restart(None, jnp.zeros((), int_dtype()), dtype))

    # -- hooks with defaults --------------------------------------------------------------------------------

    @property
    def _base(self):
        """The optimizer's initial LR (``base_lrs``) that this schedule was built on."""
        return getattr(self, "lr")

    def _check_step(self, step) -> None:
        """Eager checks on a concrete step (e.g. OneCycleLR past its end)."""

    @property
    def _loops(self) -> str | None:
        """Why ``_get_closed_form_lr`` runs one loop iteration per step, or ``None`` when it is O(1) (the default).

        Such a schedule refuses huge concrete steps and :class:`jaxsched.Running` follows its recursion."""
        return None

    def _check_in_composite(self, owner: str, index: int) -> None:
        """Raise if this schedule cannot be a member of a SequentialLR/ChainedScheduler."""


class MultiplicativeSchedule(Schedule):
    """A schedule whose every step is ``lr *= factor``: the closed form is ``lr * factor(e)``."""

    @abc.abstractmethod
    def _factor(self, e: Array, dtype) -> Array:
        """``lr_e / lr``: the product of the factors of steps ``1..e`` (and the constructor's)."""

    def _get_closed_form_lr(self, e: Array, dtype) -> Array:
        return arr(self._base, dtype) * self._factor(e, dtype)

    def _get_initial_lr(self, dtype) -> Affine:
        return Affine(self._factor(jnp.zeros((), int_dtype()), dtype), 0.0)


class StatefulSchedule(Value, abc.ABC):
    """optax's stateful-schedule protocol as a jaxsched value: ``init()``, ``update(state, **metrics)``,
    ``__call__(state)``.

    The configuration is the immutable value; the state is a pytree (a NamedTuple of arrays), so the schedule
    runs under ``jax.jit``, in ``lax.scan`` and ``jax.vmap``, and
    ``optax.inject_hyperparams(optax.sgd)(learning_rate=s)`` steps it at every update.
    """

    #: True when ``update`` needs a metric (``value=``): such a schedule cannot be a function of the step.
    metric_driven: ClassVar[bool] = True

    @abc.abstractmethod
    def init(self) -> Any:
        """The state right after construction."""

    @abc.abstractmethod
    def update(self, state: Any, **extra_args: Any) -> Any:
        """One step: the next state."""

    @abc.abstractmethod
    def __call__(self, state: Any, **extra_args: Any) -> Array:
        """The LR in ``state``."""

    @property
    def num_groups(self) -> int | None:
        """Number of parameter groups (``None``: a single scalar LR)."""
        return _num_groups(*(getattr(self, n) for n in self._leaf_names))


def scan_metrics(schedule: StatefulSchedule, metrics: Array) -> Array:
    """The LR of ``schedule`` after ``k`` calls of ``update(state, value=metrics[k-1])``, ``k = 0 .. len(metrics)``,
    stacked on a new first axis: one ``lax.scan``, traceable (jit it as a whole). Shared by ``jaxsched plot
    --metrics`` and the parity runner."""
    def body(state, m):
        state = schedule.update(state, value=m)
        return state, jnp.asarray(schedule(state))

    state0 = schedule.init()
    _, lrs = lax.scan(body, state0, metrics)
    return jnp.concatenate([jnp.asarray(schedule(state0))[None], lrs])


def refuse_stateful(owner: str, name: str, value: Any) -> None:
    """Raise the one message for a StatefulSchedule given where only a function of the step works."""
    if isinstance(value, StatefulSchedule):
        what = ("is driven by a metric (update(state, value=metric)), not by the step"
                if value.metric_driven else "carries its own state")
        raise TypeError(
            f"{owner}: {name} must be a schedule of the step, got {type(value).__name__}, which {what}; "
            f"it needs s(step). Give {type(value).__name__} to jaxsched.optim.scheduled/grouped directly."
        )


_ = (leaf, static, REGISTRY, from_config)
