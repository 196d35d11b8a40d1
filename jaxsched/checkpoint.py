"""orbax-checkpoint helpers: save the schedule's config beside the training state, refuse a different schedule.

An optax state holds the schedule's *state* (the step count, the plateau's ``best``...) but not the schedule
itself, so orbax restores a checkpoint into an optimizer built with any other schedule without a word, and
the run continues on LRs that match neither run. These helpers save ``schedule``'s JSON config as a second
item of the checkpoint and compare it at restore:

* :func:`save` / :func:`restore`: one checkpoint in a directory.
* :func:`save_args` / :func:`restore_args` / :func:`check_schedule` / :func:`check_digests`: the same items for
  an ``orbax.checkpoint.CheckpointManager`` (``manager.save(step, args=save_args(state, schedule))``).

orbax does not checksum array data: a flipped byte in a saved array file restores as a wrong value (a weight of
1.4e19, say) without an error. So a third item holds the SHA-256 of every array of the state (its bytes, dtype
and shape), and :func:`restore` (or :func:`check_digests`, with a manager) recomputes them and refuses a state
that differs, naming the array. Not verified: arrays that span several processes (each process sees only its
part; they are listed as such in the digests) and checkpoints written before this item existed.

A schedule is described by its config: ``schedule.to_config()`` for a jaxsched schedule or
:class:`jaxsched.ReduceLROnPlateau`; :class:`jaxsched.Running` and :func:`jaxsched.optim.accumulate` wrap
their schedule's config; a constant LR (a float or a tuple of floats) is recorded as such. A schedule with a
Python ``lr_lambda`` has no config, and the error says so.

Importing this module needs ``orbax-checkpoint`` (``pip install "jaxsched[flax]"``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    import orbax.checkpoint as ocp
except ModuleNotFoundError as err:  # the extra is missing: say which
    if (err.name or "").split(".")[0] != "orbax":
        raise
    raise ModuleNotFoundError("jaxsched.checkpoint needs orbax-checkpoint: pip install 'jaxsched[flax]'",
                              name=err.name) from None

from . import Running
from .optim import Accumulate

__all__ = ["CheckpointDamagedError", "ScheduleMismatchError", "check_digests", "check_schedule", "digests",
           "load_schedule_config", "restore", "restore_args", "save", "save_args", "schedule_config"]

#: The name of the checkpoint item that holds the schedule's config.
SCHEDULE_ITEM = "schedule"
#: The name of the checkpoint item that holds the training state.
STATE_ITEM = "state"
#: The name of the checkpoint item that holds the SHA-256 of every array of the state.
DIGEST_ITEM = "digests"


class ScheduleMismatchError(ValueError):
    """The checkpoint was saved with another schedule than the one the optimizer is built with."""


class CheckpointDamagedError(ValueError):
    """A restored array is not what was saved: the checkpoint's data files were changed or damaged."""


def _host(leaf) -> np.ndarray | None:
    """The array as NumPy (a typed PRNG key as its key data), or ``None`` when this process sees only part."""
    if isinstance(leaf, jax.Array):
        if not leaf.is_fully_addressable:
            return None
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def _sha256(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return "sha256:" + h.hexdigest()


def digests(state) -> dict:
    """The checkpoint's digest item for ``state``: each array's key path, dtype and SHA-256 (of its dtype, shape
    and bytes).

    Args:
      state: the training state (a pytree of arrays and Python numbers).
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        a = _host(leaf)
        out[jax.tree_util.keystr(path)] = (
            {"digest": "unverified: spans processes"} if a is None else {"dtype": str(a.dtype), "digest": _sha256(a)})
    return out


def check_digests(saved: dict, state, where: str = "the checkpoint") -> None:
    """Raise :class:`CheckpointDamagedError` unless every array of the restored ``state`` is what was saved.

    Args:
      saved: the digest item read from the checkpoint (``restored.digests`` with :func:`restore_args`).
      state: the restored training state.
      where: how the message names the checkpoint (its directory).
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        key = jax.tree_util.keystr(path)
        entry, a = saved.get(key), _host(leaf)
        if entry is None or a is None or "dtype" not in entry:  # not saved by this version, or spans processes
            continue
        if _sha256(a if str(a.dtype) == entry["dtype"] else a.astype(entry["dtype"])) != entry.get("digest"):
            raise CheckpointDamagedError(
                f"restore: the array {key} restored from {where} differs from the one saved (SHA-256 mismatch): "
                f"the checkpoint's data files were changed or damaged. Nothing was restored; restore an earlier "
                f"checkpoint, or delete this one and restart from the last good one."
            )


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
                                 SCHEDULE_ITEM: ocp.args.JsonSave(schedule_config(schedule)),
                                 DIGEST_ITEM: ocp.args.JsonSave(digests(state))})


def restore_args(target) -> ocp.args.Composite:
    """The orbax args that restore the three items, the state into the structure of ``target``. Check the result
    with :func:`check_schedule` and :func:`check_digests`.

    Args:
      target: a training state of the structure to restore (e.g. freshly initialised).
    """
    return ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(target),
                                 SCHEDULE_ITEM: ocp.args.JsonRestore(),
                                 DIGEST_ITEM: ocp.args.JsonRestore()})


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
      CheckpointDamagedError: a restored array differs from the one saved.
    """
    check_schedule(load_schedule_config(directory), schedule)
    path = os.path.abspath(directory)
    args: dict[str, ocp.args.CheckpointArgs] = {STATE_ITEM: ocp.args.StandardRestore(target)}
    if os.path.isdir(os.path.join(path, DIGEST_ITEM)):  # written before the digests existed: not verified
        args[DIGEST_ITEM] = ocp.args.JsonRestore()
    with _checkpointer() as ckpt:
        out = ckpt.restore(path, args=ocp.args.Composite(**args))
    if DIGEST_ITEM in out:
        check_digests(out[DIGEST_ITEM], out[STATE_ITEM], repr(path))
    return out[STATE_ITEM]
