"""orbax-checkpoint helpers: save the schedule's config beside the training state, refuse a different schedule.

An optax state holds the schedule's *state* (the step count, the plateau's ``best``...) but not the schedule
itself, so orbax restores a checkpoint into an optimizer built with any other schedule without a word, and
the run continues on LRs that match neither run. These helpers save ``schedule``'s JSON config as a second
item of the checkpoint and compare it at restore:

* :func:`save` / :func:`restore`: one checkpoint in a directory.
* :func:`save_args` / :func:`restore_args` / :func:`check_schedule`: the same items for an
  ``orbax.checkpoint.CheckpointManager`` (``manager.save(step, args=save_args(state, schedule))``).

A schedule is described by its config: ``schedule.to_config()`` for a jaxsched schedule or
:class:`jaxsched.ReduceLROnPlateau`; :class:`jaxsched.Running` and :func:`jaxsched.optim.accumulate` wrap
their schedule's config; a constant LR (a float or a tuple of floats) is recorded as such. A schedule with a
Python ``lr_lambda`` has no config, and the error says so.

Importing this module needs ``orbax-checkpoint`` (``pip install "jaxsched[flax]"``).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

try:
    import orbax.checkpoint as ocp
except ModuleNotFoundError as err:  # the extra is missing: say which
    if (err.name or "").split(".")[0] != "orbax":
        raise
    raise ModuleNotFoundError("jaxsched.checkpoint needs orbax-checkpoint: pip install 'jaxsched[flax]'",
                              name=err.name) from None

from . import Running
from .optim import Accumulate

__all__ = ["ScheduleMismatchError", "check_schedule", "load_schedule_config", "restore", "restore_args", "save",
           "save_args", "schedule_config"]

#: The name of the checkpoint item that holds the schedule's config.
SCHEDULE_ITEM = "schedule"
#: The name of the checkpoint item that holds the training state.
STATE_ITEM = "state"


class ScheduleMismatchError(ValueError):
    """The checkpoint was saved with another schedule than the one the optimizer is built with."""


def schedule_config(schedule) -> dict:
    """The JSON config that identifies ``schedule`` in a checkpoint.

    Args:
      schedule: a jaxsched schedule, :class:`jaxsched.ReduceLROnPlateau`, :class:`jaxsched.Running`, the
        result of :func:`jaxsched.optim.accumulate`, or a constant LR (float, or tuple of floats).
    """
    if isinstance(schedule, Running):
        return {"Running": schedule_config(schedule.schedule)}
    if isinstance(schedule, Accumulate):
        return {"accumulate": schedule_config(schedule.plateau), "accumulation_size": schedule.accumulation_size}
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return {"constant": _finite(schedule)}
    if isinstance(schedule, tuple) and all(isinstance(x, (int, float)) for x in schedule):
        return {"constant": [_finite(x, i) for i, x in enumerate(schedule)]}
    to_config = getattr(schedule, "to_config", None)
    if to_config is None:
        raise TypeError(f"schedule_config: schedule must be a jaxsched schedule, Running, accumulate(...) or a "
                        f"constant LR, got schedule={schedule!r}.")
    try:
        config = to_config()
    except (TypeError, ValueError) as err:
        raise TypeError(f"schedule_config: {schedule!r} has no JSON config, so a checkpoint cannot record it "
                        f"({err}).") from err
    return json.loads(json.dumps(config))


def _finite(lr: float, index: int | None = None) -> float:
    """A constant LR as a float; NaN and inf are refused (NaN never compares equal, so the check at restore would
    refuse every checkpoint saved with it; neither is an LR an optimizer can use)."""
    value = float(lr)
    if not math.isfinite(value):
        shown = "schedule" if index is None else f"schedule[{index}]"
        raise ValueError(f"schedule_config: a constant LR must be finite, got {shown}={value!r}.")
    return value


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current)):
            where = f"{path}.{key}" if path else str(key)
            if key not in saved or key not in current:
                out.append(f"{where}: {saved.get(key, '<absent>')!r} saved, {current.get(key, '<absent>')!r} now")
            else:
                out.extend(_differences(saved[key], current[key], where))
        return out
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [d for i, (a, b) in enumerate(zip(saved, current)) for d in _differences(a, b, f"{path}[{i}]")]
    return [] if saved == current else [f"{path or 'config'}: {saved!r} saved, {current!r} now"]


def check_schedule(saved_config: dict, schedule) -> None:
    """Raise :class:`ScheduleMismatchError` unless ``schedule``'s config is ``saved_config``.

    Args:
      saved_config: the config read from the checkpoint.
      schedule: the schedule the optimizer being restored into is built with.
    """
    current = schedule_config(schedule)
    diffs = _differences(json.loads(json.dumps(saved_config)), current)
    if diffs:
        raise ScheduleMismatchError(
            "restore: the checkpoint was saved with a different schedule than the optimizer is built with ("
            + "; ".join(diffs[:5]) + ("; ..." if len(diffs) > 5 else "") + "). Restoring would continue on LRs "
            "that match neither run. Build the optimizer with the saved schedule (jaxsched.from_config(config) for "
            f"a plain schedule; the saved config is {json.dumps(saved_config)}), or start a new run in a new "
            "directory."
        )


def save_args(state, schedule) -> ocp.args.Composite:
    """The orbax args that save ``state`` and ``schedule``'s config as two items of one checkpoint.

    Args:
      state: the training state (a pytree: params, optimizer state, ...).
      schedule: the optimizer's schedule (see :func:`schedule_config`).
    """
    return ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardSave(state),
                                 SCHEDULE_ITEM: ocp.args.JsonSave(schedule_config(schedule))})


def restore_args(target) -> ocp.args.Composite:
    """The orbax args that restore both items into the structure of ``target``.

    Args:
      target: a training state of the structure to restore (e.g. freshly initialised).
    """
    return ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(target),
                                 SCHEDULE_ITEM: ocp.args.JsonRestore()})


def _checkpointer() -> ocp.Checkpointer:
    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def save(directory: str | os.PathLike, state, schedule, *, force: bool = False) -> None:
    """Save ``state`` and ``schedule``'s config as one checkpoint in ``directory``.

    Args:
      directory: the checkpoint directory (absolute or relative; created).
      state: the training state (a pytree).
      schedule: the optimizer's schedule (see :func:`schedule_config`).
      force: overwrite an existing checkpoint. Default ``False``.
    """
    with _checkpointer() as ckpt:
        ckpt.save(os.path.abspath(directory), args=save_args(state, schedule), force=force)


def load_schedule_config(directory: str | os.PathLike) -> dict:
    """The schedule config saved in the checkpoint at ``directory``.

    Args:
      directory: a checkpoint written by :func:`save`.
    """
    path = os.path.abspath(directory)
    with _checkpointer() as ckpt:
        try:
            out = ckpt.restore(path, args=ocp.args.Composite(**{SCHEDULE_ITEM: ocp.args.JsonRestore()}))
        except KeyError:  # orbax: 'Item "schedule" was not found in the checkpoint. Available items: [...]'
            raise ValueError(
                f"restore: the checkpoint at {path!r} has no {SCHEDULE_ITEM!r} item: it was not written by "
                f"jaxsched.checkpoint.save (a plain orbax checkpoint?), so the schedule it was saved with is "
                f"unknown. Restore it with orbax directly, or save it again with jaxsched.checkpoint.save."
            ) from None
    return out[SCHEDULE_ITEM]


def restore(directory: str | os.PathLike, target, schedule):
    """Restore the state saved in ``directory``, after checking it was saved with ``schedule``.

    Args:
      directory: a checkpoint written by :func:`save`.
      target: a training state of the structure to restore into.
      schedule: the schedule the optimizer in ``target`` is built with.

    Raises:
      ScheduleMismatchError: the checkpoint was saved with a different schedule.
    """
    check_schedule(load_schedule_config(directory), schedule)
    with _checkpointer() as ckpt:
        out = ckpt.restore(os.path.abspath(directory),
                           args=ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(target)}))
    return out[STATE_ITEM]
