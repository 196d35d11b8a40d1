"""A linear warmup in front of any schedule, whose first step is not LR 0 unless asked for.

transformers' warmups give ``lr * k / W`` at step ``k < W``: the first update runs at LR 0 and is wasted
(for Adam it still moves the moment estimates, with no parameter change). :class:`LinearWarmup` ramps
linearly from ``start_factor * lr`` and, by default, uses ``start_factor = 1 / (W + 1)``: the LRs of the
warmup are ``lr * (k + 1) / (W + 1)``, evenly spaced, never 0, and the wrapped schedule starts at step ``W``.
``start_factor=0.0`` gives transformers' ramp exactly.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._base import Schedule, arr, check_float, check_int, schedule_class
from ._schedules import _set


@schedule_class
class LinearWarmup(Schedule):
    """``W`` warmup steps from ``start_factor * lr`` towards ``lr``, then ``schedule`` from its own step 0.

    For ``k < W``: ``lr * (start_factor + (1 - start_factor) * k / W)`` with ``lr`` the wrapped schedule's
    initial LR; for ``k >= W``: ``schedule`` restarted at step ``W``, exactly as torch's
    ``SequentialLR([LinearLR(lr, start_factor, 1.0, total_iters=W), schedule], milestones=[W])``
    (which needs ``start_factor > 0``; 0 is allowed here).

    Args:
      schedule: the schedule to warm up into (any jaxsched schedule except SequentialLR/ChainedScheduler).
      num_warmup_steps: ``W`` (0: no warmup).
      start_factor: the first step's fraction of ``lr``; default ``1 / (W + 1)``. Differences from
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

    schedule: Any
    num_warmup_steps: int
    start_factor: Any = None

    _leaves = ("schedule", "start_factor")
    _positional = "schedule"

    def __post_init__(self):
        n = "LinearWarmup"
        s = self.schedule
        if not isinstance(s, Schedule) or not hasattr(s, "_restart"):
            raise TypeError(f"{n}: schedule must be a jaxsched schedule, got schedule={s!r}.")
        if type(s).__name__ in ("SequentialLR", "ChainedScheduler", "LinearWarmup", "ReduceLROnPlateau", "GreedyLR"):
            raise ValueError(
                f"{n}: schedule must be a single schedule, got a {type(s).__name__}. For a SequentialLR put the "
                f"warmup first: SequentialLR([LinearLR(lr, start_factor, 1.0, W), *members], "
                f"milestones=[W, *(m + W for m in milestones)])."
            )
        W = check_int(n, "num_warmup_steps", self.num_warmup_steps, minimum=0)
        _set(self, "num_warmup_steps", W)
        f = 1.0 / (W + 1) if self.start_factor is None else check_float(n, "start_factor", self.start_factor)
        if not isinstance(f, jax.core.Tracer) and not 0.0 <= f <= 1.0:
            raise ValueError(f"{n}: start_factor must be in [0, 1], got start_factor={f!r}.")
        _set(self, "start_factor", f)

    @property
    def _base(self):
        return self.schedule._base

    @property
    def num_groups(self):
        return self.schedule.num_groups

    def _ramp(self, e, dtype):
        W = self.num_warmup_steps
        sf = arr(self.start_factor, dtype)
        return arr(self._base, dtype) * (sf + (1.0 - sf) * (e.astype(dtype) / max(W, 1)))

    def _value(self, e, dtype):
        W = self.num_warmup_steps
        if W == 0:
            return self.schedule._value(e, dtype)
        prev = self._ramp(jnp.asarray(W - 1, e.dtype), dtype)
        after = self.schedule._restart(prev, jnp.maximum(e - W, 0), dtype)
        return jnp.where(e < W, self._ramp(e, dtype), after)
