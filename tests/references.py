"""Live-framework references computed once per test run.

``torch_trajectory`` is :func:`parity.torch_ref.torch_trajectory` with a cache: the same schedule (schedules are
values: equal configurations are equal and hash alike), the same number of steps, the same optimizer and the same
JAX precision give torch's LRs from the first run. Several tests compare one schedule in float32 and with x64, or
against the same golden configuration; torch steps it once. The precision is part of the key because a schedule
with a user callable is evaluated by torch on the callable as JAX would evaluate it at that precision.
Each call returns fresh copies, so a test cannot change another's reference.
"""

from __future__ import annotations

import jax
import numpy as np

from parity import torch_ref

_TRAJECTORIES: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}


def torch_trajectory(schedule, steps: int, optimizer: str = "sgd"):
    """``(lr, momentum)`` as :func:`parity.torch_ref.torch_trajectory` gives them, computed once per test run."""
    x64 = bool(jax.config.jax_enable_x64)  # the current precision, inside jax.enable_x64 blocks too
    try:
        key = (schedule, steps, optimizer, x64)
        hash(key)
    except TypeError:  # an unhashable schedule: computed every time
        return torch_ref.torch_trajectory(schedule, steps, optimizer)
    if key not in _TRAJECTORIES:
        _TRAJECTORIES[key] = torch_ref.torch_trajectory(schedule, steps, optimizer)
    lr, mom = _TRAJECTORIES[key]
    return lr.copy(), (None if mom is None else mom.copy())
