"""The composites: SequentialLR and ChainedScheduler."""

from __future__ import annotations

import re
from collections.abc import Sequence

import jax.numpy as jnp
from jax import lax

from ._base import Affine, MultiplicativeSchedule, Schedule, StatefulSchedule, leaf, static
from ._checks import check_int
from ._numerics import Array, arr, check_loop_step, int_dtype
from ._torch_releases import change, legacy_milestone0, sequential_release_problem, step0_is_initial
from ._value import _values_equal


def _check_members(owner: str, schedulers) -> tuple:
    if isinstance(schedulers, Schedule) or not hasattr(schedulers, "__iter__"):
        raise TypeError(f"{owner}: schedulers must be a list of jaxsched schedules, got schedulers={schedulers!r}.")
    members = tuple(schedulers)
    if not members:
        chained = " to be chained" if owner == "ChainedScheduler" else ""
        raise ValueError(f"{owner}: expects at least one scheduler{chained}, but got no scheduler.")
    lr = None
    for i, s in enumerate(members):
        if isinstance(s, StatefulSchedule):
            raise ValueError(
                f"{owner}: does not support `{type(s).__name__}` scheduler as it "
                + ("requires additional kwargs to be specified when calling `step`" if s.metric_driven
                   else "carries its own state")
                + f", but got one at index {i} in the given schedulers sequence."
            )
        if not isinstance(s, Schedule):
            raise TypeError(f"{owner}: the scheduler at index {i} should be a jaxsched schedule, got {s!r}.")
        s._check_in_composite(owner, i)
        if lr is None:
            lr = s._base
        elif not _values_equal(s._base, lr):
            raise ValueError(
                f"{owner}: expects all schedulers to belong to the same optimizer (the same initial "
                f"lr), but schedulers[{i}] has lr={s._base!r} and schedulers[0] has lr={lr!r}."
            )
    # torch keeps some arguments in the optimizer's param groups (SWALR's swa_lr): the member constructed
    # last sets them for every member on that optimizer, so the members must agree
    first: dict[str, tuple[int, Schedule]] = {}
    for i, s in enumerate(members):
        for key in s._group_keys:
            if key not in first:
                first[key] = (i, s)
                continue
            j, other = first[key]
            if not _values_equal(getattr(s, key), getattr(other, key)):
                raise ValueError(
                    f"{owner}: schedulers[{i}] has {key}={getattr(s, key)!r} but schedulers[{j}] has "
                    f"{key}={getattr(other, key)!r}: torch's {type(s).__name__} stores {key} in the optimizer's "
                    f"param groups, so the {type(s).__name__} constructed last sets it for every "
                    f"{type(s).__name__} on that optimizer. Give every {type(s).__name__} member the same {key}."
                )
    return members


def _torch_name(s: Schedule) -> str:
    """The torch class a member mirrors (``"ExponentialLR"``), as the release table names them."""
    return (type(s)._mirrors or "").rpartition(".")[2]


def _select(index: Array, values: list[Array]) -> Array:
    out = values[-1]
    for i in reversed(range(len(values) - 1)):
        out = jnp.where(index == i, values[i], out)
    return out


class _Composite(Schedule):
    """A schedule made of member schedules that share one optimizer (one initial LR)."""

    _positional = "schedulers"

    @property
    def _members(self) -> tuple[Schedule, ...]:
        return getattr(self, "schedulers")

    @property
    def _base(self):
        return self._members[0]._base

    @property
    def num_groups(self):
        return self._members[0].num_groups

    def _check_in_composite(self, owner, index):
        raise ValueError(
            f"{owner}: schedulers[{index}] is a {type(self).__name__}; jaxsched does not nest composite schedules "
            f"(torch's nested SequentialLR is off by one step). Flatten them into one {owner}."
        )

    @property
    def _loops(self):
        return next((f"schedulers[{i}] is a {type(s).__name__}: {s._loops}"
                     for i, s in enumerate(self._members) if s._loops is not None), None)


class SequentialLR(_Composite, mirrors="torch.optim.lr_scheduler.SequentialLR"):
    """Run ``schedulers`` one after another, switching at ``milestones``: torch's SequentialLR.

    At a milestone torch restarts the next schedule from its own index 0 (computed from the initial LR,
    not from where the previous schedule left off); MultiplicativeLR and SWALR instead continue from the LR
    the optimizer holds. The previous schedule never shows its value at the milestone.

    Args:
      schedulers: the schedules, in order; those that take ``lr`` share it.
      milestones: the steps at which the next schedule starts (one fewer than ``schedulers``).
      release: ``None`` (default) for torch 2.13's SequentialLR, or an older torch release (``"2.12.1"``)
        whose SequentialLR to reproduce where it differs: with a milestone at 0, torch up to 2.12 keeps the
        first schedule's initial LR (``start_factor * lr`` for a LinearLR warm-up) and runs the next
        schedule's recursion from it, one step late, for that whole stage (docs/torch-releases.md). That
        stage is then a loop per call, as ChainedScheduler's; use :class:`jaxsched.Running` in a training
        step. A release whose other SequentialLR differences jaxsched does not reproduce (a MultiplicativeLR
        member up to 2.7, an SWALR member up to 2.8) is refused.

    >>> import jaxsched
    >>> warmup = jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=3)
    >>> cosine = jaxsched.CosineAnnealingLR(0.1, T_max=4)
    >>> s = jaxsched.SequentialLR([warmup, cosine], milestones=[3])
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.01, 0.04, 0.07, 0.1, 0.085355, 0.05, 0.014645, 0.0]
    """

    schedulers: Sequence[Schedule] = leaf()
    milestones: Sequence[int] = static()
    release: str | None = static(default=None)

    def _counterpart_args(self) -> dict:
        """torch's arguments (the parity harness): torch 2.13's SequentialLR has no ``release``."""
        if self.release is not None:
            raise ValueError(f"SequentialLR: release={self.release!r} has no torch 2.13 counterpart.")
        return {"schedulers": self.schedulers, "milestones": self.milestones}

    @property
    def _legacy_stage(self) -> int | None:
        """With ``release`` <= 2.12 and a milestone at 0: the stage run from the first schedule's initial LR."""
        if self.release is None or not self.milestones or self.milestones[0] != 0:
            return None
        if not legacy_milestone0(self.release):
            return None
        return sum(1 for m in self.milestones if m == 0)

    @property
    def _loops(self):
        if self._legacy_stage is not None:
            return f"with release={self.release!r} and a milestone at 0 it replays the steps of that stage"
        return super()._loops

    def _legacy_affine(self, e, dtype):
        """The ``e``-th step (``e >= 1``) of the legacy stage: the member's step at ``last_epoch = e - 1``."""
        s = self.schedulers[self._legacy_stage or 0]
        A, C = s._get_lr(jnp.maximum(e - 1, 1), dtype)
        initial = step0_is_initial(_torch_name(s), str(self.release))
        A0, C0 = s._get_initial_lr(dtype) if initial else s._get_lr(jnp.zeros_like(e), dtype)
        A, C = jnp.asarray(A, dtype), jnp.asarray(C, dtype)
        return Affine(jnp.where(e == 1, jnp.asarray(A0, dtype), A), jnp.where(e == 1, jnp.asarray(C0, dtype), C))

    def _legacy_lr(self, e, dtype):
        """The legacy stage's LR at ``e``: the first schedule's initial LR, then the member's recursion."""
        b = arr(self._base, dtype)
        A0, C0 = self.schedulers[0]._get_initial_lr(dtype)
        lr0 = jnp.broadcast_to(A0 * b + C0, b.shape)

        def body(i, lr):
            A, C = self._legacy_affine(i, dtype)
            return A * lr + C

        return lax.fori_loop(jnp.ones((), e.dtype), e + 1, body, lr0)

    def _validate(self):
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
        if self.release is not None:
            if not isinstance(self.release, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?([+.-]\w+)*", self.release):
                raise ValueError(f"SequentialLR: release must be a torch version such as '2.12.1', got "
                                 f"release={self.release!r}.")
            problem = sequential_release_problem([_torch_name(s) for s in members], ms, self.release)
            if problem is not None:
                raise ValueError(f"SequentialLR: release={self.release!r} cannot be reproduced: {problem[1]} "
                                 f"({change(problem[0]).what}).")
        self._set("schedulers", members)
        self._set("milestones", ms)

    def _check_step(self, step):
        why = self._loops
        if why is not None:
            check_loop_step("SequentialLR", step, why)

    def _stage(self, e):
        if not self.milestones:
            return jnp.zeros_like(e)
        ms = jnp.asarray(self.milestones, int_dtype())
        return jnp.sum(ms <= e[..., None], axis=-1, dtype=e.dtype)

    def _get_closed_form_lr(self, e, dtype, stages: int | None = None):
        """The LR at ``e``, using only the first ``stages`` schedules (all by default)."""
        n = len(self.schedulers) if stages is None else stages
        values = [self.schedulers[0]._get_closed_form_lr(e, dtype)]
        legacy = self._legacy_stage
        for i, m in enumerate(self.milestones[: n - 1], start=1):
            s = self.schedulers[i]
            j = jnp.maximum(e - m, 0)
            if i == legacy:  # torch <= 2.12: from the first schedule's initial LR, one step late
                values.append(self._legacy_lr(e, dtype))
                continue
            if m == 0:  # switched to at construction: a fresh start from the initial LR
                values.append(s._get_closed_form_lr(e, dtype))
                continue
            # the LR the optimizer held just before the milestone (earlier stages only)
            prev = self._get_closed_form_lr(jnp.asarray(m - 1, int_dtype()), dtype, stages=i) if s._uses_prev else None
            values.append(s._restart(prev, j, dtype))
        shape = jnp.broadcast_shapes(*(x.shape for x in values))
        values = [jnp.broadcast_to(v, shape) for v in values]
        return _select(jnp.minimum(self._stage(e), n - 1), values)

    def _get_lr(self, e, dtype):
        As, Cs = [], []
        for i, s in enumerate(self.schedulers):
            m = 0 if i == 0 else self.milestones[i - 1]
            A, C = s._get_lr(jnp.maximum(e - m, 1), dtype)
            if i > 0 and i == self._legacy_stage:
                A, C = self._legacy_affine(e, dtype)
            if i > 0 and m > 0:
                A0, C0 = s._restart_affine(dtype)
                at = e == m
                A, C = jnp.where(at, A0, A), jnp.where(at, C0, C)
            As.append(jnp.asarray(A, dtype))
            Cs.append(jnp.asarray(C, dtype))
        shape = jnp.broadcast_shapes(*(x.shape for x in As + Cs))
        stage = self._stage(e)
        return Affine(_select(stage, [jnp.broadcast_to(a, shape) for a in As]),
                      _select(stage, [jnp.broadcast_to(c, shape) for c in Cs]))


class ChainedScheduler(_Composite, mirrors="torch.optim.lr_scheduler.ChainedScheduler"):
    """Step every schedule in turn on the same LR: torch's ChainedScheduler.

    torch's ChainedScheduler is sequential mutation of the optimizer's LR, not a product of schedules:
    each member applies its own chainable update (``lr *= factor`` for StepLR, ExponentialLR, ...; an
    affine update for CosineAnnealingLR and SWALR; an overwrite for LambdaLR and
    CosineAnnealingWarmRestarts) to whatever LR the members before it left. When every member is
    multiplicative ``s(e)`` is the closed form ``lr * prod(factors)``; otherwise ``s(e)`` replays the ``e``
    steps (a loop per call: fine for plots and checks, not in a training step: use
    :class:`jaxsched.Running` there, O(1) per step).

    Args:
      schedulers: the schedules stepped in turn on the same LR; those that take ``lr`` share it.

    >>> import jaxsched
    >>> s = jaxsched.ChainedScheduler([jaxsched.ConstantLR(0.1, factor=0.1, total_iters=3),
    ...                                jaxsched.ExponentialLR(0.1, gamma=0.9)])
    >>> [round(float(s(k)), 6) for k in range(5)]
    [0.01, 0.009, 0.0081, 0.0729, 0.06561]
    """

    schedulers: Sequence[Schedule] = leaf()

    def _validate(self):
        self._set("schedulers", _check_members("ChainedScheduler", self.schedulers))

    def _check_step(self, step):
        why = self._loops
        if why is not None:
            check_loop_step("ChainedScheduler", step, why)

    @property
    def closed_form(self) -> bool:
        """Whether ``s(step)`` is O(1) (every member multiplicative with a closed-form factor)."""
        return all(isinstance(s, MultiplicativeSchedule) and s._loops is None for s in self.schedulers)

    @property
    def _loops(self):
        return None if self.closed_form else "it replays the steps of members that are not all multiplicative"

    def _get_initial_lr(self, dtype):
        A, C = jnp.ones((), dtype), jnp.zeros((), dtype)
        for s in self.schedulers:
            a, c = s._get_initial_lr(dtype)
            A, C = a * A, a * C + c
        return Affine(A, C)

    def _get_lr(self, e, dtype):
        A, C = jnp.ones((), dtype), jnp.zeros((), dtype)
        for s in self.schedulers:
            a, c = s._get_lr(e, dtype)
            A, C = a * A, a * C + c
        return Affine(A, C)

    def _get_closed_form_lr(self, e, dtype):
        b = arr(self._base, dtype)
        if self.closed_form:
            out = b
            for s in self.schedulers:
                assert isinstance(s, MultiplicativeSchedule)
                out = out * s._factor(e, dtype)
            return out
        A0, C0 = self._get_initial_lr(dtype)
        lr0 = A0 * b + C0

        def body(i, lr):
            A, C = self._get_lr(i, dtype)
            return A * lr + C

        return lax.fori_loop(jnp.ones((), e.dtype), e + 1, body, jnp.broadcast_to(lr0, b.shape))
