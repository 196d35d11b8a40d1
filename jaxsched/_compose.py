"""SequentialLR, ChainedScheduler, and the running (stateful, O(1) per step) form of any schedule."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ._base import (
    Array,
    Schedule,
    _values_equal,
    arr,
    check_int,
    float_dtype,
    int_dtype,
    schedule_class,
)
from ._schedules import MultiplicativeLR, _set


def _check_members(owner: str, schedulers) -> tuple:
    if isinstance(schedulers, Schedule) or not hasattr(schedulers, "__iter__"):
        raise TypeError(f"{owner}: schedulers must be a list of jaxsched schedules, got schedulers={schedulers!r}.")
    members = tuple(schedulers)
    if not members:
        if owner == "SequentialLR":
            raise ValueError("SequentialLR: SequentialLR expects at least one scheduler, but got no scheduler.")
        raise ValueError(
            "ChainedScheduler: ChainedScheduler expects at least one scheduler to be chained, but got no scheduler."
        )
    lr = None
    for i, s in enumerate(members):
        if type(s).__name__ == "ReduceLROnPlateau":
            raise ValueError(
                f"{owner}: {owner} does not support `ReduceLROnPlateau` scheduler as it requires additional "
                f"kwargs to be specified when calling `step`, but got one at index {i} in the given schedulers "
                f"sequence."
            )
        if not isinstance(s, Schedule):
            raise TypeError(f"{owner}: {owner} at index {i} should be a jaxsched schedule, got {s!r}.")
        if isinstance(s, (SequentialLR, ChainedScheduler)):
            raise ValueError(
                f"{owner}: schedulers[{i}] is a {type(s).__name__}; jaxsched does not nest composite schedules "
                f"(torch's nested SequentialLR is off by one step). Flatten them into one {owner}."
            )
        s._check_in_composite(owner, i)
        if lr is None:
            lr = s._base
        elif not _values_equal(s._base, lr):
            raise ValueError(
                f"{owner}: {owner} expects all schedulers to belong to the same optimizer (the same initial "
                f"lr), but schedulers[{i}] has lr={s._base!r} and schedulers[0] has lr={lr!r}."
            )
    swalrs = [(i, s) for i, s in enumerate(members) if type(s).__name__ == "SWALR"]
    for i, s in swalrs[1:]:
        j, first = swalrs[0]
        if not _values_equal(s.swa_lr, first.swa_lr):
            raise ValueError(
                f"{owner}: schedulers[{i}] has swa_lr={s.swa_lr!r} but schedulers[{j}] has swa_lr={first.swa_lr!r}: "
                f"torch's SWALR stores swa_lr in the optimizer's param groups, so the SWALR constructed last sets "
                f"it for every SWALR on that optimizer. Give every SWALR member the same swa_lr."
            )
    return members


def _select(index: Array, values: list[Array]) -> Array:
    out = values[-1]
    for i in reversed(range(len(values) - 1)):
        out = jnp.where(index == i, values[i], out)
    return out


class _Composite(Schedule):
    """A schedule made of member schedules that share one optimizer (one initial LR)."""

    schedulers: tuple

    @property
    def _base(self):
        return self.schedulers[0]._base

    @property
    def num_groups(self):
        return self.schedulers[0].num_groups


@schedule_class
class SequentialLR(_Composite):
    """Run ``schedulers`` one after another, switching at ``milestones``: torch's SequentialLR.

    At a milestone torch restarts the next schedule from its own index 0 (computed from the initial LR,
    not from where the previous schedule left off); MultiplicativeLR and SWALR instead continue from the LR
    the optimizer holds. The previous schedule never shows its value at the milestone.

    >>> import jaxsched
    >>> warmup = jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=3)
    >>> cosine = jaxsched.CosineAnnealingLR(0.1, T_max=4)
    >>> s = jaxsched.SequentialLR([warmup, cosine], milestones=[3])
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.01, 0.04, 0.07, 0.1, 0.085355, 0.05, 0.014645, 0.0]
    """

    schedulers: tuple
    milestones: tuple

    _leaves = ("schedulers",)
    _positional = "schedulers"

    def __post_init__(self):
        members = _check_members("SequentialLR", self.schedulers)
        ms = self.milestones
        if not hasattr(ms, "__iter__"):
            raise TypeError(f"SequentialLR: milestones must be a list of integers, got milestones={ms!r}.")
        ms = tuple(check_int("SequentialLR", f"milestones[{i}]", m, minimum=0) for i, m in enumerate(ms))
        if len(ms) != len(members) - 1:
            raise ValueError(
                "SequentialLR: Sequential Schedulers expects number of schedulers provided to be one more than "
                f"the number of milestone points, but got number of schedulers {len(members)} and the number "
                f"of milestones to be equal to {len(ms)} (milestones={list(ms)!r})."
            )
        if any(b < a for a, b in zip(ms, ms[1:])):
            raise ValueError(f"SequentialLR: milestones must be sorted (non-decreasing), got milestones={list(ms)!r}.")
        _set(self, "schedulers", members)
        _set(self, "milestones", ms)

    def _stage(self, e):
        if not self.milestones:
            return jnp.zeros_like(e)
        ms = jnp.asarray(self.milestones, int_dtype())
        return jnp.sum(ms <= e[..., None], axis=-1, dtype=e.dtype)

    def _value(self, e, dtype, stages: int | None = None):
        """The LR at ``e``, using only the first ``stages`` schedules (all by default)."""
        n = len(self.schedulers) if stages is None else stages
        values = [self.schedulers[0]._value(e, dtype)]
        for i, m in enumerate(self.milestones[: n - 1], start=1):
            s = self.schedulers[i]
            j = jnp.maximum(e - m, 0)
            if m == 0:  # switched to at construction: a fresh start from the initial LR
                values.append(s._value(e, dtype))
                continue
            # the LR the optimizer held just before the milestone (earlier stages only)
            prev = self._value(jnp.asarray(m - 1, int_dtype()), dtype, stages=i) if s._uses_prev else None
            values.append(s._restart(prev, j, dtype))
        shape = jnp.broadcast_shapes(*(x.shape for x in values))
        values = [jnp.broadcast_to(v, shape) for v in values]
        return _select(jnp.minimum(self._stage(e), n - 1), values)

    def _affine(self, e, dtype):
        As, Cs = [], []
        for i, s in enumerate(self.schedulers):
            m = 0 if i == 0 else self.milestones[i - 1]
            A, C = s._affine(jnp.maximum(e - m, 1), dtype)
            if i > 0 and m > 0:
                A0, C0 = _restart_affine(s, dtype)
                at = e == m
                A, C = jnp.where(at, A0, A), jnp.where(at, C0, C)
            As.append(jnp.asarray(A, dtype))
            Cs.append(jnp.asarray(C, dtype))
        shape = jnp.broadcast_shapes(*(x.shape for x in As + Cs))
        stage = self._stage(e)
        return (_select(stage, [jnp.broadcast_to(a, shape) for a in As]),
                _select(stage, [jnp.broadcast_to(c, shape) for c in Cs]))


def _restart_affine(s: Schedule, dtype):
    """The restart at a milestone (index 0 of ``s``) as an affine map of the LR held before it."""
    if isinstance(s, MultiplicativeLR):
        return s._f(jnp.zeros((), int_dtype()), dtype), 0.0
    if type(s).__name__ == "SWALR":
        return s._init_affine(dtype)
    return 0.0, s._restart(None, jnp.zeros((), int_dtype()), dtype)


@schedule_class
class ChainedScheduler(_Composite):
    """Step every schedule in turn on the same LR: torch's ChainedScheduler.

    torch's ChainedScheduler is sequential mutation of the optimizer's LR, not a product of schedules:
    each member applies its own chainable update (``lr *= factor`` for StepLR, ExponentialLR, ...; an
    affine update for CosineAnnealingLR and SWALR; an overwrite for LambdaLR and
    CosineAnnealingWarmRestarts) to whatever LR the members before it left. When every member is
    multiplicative ``s(e)`` is the closed form ``lr * prod(factors)``; otherwise ``s(e)`` replays the ``e``
    steps (a loop per call: fine for plots and checks, not in a training step: use
    :class:`jaxsched.Running` there, O(1) per step).

    >>> import jaxsched
    >>> s = jaxsched.ChainedScheduler([jaxsched.ConstantLR(0.1, factor=0.1, total_iters=3),
    ...                                jaxsched.ExponentialLR(0.1, gamma=0.9)])
    >>> [round(float(s(k)), 6) for k in range(5)]
    [0.01, 0.009, 0.0081, 0.0729, 0.06561]
    """

    schedulers: tuple

    _leaves = ("schedulers",)
    _positional = "schedulers"

    def __post_init__(self):
        _set(self, "schedulers", _check_members("ChainedScheduler", self.schedulers))

    @property
    def closed_form(self) -> bool:
        """Whether ``s(step)`` is O(1) (every member multiplicative with a closed-form factor)."""
        return all(
            s._multiplicative and (not isinstance(s, MultiplicativeLR) or s.step_independent)
            for s in self.schedulers
        )

    def _init_affine(self, dtype):
        A, C = jnp.ones((), dtype), jnp.zeros((), dtype)
        for s in self.schedulers:
            a, c = s._init_affine(dtype)
            A, C = a * A, a * C + c
        return A, C

    def _affine(self, e, dtype):
        A, C = jnp.ones((), dtype), jnp.zeros((), dtype)
        for s in self.schedulers:
            a, c = s._affine(e, dtype)
            A, C = a * A, a * C + c
        return A, C

    def _value(self, e, dtype):
        b = arr(self._base, dtype)
        if self.closed_form:
            out = b
            for s in self.schedulers:
                out = out * s._factor(e, dtype)
            return out
        A0, C0 = self._init_affine(dtype)
        lr0 = A0 * b + C0

        def body(i, lr):
            A, C = self._affine(i, dtype)
            return A * lr + C

        return lax.fori_loop(jnp.ones((), e.dtype), e + 1, body, jnp.broadcast_to(lr0, b.shape))


# --------------------------------------------------------------------------------------------------------
# the running form


class RunningState(NamedTuple):
    """State of :class:`Running`: torch's ``last_epoch`` and the LR the optimizer holds.

    Attributes:
      last_epoch: int array, the number of ``step()`` calls so far.
      lr: float array, shape ``()`` or ``(G,)``.
    """

    last_epoch: Array
    lr: Array


@dataclasses.dataclass(frozen=True)
class Running:
    """Any schedule as an optax stateful schedule that carries the LR, with O(1) work per step.

    torch computes most schedules by updating the LR it holds (``lr *= factor``). ``Running`` does the
    same: ``init()`` gives the state at index 0, ``update(state)`` applies one ``scheduler.step()``,
    ``running(state)`` is the LR. This is the form to use in a training step for schedules whose closed
    form needs a loop (MultiplicativeLR with a step-dependent lambda, a ChainedScheduler with
    non-multiplicative members). It follows ``optax.schedules.StatefulSchedule``, so
    ``optax.inject_hyperparams(optax.sgd)(learning_rate=jaxsched.Running(s))`` works.

    >>> import jax.numpy as jnp, jaxsched
    >>> r = jaxsched.Running(jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: jnp.where(e < 3, 0.5, 1.0)))
    >>> st = r.init()
    >>> out = []
    >>> for _ in range(5):
    ...     out.append(round(float(r(st)), 6)); st = r.update(st)
    >>> out
    [0.1, 0.05, 0.025, 0.025, 0.025]
    """

    schedule: Schedule

    def __post_init__(self):
        if not isinstance(self.schedule, Schedule):
            raise TypeError(f"Running: schedule must be a jaxsched schedule, got schedule={self.schedule!r}.")

    def init(self) -> RunningState:
        dtype = float_dtype()
        return RunningState(jnp.zeros((), int_dtype()), self.schedule._value(jnp.zeros((), int_dtype()), dtype))

    def update(self, state: RunningState, **extra_args) -> RunningState:
        del extra_args
        e = state.last_epoch + 1
        A, C = self.schedule._affine(e, state.lr.dtype)
        return RunningState(e, (A * state.lr + C).astype(state.lr.dtype))

    def __call__(self, state: RunningState, **extra_args) -> Array:
        del extra_args
        return state.lr


def _running_from(children):
    obj = object.__new__(Running)
    object.__setattr__(obj, "schedule", children[0])
    return obj


jax.tree_util.register_pytree_node(Running, lambda r: ((r.schedule,), None), lambda _, c: _running_from(c))
