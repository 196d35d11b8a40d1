"""Step-index adapters: a per-epoch schedule in a per-step loop (PerEpoch), and a resumed schedule (Offset)."""

from __future__ import annotations

import numbers

import jax.numpy as jnp

from ._base import Array, Schedule, arr, as_step, check_int, int_dtype, schedule_class
from ._cyclic import CosineAnnealingWarmRestarts
from ._schedules import _set


def _check_inner(cls: str, schedule) -> Schedule:
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"{cls}: schedule must be a jaxsched schedule (step -> LR), got schedule={schedule!r}."
            + (" ReduceLROnPlateau is driven by a metric, not a step: step it with update(state, value=...)."
               if type(schedule).__name__ == "ReduceLROnPlateau" else "")
        )
    return schedule


class _Wrapper(Schedule):
    """Shared by the adapters: groups, base LR and momentum come from the wrapped schedule."""

    _leaves = ("schedule",)
    _positional = "schedule"
    #: Not a torch scheduler of its own: kept out of jaxsched.SCHEDULES.
    _wrapper = True

    @property
    def num_groups(self):
        return self.schedule.num_groups

    @property
    def _base(self):
        return self.schedule._base

    @property
    def cycle_momentum(self) -> bool:
        """Whether the wrapped schedule cycles the momentum (CyclicLR/OneCycleLR with cycle_momentum)."""
        return bool(getattr(self.schedule, "cycle_momentum", False))

    def _check_in_composite(self, owner, index):
        raise ValueError(
            f"{owner}: schedulers[{index}] is a {type(self).__name__}, which changes what a step means; put the "
            f"{owner} inside it instead: {type(self).__name__}({owner}([...]), ...)."
        )


@schedule_class
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
      fractional: follow the ``step(epoch + i / iters)`` idiom (CosineAnnealingWarmRestarts only).

    >>> import jaxsched
    >>> s = jaxsched.PerEpoch(jaxsched.StepLR(0.1, step_size=1, gamma=0.5), steps_per_epoch=3)
    >>> [round(float(s(k)), 6) for k in range(7)]
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    >>> w = jaxsched.PerEpoch(jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=1), 4, fractional=True)
    >>> [round(float(w(k)), 6) for k in range(7)]
    [0.1, 0.1, 0.085355, 0.05, 0.014645, 0.1, 0.085355]
    """

    schedule: Schedule
    steps_per_epoch: int
    fractional: bool = False

    def __post_init__(self):
        c = "PerEpoch"
        _set(self, "schedule", _check_inner(c, self.schedule))
        _set(self, "steps_per_epoch", check_int(c, "steps_per_epoch", self.steps_per_epoch, minimum=1,
                                                rule="a positive integer"))
        if not isinstance(self.fractional, bool):
            raise TypeError(f"{c}: fractional must be a bool, got fractional={self.fractional!r}.")
        if self.fractional and not isinstance(self.schedule, CosineAnnealingWarmRestarts):
            raise ValueError(
                f"{c}: fractional=True follows torch's documented CosineAnnealingWarmRestarts idiom "
                f"scheduler.step(epoch + i / iters); torch documents fractional epochs for no other scheduler, got "
                f"schedule={self.schedule!r}. Use fractional=False (the LR changes once per epoch)."
            )

    def _check_step(self, step):
        if isinstance(step, numbers.Integral) and not self.fractional:
            self.schedule._check_step(step // self.steps_per_epoch)

    def _value(self, e, dtype):
        n = self.steps_per_epoch
        if not self.fractional:
            return self.schedule._value(e // n, dtype)
        s = self.schedule
        j = jnp.maximum(e - 1, 0)
        t_int, t_i = s._cycle(j // n)
        t_cur = t_int.astype(dtype) + (j % n).astype(dtype) / n
        b, eta = arr(s.lr, dtype), arr(s.eta_min, dtype)
        c = jnp.cos(jnp.pi * (t_cur / t_i.astype(dtype)) / 2)
        return eta + (b - eta) * (c * c)

    def _init_affine(self, dtype):
        return self.schedule._init_affine(dtype) if not self.fractional else super()._init_affine(dtype)

    def _affine(self, e, dtype):
        if self.fractional:
            return 0.0, self._value(e, dtype)
        n = self.steps_per_epoch
        A, C = self.schedule._affine(jnp.maximum(e // n, 1), dtype)
        at = (e % n) == 0
        return jnp.where(at, A, jnp.ones((), dtype)), jnp.where(at, C, jnp.zeros((), dtype))

    def momentum(self, step) -> Array:
        """The momentum (or Adam ``b1``) applied at update ``step`` (CyclicLR/OneCycleLR)."""
        if self.fractional or not self.cycle_momentum:
            raise ValueError(f"PerEpoch: {self.schedule!r} does not cycle the momentum.")
        if isinstance(step, numbers.Integral) and not isinstance(step, bool) and step >= 0:
            return self.schedule.momentum(step // self.steps_per_epoch)
        return self.schedule.momentum(as_step(step, "PerEpoch") // self.steps_per_epoch)


@schedule_class
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

    schedule: Schedule
    start: int

    def __post_init__(self):
        _set(self, "schedule", _check_inner("Offset", self.schedule))
        _set(self, "start", check_int("Offset", "start", self.start, minimum=0, rule=">= 0"))

    def _check_step(self, step):
        if isinstance(step, numbers.Integral):
            self.schedule._check_step(step + self.start)

    def _value(self, e, dtype):
        return self.schedule._value(e + self.start, dtype)

    def _init_affine(self, dtype):
        return 0.0, self._value(jnp.zeros((), int_dtype()), dtype)

    def _affine(self, e, dtype):
        return self.schedule._affine(e + self.start, dtype)

    def momentum(self, step) -> Array:
        """The momentum (or Adam ``b1``) ``step`` steps after the resume point (CyclicLR/OneCycleLR)."""
        if isinstance(step, numbers.Integral) and not isinstance(step, bool):
            return self.schedule.momentum(step + self.start)
        return self.schedule.momentum(as_step(step, "Offset") + self.start)

