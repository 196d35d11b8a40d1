"""``from_torch``: a live torch LR scheduler as the jaxsched schedule that continues where it stands.

The converter layer, above the catalogue: the catalogue classes know nothing of it. Each jaxsched class names
the torch class it mirrors (``mirrors="torch.optim.lr_scheduler.StepLR"``), and ``from_torch`` converts exactly
those classes. A torch subclass that overrides how the LR is computed (``get_lr``, ``_get_closed_form_lr``,
``step``) is refused: its LRs are not the built-in's. By default a class's constructor fields are read from the
torch object's attributes (the same-named one, or the one the class declares in ``_counterpart_attrs``) and
``lr`` is ``base``, the optimizer's initial LRs. The conversions that need code are here, keyed by class:
:data:`READERS` (the arguments), :data:`BASES` (a class that did not start from the optimizer's ``initial_lr``)
and :data:`STEPS` (a class whose step count is not torch's ``last_epoch``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import jax.numpy as jnp
import numpy as np

from . import _torch_releases
from ._adapters import Offset, Running, RunningState
from ._base import Schedule, StatefulSchedule
from ._compose import ChainedScheduler, SequentialLR
from ._cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from ._numerics import float_dtype, int_dtype
from ._plateau import PlateauState, ReduceLROnPlateau
from ._schedules import LambdaLR, MultiplicativeLR, MultiStepLR
from ._swa import SWALR
from ._value import CATALOGUE, Value

if TYPE_CHECKING:  # for the overloads of from_torch only: importing jaxsched never imports torch
    from torch.optim.lr_scheduler import LRScheduler as _TorchScheduler
    from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchPlateau

#: The methods whose override makes a torch subclass compute other LRs than the class it extends.
_LR_METHODS = ("get_lr", "_get_closed_form_lr", "step")


def per_group(values):
    """A per-group list as jaxsched takes it: a float for one group, else a tuple."""
    values = [float(v) for v in values]
    return values[0] if len(values) == 1 else tuple(values)


def one_or_tuple(fns):
    """torch's per-group callables as jaxsched takes them: one shared callable, else a tuple."""
    fns = list(fns)
    return fns[0] if all(f is fns[0] for f in fns) else tuple(fns)


def group_values(sched, key: str):
    """The optimizer's per-group ``key`` (``"initial_lr"``, ``"swa_lr"``, ...) as jaxsched takes it."""
    return per_group(g[key] for g in sched.optimizer.param_groups)


def with_callables(cls: type[Value], field: str, kwargs: dict) -> Value:
    """``cls(**kwargs)``, saying which torch callable could not be converted when JAX cannot trace it."""
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"from_torch: the {cls.__name__}'s {field} cannot be converted: jaxsched calls it with the step as a "
            f"traced JAX integer so that the schedule runs under jit.\n{err}"
        ) from None


def counterparts() -> dict[type, type[Value]]:
    """Each catalogued torch class (resolved from its dotted path) and the jaxsched class that mirrors it."""
    out: dict[type, type[Value]] = {}
    for path, cls in CATALOGUE.items():
        if not path.startswith("torch."):
            continue
        module, _, name = path.rpartition(".")
        try:
            out[getattr(importlib.import_module(module), name)] = cls
        except (ImportError, AttributeError):  # a torch without this scheduler
            continue
    return out


def counterpart_of(sched) -> type[Value]:
    """The jaxsched class for torch scheduler ``sched``: its exact class in the catalogue."""
    table = counterparts()
    tcls = type(sched)
    if tcls in table:
        return table[tcls]
    base = next((t for t in tcls.__mro__[1:] if t in table), None)
    if base is not None:
        changed = [m for m in _LR_METHODS if getattr(tcls, m, None) is not getattr(base, m, None)]
        if not changed:  # a subclass that only changes the constructor's defaults computes torch's LRs
            return table[base]
        raise TypeError(
            f"from_torch: {tcls.__module__}.{tcls.__qualname__} subclasses torch's {base.__name__} and overrides "
            f"{', '.join(changed)}, so its LRs need not be {base.__name__}'s; jaxsched converts torch's own "
            f"schedulers only. Write the schedule as a jaxsched class, or convert a plain {base.__name__}."
        )
    known = ", ".join(sorted(t.__name__ for t in table))
    raise TypeError(f"from_torch: no jaxsched counterpart for torch scheduler {tcls.__qualname__!r}; "
                    f"jaxsched mirrors: {known}.")


def read_fields(cls: type[Value], obj, fixed: dict, who: str = "from_torch") -> Value:
    """``cls`` built from ``obj``: the fields in ``fixed`` as given, every other constructor field read from the
    attribute the class declares in ``_counterpart_attrs`` (a dotted path), by default the same-named one."""
    kwargs = dict(fixed)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.name in kwargs:
            continue
        path = cls._counterpart_attrs.get(f.name, f.name)
        value: Any = obj
        for part in path.split("."):
            if not hasattr(value, part):
                raise TypeError(
                    f"{who}: {type(obj).__name__} has no attribute {path!r} to read {cls.__name__}.{f.name} from; "
                    f"declare where it is in {cls.__name__}._counterpart_attrs or give the class a reader."
                )
            value = getattr(value, part)
        kwargs[f.name] = value
    return cls(**kwargs)


def read_attributes(cls: type[Value], sched, base) -> Value:
    """The default conversion: ``lr`` is ``base``, every other field read from its attribute."""
    return read_fields(cls, sched, {"lr": base})


def convert(sched, base) -> Any:
    """The jaxsched value for torch scheduler ``sched`` whose initial LRs are ``base`` (its index 0 view): a
    Schedule, or ``(schedule, state)`` for a StatefulSchedule."""
    cls = counterpart_of(sched)
    return READERS.get(cls, read_attributes)(cls, sched, base)


def base_lrs(sched):
    """The LRs ``sched`` started from: the optimizer's initial LRs (a composite's: its first member's), unless
    :data:`BASES` says otherwise."""
    hook = BASES.get(counterpart_of(sched))
    if hook is not None:
        return hook(sched)
    members = getattr(sched, "_schedulers", None)
    if members:
        return base_lrs(members[0])
    return group_values(sched, "initial_lr")


def steps_taken(sched) -> int:
    """How many ``step()`` calls ``sched`` has taken (torch's ``last_epoch`` unless :data:`STEPS` says otherwise)."""
    hook = STEPS.get(counterpart_of(sched))
    if hook is not None:
        return int(hook(sched))
    if not hasattr(sched, "last_epoch"):  # ChainedScheduler: its members count
        return steps_taken(sched._schedulers[0])
    return int(sched.last_epoch)


# ----------------------------------------------------------------------------------------------------------
# the conversions that need code (torch keeps these arguments under other names or in other forms), keyed by
# the jaxsched class in READERS / BASES / STEPS below; every other class is read by read_attributes


def lambdas_from(cls, sched, base):
    """LambdaLR, MultiplicativeLR: torch's ``lr_lambdas``, one per group or one shared."""
    return with_callables(cls, "lr_lambda", dict(lr=base, lr_lambda=one_or_tuple(sched.lr_lambdas)))


def multistep_from(cls, sched, base):
    """MultiStepLR: torch keeps ``milestones`` as a Counter (a repeated milestone decays twice)."""
    return cls(base, milestones=sorted(sched.milestones.elements()), gamma=sched.gamma)


def warm_restarts_from(cls, sched, base):
    """CosineAnnealingWarmRestarts, stepped with integer epochs only."""
    t_cur = sched.T_cur
    if float(t_cur) != int(t_cur) or sched.last_epoch < 0:
        raise ValueError(
            f"from_torch: this CosineAnnealingWarmRestarts was stepped with a fractional epoch "
            f"(T_cur={t_cur!r}); a schedule of the step cannot continue it. For torch's "
            f"step(epoch + i / iters) idiom use jaxsched.PerEpoch(schedule, iters, fractional=True)."
        )
    return read_attributes(cls, sched, base)


def sequential_from(cls, sched, base):
    """SequentialLR: each member converted on the same initial LRs."""
    return cls([convert(s, base) for s in sched._schedulers], milestones=list(sched._milestones))


def chained_from(cls, sched, base):
    """ChainedScheduler: each member converted on the same initial LRs."""
    return cls([convert(s, base) for s in sched._schedulers])



def _int_if_whole(x):
    return int(round(x)) if abs(x - round(x)) <= 1e-9 * max(1.0, abs(x)) else x


def cyclic_from(cls, sched):
    """CyclicLR: torch keeps ``total_size``/``step_ratio``, the LRs in ``base_lrs``/``max_lrs``."""
    up = _int_if_whole(sched.total_size * sched.step_ratio)
    down = _int_if_whole(sched.total_size - sched.total_size * sched.step_ratio)
    kw: dict[str, Any] = dict(
        base_lr=per_group(sched.base_lrs), max_lr=per_group(sched.max_lrs), step_size_up=up, step_size_down=down,
        mode=sched.mode, gamma=sched.gamma, cycle_momentum=bool(sched.cycle_momentum))
    if sched._scale_fn_custom is not None:
        kw.update(scale_fn=sched._scale_fn_custom, scale_mode=sched.scale_mode)
    if sched.cycle_momentum:
        kw["base_momentum"], kw["max_momentum"] = per_group(sched.base_momentums), per_group(sched.max_momentums)
    return with_callables(cls, "scale_fn", kw)


def onecycle_from(cls, sched):
    """OneCycleLR: torch keeps the phase ends and the per-group LRs; recover ``pct_start`` exactly."""
    groups = sched.optimizer.param_groups
    T = sched.total_steps
    end = sched._schedule_phases[0]["end_step"]
    pct = (end + 1) / T
    for _ in range(8):  # the float whose float(pct * T) - 1 is torch's phase end exactly
        if float(pct * T) - 1 == end:
            break
        pct = float(np.nextafter(pct, np.inf if float(pct * T) - 1 < end else -np.inf))
    pct = min(max(pct, 0.0), 1.0)
    max_lr = [g["max_lr"] for g in groups]
    init = [g["initial_lr"] for g in groups]
    low = [g["min_lr"] for g in groups]
    kw: dict[str, Any] = dict(
        max_lr=per_group(max_lr), total_steps=T, pct_start=pct, anneal_strategy=_torch_releases.anneal_strategy(sched),
        cycle_momentum=bool(sched.cycle_momentum), div_factor=max_lr[0] / init[0],
        final_div_factor=init[0] / low[0], three_phase=len(sched._schedule_phases) == 3)
    if sched.cycle_momentum:
        kw["base_momentum"] = group_values(sched, "base_momentum")
        kw["max_momentum"] = group_values(sched, "max_momentum")
    return cls(**kw)


def swalr_base(sched):
    """SWALR anneals from the LR the optimizer held at its construction; recover it from the LR held now."""
    groups = sched.optimizer.param_groups
    step = sched._step_count - 1
    A = sched.anneal_epochs
    if A == 0:
        step = max(1, step)
    alpha = sched.anneal_func(max(0, min(1, step / max(1, A))))
    return per_group(sched._get_initial_lr(g["lr"], g["swa_lr"], alpha) for g in groups)


def swalr_from(cls, sched, base):
    """SWALR: torch keeps ``swa_lr`` in the parameter groups and the strategy as a function."""
    return cls(base, swa_lr=group_values(sched, "swa_lr"), anneal_epochs=sched.anneal_epochs,
               anneal_strategy="cos" if sched.anneal_func == sched._cosine_anneal else "linear")


def plateau_from(cls, sched):
    """ReduceLROnPlateau: the schedule on the LRs held now, and the state torch is in (``(plateau, state)``)."""
    lrs = group_values(sched, "lr")
    default = getattr(sched, "default_min_lr", None)  # torch <= 2.5 keeps only min_lrs
    min_lr = per_group(sched.min_lrs) if default is None else default
    p = cls(lrs, mode=sched.mode, factor=sched.factor, patience=sched.patience, threshold=sched.threshold,
            threshold_mode=sched.threshold_mode, cooldown=sched.cooldown, min_lr=min_lr, eps=sched.eps)
    dtype, itype = float_dtype(), int_dtype()
    state = PlateauState(jnp.asarray(float(sched.best), dtype), jnp.asarray(sched.num_bad_epochs, itype),
                         jnp.asarray(sched.cooldown_counter, itype), jnp.asarray(sched.last_epoch, itype),
                         jnp.asarray(lrs, dtype))
    return p, state


#: The classes whose arguments need code to read back: ``reader(cls, sched, base)``.
READERS: dict[type, Callable[[Any, Any, Any], Any]] = {
    LambdaLR: lambdas_from,
    MultiplicativeLR: lambdas_from,
    MultiStepLR: multistep_from,
    CosineAnnealingWarmRestarts: warm_restarts_from,
    CyclicLR: lambda cls, sched, base: cyclic_from(cls, sched),
    OneCycleLR: lambda cls, sched, base: onecycle_from(cls, sched),
    SWALR: swalr_from,
    ReduceLROnPlateau: lambda cls, sched, base: plateau_from(cls, sched),
    SequentialLR: sequential_from,
    ChainedScheduler: chained_from,
}
#: The classes that did not start from the optimizer's ``initial_lr``: the LRs they started from.
BASES: dict[type, Callable[[Any], Any]] = {SWALR: swalr_base}
#: The classes whose step count is not torch's ``last_epoch`` (torch's SWALR counts ``_step_count - 1``).
STEPS: dict[type, Callable[[Any], int]] = {SWALR: lambda sched: sched._step_count - 1}


# ----------------------------------------------------------------------------------------------------------


# torch's ReduceLROnPlateau is an LRScheduler: the overlap with the overloads below is the point (it gives a tuple)
@overload
def from_torch(  # pyright: ignore[reportOverlappingOverload]
    scheduler: _TorchPlateau, *, running: bool = False) -> tuple[ReduceLROnPlateau, PlateauState]: ...
@overload
def from_torch(scheduler: _TorchScheduler, *, running: Literal[False] = False) -> Schedule: ...
@overload
def from_torch(scheduler: _TorchScheduler, *, running: Literal[True]) -> tuple[Running, RunningState]: ...
@overload
def from_torch(scheduler: _TorchScheduler, *, running: bool) -> Schedule | tuple[Running, RunningState]: ...
def from_torch(scheduler: Any, *, running: bool = False) -> Any:
    """The jaxsched equivalent of a live torch LR scheduler, continuing exactly where torch goes next.

    Works for a fresh scheduler, one stepped ``k`` times, and one restored with ``load_state_dict`` (the
    optimizer's state restored too, as torch requires). It reads the scheduler's attributes, the
    optimizer's ``initial_lr`` and group keys, and the LR the optimizer holds now.

    Typed by its input: type checkers (pyright) see ``(ReduceLROnPlateau, PlateauState)`` for torch's
    ReduceLROnPlateau, ``(Running, RunningState)`` for ``running=True`` and a ``Schedule`` otherwise.

    Returns:
      * ReduceLROnPlateau: ``(plateau, state)``; ``plateau(state)`` is the optimizer's LR now and
        ``plateau.update(state, value=m)`` does what torch's ``step(m)`` does next.
      * any other scheduler: a schedule ``s`` with ``s(i)`` = the LR after ``i`` more ``scheduler.step()``
        calls (``s(0)`` is the LR now): the jaxsched schedule itself when the scheduler is fresh, else
        :class:`jaxsched.Offset` ``(schedule, start=k)``. CyclicLR/OneCycleLR keep ``s.momentum``.
      * with ``running=True``: ``(jaxsched.Running(schedule), RunningState(last_epoch=k, lr=LR now))``, the
        O(1)-per-step recursive form seeded with the optimizer's LR. Use it when the LR was edited outside
        the scheduler: torch's recursive schedulers (StepLR, ExponentialLR, ...) keep multiplying the
        edited LR, which no function of the step can know.

    It reads ``torch.__version__``: jaxsched follows torch 2.13 (2.14 and 2.15 are the same), and where an
    older release computes another LR sequence for this scheduler it refuses, naming the release and the
    difference; a SequentialLR with a milestone at 0 under torch <= 2.12 is converted to
    ``SequentialLR(..., release=torch.__version__)``, which reproduces that release. Objects of torch 2.0 to
    2.12 are converted; the per-release differences, measured, are on the
    [torch releases](torch-releases.md) page of the documentation (docs/torch-releases.md).

    Raises:
      TorchReleaseError (a ValueError): the installed torch release gives this scheduler another LR sequence
        than jaxsched (torch < 2.0; or, up to the release named, a MultiplicativeLR or SWALR member of a
        SequentialLR after a milestone, a CosineAnnealingWarmRestarts constructed with last_epoch >= T_0).
      TypeError: a ``lr_lambda``/``scale_fn`` that JAX cannot trace (Python ``if`` on the step), or an
        unknown scheduler class.
      ValueError: the optimizer's LR is not what the schedule gives at step ``k`` (edited outside the
        scheduler) and ``running`` is False; or CosineAnnealingWarmRestarts stepped with fractional epochs.

    >>> import torch, jaxsched
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(3):
    ...     opt.step(); sched.step()
    >>> s = jaxsched.from_torch(sched)
    >>> s
    Offset(StepLR(0.1, step_size=2, gamma=0.5), start=3)
    >>> [round(float(s(i)), 6) for i in range(4)]
    [0.05, 0.025, 0.025, 0.0125]
    """
    if not hasattr(scheduler, "optimizer"):
        raise TypeError(f"from_torch: expected a torch LR scheduler, got {scheduler!r}.")
    if not isinstance(getattr(scheduler.optimizer, "param_groups", None), list):
        raise TypeError(
            f"from_torch: scheduler.optimizer must be a torch optimizer (with param_groups), got "
            f"optimizer={scheduler.optimizer!r} for {type(scheduler).__name__}."
        )
    # the installed torch release computes jaxsched's sequence, or one that jaxsched offers (release=), or say why not
    release = _torch_releases.check(scheduler)
    cls = counterpart_of(scheduler)
    if issubclass(cls, StatefulSchedule):  # the plateau: its reader gives the schedule and the state it is in
        return convert(scheduler, None)
    added = [i for i, g in enumerate(scheduler.optimizer.param_groups) if "initial_lr" not in g]
    if added:
        raise ValueError(
            f"from_torch: parameter group(s) {added} have no 'initial_lr': they were added with "
            f"optimizer.add_param_group after {type(scheduler).__name__} was created, so torch's scheduler has "
            f"no initial LR for them (its base_lrs has {len(getattr(scheduler, 'base_lrs', []))} entries for "
            f"{len(scheduler.optimizer.param_groups)} groups) and there is no schedule to convert. Create the "
            f"scheduler after adding every group."
        )
    base = base_lrs(scheduler)
    schedule = convert(scheduler, base)
    if release is not None:  # SequentialLR with a milestone at 0 under torch <= 2.12
        schedule = dataclasses.replace(schedule, release=release)
    k = steps_taken(scheduler)
    now = np.asarray([float(g["lr"]) for g in scheduler.optimizer.param_groups], np.float64)
    if running:
        dtype = float_dtype()
        lr = jnp.asarray(now[0] if len(now) == 1 else now, dtype)
        return Running(schedule), RunningState(jnp.asarray(k, int_dtype()), lr)
    s = schedule if k == 0 else Offset(schedule, k)
    got = np.atleast_1d(np.asarray(s(0), np.float64))
    # relative to the LR held now, with an absolute floor at the initial LRs: a decayed LR (torch's
    # -1.5e-18 where the closed form is 0, or 5e-92 where float32 holds 0) is not an edit
    scale = max(float(np.max(np.abs(now))), float(np.max(np.abs(np.asarray(base, np.float64)))), 1e-300)
    tol = 1e-9 if float_dtype() == jnp.float64 else 1e-5
    if got.shape != now.shape or not np.all(np.abs(got - now) <= tol * scale):
        raise ValueError(
            f"from_torch: the optimizer holds lr={now.tolist()} but {s!r} gives {got.tolist()} at this step: the "
            f"LR was changed outside the scheduler (or the optimizer state was not restored with "
            f"optimizer.load_state_dict). Pass running=True to continue from the LR the optimizer holds, as "
            f"torch's recursive update does."
        )
    return s
