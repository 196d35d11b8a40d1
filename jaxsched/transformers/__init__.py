"""HF transformers' schedule catalogue as jaxsched schedules: ``get_scheduler(name, lr, ...)``.

``jaxsched.transformers.get_scheduler("cosine", 1e-3, num_warmup_steps=100, num_training_steps=1000)`` is
the schedule ``transformers.get_scheduler("cosine", optimizer, 100, 1000)`` would run on an optimizer whose
LR is ``1e-3``: ``s(k)`` is the LR after ``k`` calls of ``scheduler.step()``, in both precisions, for every
name transformers accepts, with transformers' argument names, defaults and error messages for missing
arguments. Each name maps to one schedule class, named after the transformers function that builds it:

==========================  =========================================================================
name                        class (``jaxsched.transformers.<Class>``)
==========================  =========================================================================
constant                    :class:`ConstantSchedule`
constant_with_warmup        :class:`ConstantScheduleWithWarmup`
linear                      :class:`LinearScheduleWithWarmup`
cosine                      :class:`CosineScheduleWithWarmup`
cosine_with_restarts        :class:`CosineWithHardRestartsScheduleWithWarmup`
polynomial                  :class:`PolynomialDecayScheduleWithWarmup`
inverse_sqrt                :class:`InverseSqrtSchedule`
cosine_with_min_lr          :class:`CosineWithMinLRScheduleWithWarmup`
cosine_warmup_with_min_lr   :class:`CosineWithMinLRScheduleWithWarmupLRRate`
warmup_stable_decay         :class:`WSDSchedule`
reduce_lr_on_plateau        ``jaxsched.ReduceLROnPlateau`` (metric-driven: init/update/__call__)
greedy                      :class:`GreedyLR` (metric-driven: init/update/__call__)
==========================  =========================================================================

Where transformers reads ``optimizer.defaults["lr"]`` (``polynomial``, and ``min_lr`` of the two min-LR
cosines) the schedule takes ``lr_init``: it defaults to ``lr`` and must be given with several parameter
groups (transformers then uses the optimizer's default LR, which need not be any group's LR).

Every warmup here starts at LR 0 (``k / num_warmup_steps``), as in transformers, except
``cosine_warmup_with_min_lr`` (``(k + 1) / num_warmup_steps``). :class:`jaxsched.LinearWarmup` is a warmup
that does not waste the first step.
"""


from __future__ import annotations

from .._plateau import ReduceLROnPlateau
from ._greedy import GreedyLR as GreedyLR
from ._greedy import GreedyLRState as GreedyLRState
from ._schedules import SCHEDULER_NAMES as SCHEDULER_NAMES
from ._schedules import ConstantSchedule as ConstantSchedule
from ._schedules import ConstantScheduleWithWarmup as ConstantScheduleWithWarmup
from ._schedules import CosineScheduleWithWarmup as CosineScheduleWithWarmup
from ._schedules import CosineWithHardRestartsScheduleWithWarmup as CosineWithHardRestartsScheduleWithWarmup
from ._schedules import CosineWithMinLRScheduleWithWarmup as CosineWithMinLRScheduleWithWarmup
from ._schedules import CosineWithMinLRScheduleWithWarmupLRRate as CosineWithMinLRScheduleWithWarmupLRRate
from ._schedules import InverseSqrtSchedule as InverseSqrtSchedule
from ._schedules import LinearScheduleWithWarmup as LinearScheduleWithWarmup
from ._schedules import PolynomialDecayScheduleWithWarmup as PolynomialDecayScheduleWithWarmup
from ._schedules import WSDSchedule as WSDSchedule


def _scheduler_type(name) -> str:
    value = getattr(name, "value", name)
    if value not in SCHEDULER_NAMES:
        raise ValueError(f"{value} is not a valid SchedulerType, please select one of {list(SCHEDULER_NAMES)}")
    return value


def _missing(name: str, arg: str) -> ValueError:
    return ValueError(f"SchedulerType.{name.upper()} requires `{arg}`, please provide that argument.")


def get_scheduler(name, lr, num_warmup_steps=None, num_training_steps=None, scheduler_specific_kwargs=None):
    """The jaxsched schedule ``transformers.get_scheduler(name, optimizer, ...)`` builds, on an optimizer of LR ``lr``.

    Args:
      name: one of :data:`SCHEDULER_NAMES` (``"linear"``, ``"cosine"``, ...), or a ``transformers.SchedulerType``.
      lr: the optimizer's LR (a tuple: one per parameter group).
      num_warmup_steps: required by every name except ``constant``, ``reduce_lr_on_plateau`` and ``greedy``.
      num_training_steps: required by ``linear``, ``cosine``, ``cosine_with_restarts``, ``polynomial`` and the two
        min-LR cosines; ``warmup_stable_decay`` needs it or ``num_stable_steps``.
      scheduler_specific_kwargs: the remaining arguments of the schedule (``num_cycles``, ``lr_end``, ``power``,
        ``timescale``, ``min_lr``, ``min_lr_rate``, ``num_decay_steps``, ... or ReduceLROnPlateau's/GreedyLR's);
        ``lr_init`` stands for transformers' ``optimizer.defaults['lr']`` where that is used.

    Missing arguments raise the ValueError transformers raises; an unknown keyword raises TypeError.

    >>> from jaxsched.transformers import get_scheduler
    >>> get_scheduler("cosine", 1e-3, num_warmup_steps=10, num_training_steps=100)
    CosineScheduleWithWarmup(0.001, num_warmup_steps=10, num_training_steps=100, num_cycles=0.5)
    >>> get_scheduler("linear", 1e-3, num_warmup_steps=10)
    Traceback (most recent call last):
    ...
    ValueError: SchedulerType.LINEAR requires `num_training_steps`, please provide that argument.
    """
    name = _scheduler_type(name)
    kw = dict(scheduler_specific_kwargs or {})
    if name == "constant":
        return ConstantSchedule(lr)
    if name == "reduce_lr_on_plateau":
        return ReduceLROnPlateau(lr, **kw)
    if name == "greedy":
        return GreedyLR(lr, **kw)
    if num_warmup_steps is None:
        raise _missing(name, "num_warmup_steps")
    if name == "constant_with_warmup":
        return ConstantScheduleWithWarmup(lr, num_warmup_steps=num_warmup_steps)
    if name == "inverse_sqrt":
        return InverseSqrtSchedule(lr, num_warmup_steps=num_warmup_steps, **kw)
    if name == "warmup_stable_decay":
        return WSDSchedule(lr, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kw)
    if num_training_steps is None:
        raise _missing(name, "num_training_steps")
    cls = {
        "linear": LinearScheduleWithWarmup,
        "cosine": CosineScheduleWithWarmup,
        "cosine_with_restarts": CosineWithHardRestartsScheduleWithWarmup,
        "polynomial": PolynomialDecayScheduleWithWarmup,
        "cosine_with_min_lr": CosineWithMinLRScheduleWithWarmup,
        "cosine_warmup_with_min_lr": CosineWithMinLRScheduleWithWarmupLRRate,
    }[name]
    return cls(lr, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kw)


__all__ = [
    "SCHEDULER_NAMES",
    "ConstantSchedule",
    "ConstantScheduleWithWarmup",
    "CosineScheduleWithWarmup",
    "CosineWithHardRestartsScheduleWithWarmup",
    "CosineWithMinLRScheduleWithWarmup",
    "CosineWithMinLRScheduleWithWarmupLRRate",
    "GreedyLR",
    "GreedyLRState",
    "InverseSqrtSchedule",
    "LinearScheduleWithWarmup",
    "PolynomialDecayScheduleWithWarmup",
    "WSDSchedule",
    "get_scheduler",
]
