"""``from_keras`` and ``from_timm``: live Keras and timm schedule objects as jaxsched schedules.

The converter layer, above the catalogues (:mod:`jaxsched.keras`, :mod:`jaxsched.timm`), which know nothing of
it. The class for an object is the one whose ``mirrors=`` names the object's class; its fields are read from
Keras' ``get_config()`` (whose keys are the field names), or from the timm object's attributes: the same-named
one, or the one the class declares in ``_counterpart_attrs``. The one timm class that needs code
(PlateauLRScheduler's ``lr_min``) has a reader here, keyed by class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from . import keras as jk
from . import timm as jt
from ._base import Schedule
from ._torch import per_group, read_fields
from ._value import CATALOGUE

if TYPE_CHECKING:  # for the overloads of from_timm only: importing jaxsched never imports timm (nor torch)
    from timm.scheduler.plateau_lr import PlateauLRScheduler as _TimmPlateau
    from timm.scheduler.scheduler import Scheduler as _TimmScheduler


def _mirrored(prefix: str) -> dict[str, type[Any]]:
    """The catalogued classes that mirror ``prefix``'s objects, by the mirrored class's name."""
    return {path.rpartition(".")[2]: cls for path, cls in CATALOGUE.items() if path.startswith(prefix + ".")}


def from_keras(schedule: Any) -> Schedule:
    """The jaxsched schedule for a live ``keras.optimizers.schedules`` object (Keras 3).

    Every built-in Keras schedule converts to its ``jaxsched.keras`` class, read from its ``get_config()``;
    a schedule made by :func:`jaxsched.keras.as_keras` gives back the jaxsched schedule it wraps, and a
    ``jaxsched.keras`` schedule (a Keras schedule once Keras is imported) is given back as it is.

    >>> import os; os.environ.setdefault("KERAS_BACKEND", "jax")  # doctest: +SKIP
    >>> import keras, jaxsched  # doctest: +SKIP
    >>> jaxsched.from_keras(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))  # doctest: +SKIP
    ExponentialDecay(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=False, \
name='ExponentialDecay')
    """
    wrapped = getattr(schedule, "_jaxsched_schedule", None)
    if wrapped is not None:
        return wrapped
    if isinstance(schedule, Schedule):  # jaxsched.keras.<Name>, which Keras takes as its own schedule
        return schedule
    name = type(schedule).__name__
    module = type(schedule).__module__
    cls = _mirrored("keras.optimizers.schedules").get(name)
    if cls is None or not module.startswith("keras"):
        known = ", ".join(sorted(jk.CLASSES))
        raise TypeError(
            f"from_keras: no jaxsched counterpart for {module}.{name}; jaxsched.keras mirrors Keras' built-in "
            f"schedules ({known}). A custom Keras schedule is Python code: write it as a jaxsched schedule."
        )
    return cls(**{k: _as_number(v) for k, v in dict(schedule.get_config()).items()})


def _as_number(v):
    """A Keras config value (a Python number, a NumPy/JAX scalar, a list) as plain Python."""
    if isinstance(v, (list, tuple)):
        return [_as_number(x) for x in v]
    if hasattr(v, "shape") and getattr(v, "shape", None) == ():
        return np.asarray(v).item()
    return v


def _timm_plateau(cls, scheduler, lr):
    """PlateauLRScheduler: timm keeps one ``lr_min`` as the inner ReduceLROnPlateau's per-group ``min_lrs``."""
    min_lrs = set(float(m) for m in scheduler.lr_scheduler.min_lrs)
    if len(min_lrs) != 1:
        raise ValueError(f"from_timm: PlateauLRScheduler with per-group min_lrs={scheduler.lr_scheduler.min_lrs!r} "
                         f"is not supported (timm sets one lr_min).")
    return read_fields(cls, scheduler, {"lr": lr, "lr_min": min_lrs.pop()}, who="from_timm")


#: The timm classes whose arguments need code to read back: ``reader(cls, scheduler, lr)``.
TIMM_READERS: dict[type, Callable[[Any, Any, Any], Any]] = {jt.PlateauLRScheduler: _timm_plateau}


# timm's PlateauLRScheduler is a timm Scheduler: the overlap is the point (it gives a stateful schedule)
@overload
def from_timm(scheduler: _TimmPlateau) -> jt.PlateauLRScheduler: ...  # pyright: ignore[reportOverlappingOverload]
@overload
def from_timm(scheduler: _TimmScheduler) -> Schedule: ...
def from_timm(scheduler: Any) -> Any:
    """The jaxsched schedule for a live ``timm.scheduler`` object (timm 1.0).

    The optimizer is replaced by its initial LRs (timm's ``base_values``). timm's schedulers are functions of
    the epoch or update count, so the result is the whole schedule wherever the timm object stands; for
    ``PlateauLRScheduler`` only the configuration is converted (its metric history stays in timm's object).
    Refused: noise (``noise_range_t``, see :mod:`jaxsched.timm`) and parameter groups with an ``lr_scale``.
    Typed by its input: ``PlateauLRScheduler`` gives :class:`jaxsched.timm.PlateauLRScheduler` (a
    StatefulSchedule), every other scheduler a ``Schedule``.
    """
    name = type(scheduler).__name__
    module = type(scheduler).__module__
    cls = _mirrored("timm.scheduler").get(name)
    if cls is None or not module.startswith("timm"):
        known = ", ".join(sorted(jt.CLASSES))
        raise TypeError(f"from_timm: no jaxsched counterpart for {module}.{name}; jaxsched.timm mirrors {known}.")
    groups = scheduler.optimizer.param_groups
    scaled = [i for i, g in enumerate(groups) if "lr_scale" in g]
    if scaled:
        raise ValueError(
            f"from_timm: parameter groups {scaled} have an 'lr_scale' (timm multiplies the whole scheduled value, "
            f"lr_min included, by it); jaxsched.timm takes one LR per group and no scale. Fold the scale into the "
            f"group's LR and lr_min by building one jaxsched schedule per group."
        )
    if getattr(scheduler, "noise_range_t", None) is not None:
        raise ValueError(
            f"from_timm: {name} has noise_range_t={scheduler.noise_range_t!r}; {jt.NOISE_REFUSAL}"
        )
    lr = per_group(scheduler.base_values)
    reader = TIMM_READERS.get(cls)
    if reader is not None:
        return reader(cls, scheduler, lr)
    return read_fields(cls, scheduler, {"lr": lr}, who="from_timm")
