"""Adapters around a schedule of the step: PerEpoch, Offset, LinearWarmup, and the running form (Running).

* :class:`PerEpoch`: a per-epoch schedule in a per-step loop; :class:`Offset`: a schedule resumed after ``start``
  steps (what :func:`jaxsched.from_torch` returns for a stepped scheduler).
* :class:`LinearWarmup`: a linear warmup in front of any schedule, whose first step is not LR 0 unless asked for.
  transformers' warmups give ``lr * k / W`` at step ``k < W``: the first update runs at LR 0 and is wasted.
  ``LinearWarmup`` ramps linearly from ``start_factor * lr`` and, by default, uses ``start_factor = 1 / (W + 1)``:
  the warmup LRs are ``lr * (k + 1) / (W + 1)``, never 0; ``start_factor=0.0`` gives transformers' ramp exactly.
* :class:`Running`: any schedule as an optax stateful schedule carrying the LR, O(1) work per step.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax.numpy as jnp
from jax.core import Tracer

from . import _checks as checks
from ._base import Affine, Schedule, StatefulSchedule, leaf, refuse_stateful, static
from ._checks import check_float
from ._compose import _Composite
from ._cyclic import CosineAnnealingWarmRestarts
from ._numerics import Array, arr, as_step, float_dtype, inc, int_dtype


def _schedule_of_step(cls: str, name: str, schedule) -> Schedule:
    """Field check: a schedule of the step (a StatefulSchedule is refused with the reason)."""
    refuse_stateful(cls, name, schedule)
    if not isinstance(schedule, Schedule):
        raise TypeError(f"{cls}: {name} must be a jaxsched schedule (step -> LR), got {name}={schedule!r}.")
    return schedule


class _Wrapper(Schedule):
    """Shared by the adapters: groups, base LR and momentum come from the wrapped schedule."""

    _positional = "schedule"

    @property
    def _inner(self) -> Schedule:
        return getattr(self, "schedule")

    @property
    def num_groups(self):
        return self._inner.num_groups

    @property
    def _base(self):
        return self._inner._base

    @property
    def _loops(self):
        return self._inner._loops

    @property
    def cycle_momentum(self) -> bool:
        """Whether the wrapped schedule cycles the momentum (CyclicLR/OneCycleLR with cycle_momentum)."""
        return bool(getattr(self._inner, "cycle_momentum", False))

    def _check_in_composite(self, owner, index):
        raise ValueError(
            f"{owner}: schedulers[{index}] is a {type(self).__name__}, which changes what a step means; put the "
            f"{owner} inside it instead: {type(self).__name__}({owner}([...]), ...)."
        )


class PerEpoch(_Wrapper):
    """A schedule stepped once per epoch, indexed by optimizer update: ``s(k) = schedule(k // steps_per_epoch)``.

    torch's usual loop calls ``scheduler.step()`` once per epoch while the optimizer steps every batch;
    ``PerEpoch`` gives the LR applied at every update of such a loop, so the schedule can be given to
    optax as is. With ``fractional=True`` (CosineAnnealingWarmRestarts only) it follows torch's
    documented idiom instead::

        for epoch in range(epochs):
            for i, batch in enumerate(loader):          # iters = steps_per_epoch
                ...; optimizer.step()
                scheduler.step(epoch + i / iters)

    There update ``k >= 1`` uses the LR set by ``step(t)`` with ``t = (k - 1) / iters`` (the idiom's first
    call is ``step(0.0)``, so torch's LR lags the update count by one) and update 0 uses index 0. Cycle
    boundaries are exact: torch's ``step(epoch)`` finds the cycle with ``math.log``, which rounds down at
    a few exact restart epochs for ``T_mult > 1`` (e.g. epoch 121 for ``T_0=1, T_mult=3``) and then gives
    ``eta_min`` for that one update; jaxsched restarts there.

    Args:
      schedule: any jaxsched schedule (step = epoch).
      steps_per_epoch: optimizer updates per epoch (``len(loader)``).
      fractional: follow the ``step(epoch + i / iters)`` idiom (CosineAnnealingWarmRestarts only). Default False.

    >>> import jaxsched
    >>> s = jaxsched.PerEpoch(jaxsched.StepLR(0.1, step_size=1, gamma=0.5), steps_per_epoch=3)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    >>> w = jaxsched.PerEpoch(jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=1), 4, fractional=True)
    >>> [round(float(w(k)), 6) for k in range(7)]
    [0.1, 0.1, 0.085355, 0.05, 0.014645, 0.1, 0.085355]
    """

    schedule: Schedule = leaf(check=_schedule_of_step)
    steps_per_epoch: int = static(check=checks.integer(1, "a positive integer"))
    fractional: bool = static(default=False, check=checks.boolean)

    def _validate(self):
        c = "PerEpoch"
        if self.fractional and not isinstance(self.schedule, CosineAnnealingWarmRestarts):
            raise ValueError(
                f"{c}: fractional=True follows torch's documented CosineAnnealingWarmRestarts idiom "
                f"scheduler.step(epoch + i / iters); torch documents fractional epochs for no other scheduler, got "
                f"schedule={self.schedule!r}. Use fractional=False (the LR changes once per epoch)."
            )

    def _check_step(self, step):
        if isinstance(step, numbers.Integral) and not self.fractional:
            self.schedule._check_step(step // self.steps_per_epoch)

    def _get_closed_form_lr(self, e, dtype):
        n = self.steps_per_epoch
        if not self.fractional:
            return self.schedule._get_closed_form_lr(e // n, dtype)
        s = self.schedule
        assert isinstance(s, CosineAnnealingWarmRestarts)  # _validate allows fractional only for it
        j = jnp.maximum(e - 1, 0)
        t_int, t_i = s._cycle(j // n)
        t_cur = t_int.astype(dtype) + (j % n).astype(dtype) / n
        b, eta = arr(s.lr, dtype), arr(s.eta_min, dtype)
        c = jnp.cos(jnp.pi * (t_cur / t_i.astype(dtype)) / 2)
        return eta + (b - eta) * (c * c)

    def _get_initial_lr(self, dtype):
        return self.schedule._get_initial_lr(dtype) if not self.fractional else super()._get_initial_lr(dtype)

    def _get_lr(self, e, dtype):
        if self.fractional:
            return Affine(0.0, self._get_closed_form_lr(e, dtype))
        n = self.steps_per_epoch
        A, C = self.schedule._get_lr(jnp.maximum(e // n, 1), dtype)
        at = (e % n) == 0
        return Affine(jnp.where(at, A, jnp.ones((), dtype)), jnp.where(at, C, jnp.zeros((), dtype)))

    def momentum(self, step) -> Array:
        """The momentum (or Adam ``b1``) applied at update ``step`` (CyclicLR/OneCycleLR)."""
        if self.fractional or not self.cycle_momentum:
            raise ValueError(f"PerEpoch: {self.schedule!r} does not cycle the momentum.")
        inner: Any = self.schedule  # CyclicLR or OneCycleLR (cycle_momentum checked above)
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return inner.momentum(step // self.steps_per_epoch)
        return inner.momentum(as_step(step, "PerEpoch") // self.steps_per_epoch)


class Offset(_Wrapper):
    """A schedule resumed after ``start`` steps: ``s(i) = schedule(start + i)``.

    :func:`jaxsched.from_torch` returns one for a torch scheduler that has already been stepped: ``s(0)``
    is the LR torch holds now, ``s(i)`` the LR after ``i`` more ``scheduler.step()`` calls.

    Args:
      schedule: any jaxsched schedule.
      start: the number of steps already taken (torch's ``last_epoch``).

    >>> import jaxsched
    >>> s = jaxsched.Offset(jaxsched.StepLR(0.1, step_size=3, gamma=0.5), start=2)
    >>> [round(float(s(k)), 6) for k in range(5)]
    [0.1, 0.05, 0.05, 0.05, 0.025]
    """

    schedule: Schedule = leaf(check=_schedule_of_step)
    start: int = static(check=checks.integer(0, ">= 0"))

    def _check_step(self, step):
        if isinstance(step, numbers.Integral):
            self.schedule._check_step(step + self.start)

    def _get_closed_form_lr(self, e, dtype):
        return self.schedule._get_closed_form_lr(self._shift(e), dtype)

    def _shift(self, e):
        """``e + start``, saturated at the largest step instead of wrapping around (to a negative step)."""
        top = jnp.asarray(int(jnp.iinfo(e.dtype).max) - self.start, e.dtype)
        return jnp.minimum(e, top) + self.start

    def _get_initial_lr(self, dtype):
        return Affine(0.0, self._get_closed_form_lr(jnp.zeros((), int_dtype()), dtype))

    def _get_lr(self, e, dtype):
        return self.schedule._get_lr(self._shift(e), dtype)

    def momentum(self, step) -> Array:
        """The momentum (or Adam ``b1``) ``step`` steps after the resume point (CyclicLR/OneCycleLR)."""
        inner: Any = self.schedule  # CyclicLR or OneCycleLR: AttributeError otherwise, as before
        if isinstance(step, int) and not isinstance(step, bool):
            return inner.momentum(step + self.start)
        return inner.momentum(as_step(step, "Offset") + self.start)


class LinearWarmup(Schedule):
    """``W`` warmup steps from ``start_factor * lr`` towards ``lr``, then ``schedule`` from its own step 0.

    For ``k < W``: ``lr * (start_factor + (1 - start_factor) * k / W)`` with ``lr`` the wrapped schedule's
    initial LR; for ``k >= W``: ``schedule`` restarted at step ``W``, exactly as torch's
    ``SequentialLR([LinearLR(lr, start_factor, 1.0, total_iters=W), schedule], milestones=[W])``
    (which needs ``start_factor > 0``; 0 is allowed here).

    Args:
      schedule: the schedule to warm up into (any jaxsched schedule except SequentialLR/ChainedScheduler).
      num_warmup_steps: ``W`` (0: no warmup).
      start_factor: the first step's fraction of ``lr``. Default None: ``1 / (W + 1)``. Differences from
        transformers' ``get_*_schedule_with_warmup`` (``k / W``, so 0 at the first step): with the default
        every warmup LR is ``(k + 1) / (W + 1)`` of ``lr``, one ramp step higher than transformers' at the same
        step and never 0; pass ``start_factor=0.0`` for transformers' values (then
        ``LinearWarmup(CosineAnnealingLR(lr, T_max=T - W), W, start_factor=0.0)`` is transformers'
        ``"cosine"`` and ``LinearWarmup(LinearLR(lr, 1.0, 0.0, T - W), W, start_factor=0.0)`` its ``"linear"``).

    >>> import jaxsched
    >>> s = jaxsched.LinearWarmup(jaxsched.CosineAnnealingLR(0.1, T_max=4), num_warmup_steps=3)
    >>> [round(float(s(k)), 6) for k in range(8)]
    [0.025, 0.05, 0.075, 0.1, 0.085355, 0.05, 0.014645, 0.0]
    >>> t = jaxsched.LinearWarmup(jaxsched.CosineAnnealingLR(0.1, T_max=4), num_warmup_steps=3, start_factor=0.0)
    >>> [round(float(t(k)), 6) for k in range(4)]
    [0.0, 0.033333, 0.066667, 0.1]
    """

    schedule: Schedule = leaf(check=_schedule_of_step)
    num_warmup_steps: int = static(check=checks.integer(0))
    start_factor: float | None = leaf(default=None)

    _positional = "schedule"

    def _validate(self):
        n = "LinearWarmup"
        s = self.schedule
        if isinstance(s, (_Composite, LinearWarmup)):
            raise ValueError(
                f"{n}: schedule must be a single schedule, got a {type(s).__name__}. For a SequentialLR put the "
                f"warmup first: SequentialLR([LinearLR(lr, start_factor, 1.0, W), *members], "
                f"milestones=[W, *(m + W for m in milestones)])."
            )
        W = self.num_warmup_steps
        f = 1.0 / (W + 1) if self.start_factor is None else check_float(n, "start_factor", self.start_factor)
        if not isinstance(f, Tracer) and not 0.0 <= f <= 1.0:
            raise ValueError(f"{n}: start_factor must be in [0, 1], got start_factor={f!r}.")
        self._set("start_factor", f)

    @property
    def _base(self):
        return self.schedule._base

    @property
    def num_groups(self):
        return self.schedule.num_groups

    @property
    def _loops(self):
        return self.schedule._loops

    def _ramp(self, e, dtype):
        W = self.num_warmup_steps
        sf = arr(self.start_factor, dtype)
        return arr(self._base, dtype) * (sf + (1.0 - sf) * (e.astype(dtype) / max(W, 1)))

    def _get_closed_form_lr(self, e, dtype):
        W = self.num_warmup_steps
        if W == 0:
            return self.schedule._get_closed_form_lr(e, dtype)
        prev = self._ramp(jnp.asarray(W - 1, e.dtype), dtype)
        after = self.schedule._restart(prev, jnp.maximum(e - W, 0), dtype)
        return jnp.where(e < W, self._ramp(e, dtype), after)


class RunningState(NamedTuple):
    """State of :class:`Running`: torch's ``last_epoch`` and the LR the optimizer holds.

    Attributes:
      last_epoch: int array, the number of ``step()`` calls so far.
      lr: float array, shape ``()`` or ``(G,)``.
    """

    last_epoch: Array
    lr: Array


class Running(StatefulSchedule):
    """Any schedule as an optax stateful schedule that carries the LR, with O(1) work per step.

    torch computes most schedules by updating the LR it holds (``lr *= factor``). ``Running`` does the
    same: ``init()`` gives the state at index 0, ``update(state)`` applies one ``scheduler.step()``,
    ``running(state)`` is the LR. This is the form to use in a training step for schedules whose closed
    form needs a loop (MultiplicativeLR with a step-dependent lambda, a ChainedScheduler with
    non-multiplicative members). It follows ``optax.schedules.StatefulSchedule``, so
    ``optax.inject_hyperparams(optax.sgd)(learning_rate=jaxsched.Running(s))`` works.

    Args:
      schedule: the jaxsched schedule to run step by step.

    >>> import jax.numpy as jnp, jaxsched
    >>> r = jaxsched.Running(jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: jnp.where(e < 3, 0.5, 1.0)))
    >>> st = r.init()
    >>> out = []
    >>> for _ in range(5):
    ...     out.append(round(float(r(st)), 6)); st = r.update(st)
    >>> out
    [0.1, 0.05, 0.025, 0.025, 0.025]
    """

    schedule: Schedule = leaf(check=_schedule_of_step)

    _positional = "schedule"
    metric_driven = False

    @property
    def num_groups(self) -> int | None:
        return self.schedule.num_groups

    def init(self) -> RunningState:
        dtype = float_dtype()
        zero = jnp.zeros((), int_dtype())
        return RunningState(zero, self.schedule._get_closed_form_lr(zero, dtype))

    @property
    def _lr_shape(self) -> tuple[int, ...]:
        return () if self.num_groups is None else (self.num_groups,)

    def _checked(self, state: RunningState) -> RunningState:
        """A state entering ``update`` (perhaps restored), checked and cast to the compute dtypes, as ``init()``
        gives them: a non-negative integer ``last_epoch`` and a finite ``lr`` with one value per parameter group."""
        o = "Running.update"
        if not isinstance(state, RunningState):
            raise TypeError(f"{o}: state must be a RunningState (from init()), got {type(state).__name__}.")
        checks.state_shape(o, "lr", state.lr, self._lr_shape, self.num_groups)
        checks.state_shape(o, "last_epoch", state.last_epoch, ())
        return RunningState(checks.state_count(o, "last_epoch", state.last_epoch, int_dtype()),
                            checks.state_float(o, "lr", state.lr, float_dtype(), finite=True))

    def update(self, state: RunningState, **extra_args) -> RunningState:
        del extra_args
        state = self._checked(state)
        new = self._step(state)
        # the counter saturates at the largest step, where the LR holds (as s(step) does beyond it)
        at_top = state.last_epoch == jnp.iinfo(state.last_epoch.dtype).max
        return RunningState(inc(state.last_epoch), jnp.where(at_top, state.lr, new.lr))

    def _step(self, state: RunningState) -> RunningState:
        """torch's ``scheduler.step()`` on ``state`` (``last_epoch`` below the largest step)."""
        e = state.last_epoch + 1
        dtype = state.lr.dtype
        A, C = self.schedule._get_lr(e, dtype)
        if isinstance(A, (int, float)) and A == 0:  # an absolute step (LambdaLR, OneCycleLR, ...): lr is C
            return RunningState(e, jnp.broadcast_to(jnp.asarray(C, dtype), state.lr.shape))
        if dtype != jnp.float32 or self.schedule._loops is not None:
            return RunningState(e, (A * state.lr + C).astype(dtype))
        # float32: torch's recursion lr_e = A lr_{e-1} + C, carried as the closed form plus the deviation
        # from it (an LR set outside the scheduler), lr_e = closed(e) + A (lr_{e-1} - closed(e-1)). In exact
        # arithmetic that is the recursion itself; in float32 the recursion accumulates rounding (6e-5 of
        # the LR after 10,000 steps of ExponentialLR(gamma=0.9999)) and, where A > 1 (a cosine climbing back
        # past T_max with eta_min > 0), multiplies it (5e-3 after 2,000 steps), while the closed form is
        # accurate at every step. A deviation within float32 rounding of the closed form (the LR torch held,
        # rounded to float32) is none: below 1e-6 of the larger of the LR and the initial LR.
        before = self.schedule._get_closed_form_lr(state.last_epoch, dtype)
        now = self.schedule._get_closed_form_lr(e, dtype)
        d = state.lr - before
        floor = jnp.abs(arr(self.schedule._base, dtype))
        scale = jnp.maximum(jnp.maximum(jnp.abs(state.lr), jnp.abs(before)), floor)
        d = jnp.where(jnp.abs(d) <= 1e-6 * scale, jnp.zeros_like(d), d)
        return RunningState(e, jnp.broadcast_to(now + A * d, state.lr.shape).astype(dtype))

    def __call__(self, state: RunningState, **extra_args) -> Array:
        del extra_args
        checks.state_of("Running", state, RunningState, "s.update(state)")
        checks.state_shape("Running", "lr", state.lr, self._lr_shape, self.num_groups)
        return state.lr
