"""``from_torch``: a live torch LR scheduler as the jaxsched schedule that continues where it stands."""

from __future__ import annotations

from collections import Counter

import jax.numpy as jnp
import numpy as np

from ._adapters import Offset, Running, RunningState
from ._base import Schedule
from ._compose import ChainedScheduler, SequentialLR
from ._cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from ._numerics import float_dtype, int_dtype
from ._swa import SWALR
from ._plateau import PlateauState, ReduceLROnPlateau
from ._schedules import (ConstantLR, CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR,
                         MultiStepLR, PolynomialLR, StepLR)


def _one(values):
    """A per-group list as jaxsched takes it: a float for one group, else a tuple."""
    values = [float(v) for v in values]
    return values[0] if len(values) == 1 else tuple(values)


def _lambda(fns, name):
    fns = list(fns)
    return fns[0] if all(f is fns[0] for f in fns) else tuple(fns)


def _momentum_keys(sched):
    groups = sched.optimizer.param_groups
    return _one(g["base_momentum"] for g in groups), _one(g["max_momentum"] for g in groups)


def _config(sched, base) -> Schedule:
    """The jaxsched schedule for torch scheduler ``sched`` whose initial LRs are ``base`` (index 0 view)."""
    name = type(sched).__name__
    if name in ("LambdaLR", "MultiplicativeLR"):
        cls = LambdaLR if name == "LambdaLR" else MultiplicativeLR
        try:
            return cls(base, lr_lambda=_lambda(sched.lr_lambdas, name))
        except TypeError as err:
            raise TypeError(
                f"from_torch: the {name}'s lr_lambda cannot be converted: jaxsched calls it with the step as a "
                f"traced JAX integer so that the schedule runs under jit.\n{err}"
            ) from None
    if name == "StepLR":
        return StepLR(base, step_size=sched.step_size, gamma=sched.gamma)
    if name == "MultiStepLR":
        return MultiStepLR(base, milestones=sorted(Counter(sched.milestones).elements()), gamma=sched.gamma)
    if name == "ConstantLR":
        return ConstantLR(base, factor=sched.factor, total_iters=sched.total_iters)
    if name == "LinearLR":
        return LinearLR(base, start_factor=sched.start_factor, end_factor=sched.end_factor,
                        total_iters=sched.total_iters)
    if name == "ExponentialLR":
        return ExponentialLR(base, gamma=sched.gamma)
    if name == "PolynomialLR":
        return PolynomialLR(base, total_iters=sched.total_iters, power=sched.power)
    if name == "CosineAnnealingLR":
        return CosineAnnealingLR(base, T_max=sched.T_max, eta_min=sched.eta_min)
    if name == "CosineAnnealingWarmRestarts":
        return CosineAnnealingWarmRestarts(base, T_0=sched.T_0, T_mult=sched.T_mult, eta_min=sched.eta_min)
    if name == "SWALR":
        swa = _one(g["swa_lr"] for g in sched.optimizer.param_groups)
        return SWALR(base, swa_lr=swa, anneal_epochs=sched.anneal_epochs,
                     anneal_strategy="cos" if sched.anneal_func == sched._cosine_anneal else "linear")
    if name == "CyclicLR":
        return _cyclic(sched)
    if name == "OneCycleLR":
        return _onecycle(sched)
    if name == "SequentialLR":
        return SequentialLR([_config(s, base) for s in sched._schedulers], milestones=list(sched._milestones))
    if name == "ChainedScheduler":
        return ChainedScheduler([_config(s, base) for s in sched._schedulers])
    raise TypeError(f"from_torch: no jaxsched counterpart for torch scheduler {name!r}.")


def _int_if_whole(x):
    return int(round(x)) if abs(x - round(x)) <= 1e-9 * max(1.0, abs(x)) else x


def _cyclic(sched) -> CyclicLR:
    up = _int_if_whole(sched.total_size * sched.step_ratio)
    down = _int_if_whole(sched.total_size - sched.total_size * sched.step_ratio)
    custom = sched._scale_fn_custom
    kw = dict(base_lr=_one(sched.base_lrs), max_lr=_one(sched.max_lrs), step_size_up=up, step_size_down=down,
              mode=sched.mode, gamma=sched.gamma, cycle_momentum=bool(sched.cycle_momentum))
    if custom is not None:
        kw.update(scale_fn=custom, scale_mode=sched.scale_mode)
    if sched.cycle_momentum:
        kw["base_momentum"], kw["max_momentum"] = _one(sched.base_momentums), _one(sched.max_momentums)
    try:
        return CyclicLR(**kw)
    except TypeError as err:
        raise TypeError(f"from_torch: the CyclicLR's scale_fn cannot be converted.\n{err}") from None


def _onecycle(sched) -> OneCycleLR:
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
    div = max_lr[0] / init[0]
    final = init[0] / low[0]
    kw = dict(max_lr=_one(max_lr), total_steps=T, pct_start=pct, anneal_strategy=sched._anneal_func_type,
              cycle_momentum=bool(sched.cycle_momentum), div_factor=div, final_div_factor=final,
              three_phase=len(sched._schedule_phases) == 3)
    if sched.cycle_momentum:
        kw["base_momentum"], kw["max_momentum"] = _momentum_keys(sched)
    return OneCycleLR(**kw)


def _base_lrs(sched):
    name = type(sched).__name__
    if name in ("SequentialLR", "ChainedScheduler"):
        return _base_lrs(sched._schedulers[0])
    return [float(g["initial_lr"]) for g in sched.optimizer.param_groups]


def _steps(sched) -> int:
    name = type(sched).__name__
    if name == "SWALR":
        return sched._step_count - 1
    if name == "ChainedScheduler":
        return _steps(sched._schedulers[0])
    return int(sched.last_epoch)


def _plateau(sched):
    groups = sched.optimizer.param_groups
    lrs = [float(g["lr"]) for g in groups]
    min_lr = _one(sched.min_lrs) if sched.default_min_lr is None else sched.default_min_lr
    p = ReduceLROnPlateau(_one(lrs), mode=sched.mode, factor=sched.factor, patience=sched.patience,
                          threshold=sched.threshold, threshold_mode=sched.threshold_mode, cooldown=sched.cooldown,
                          min_lr=min_lr, eps=sched.eps)
    dtype, itype = float_dtype(), int_dtype()
    state = PlateauState(jnp.asarray(float(sched.best), dtype), jnp.asarray(sched.num_bad_epochs, itype),
                         jnp.asarray(sched.cooldown_counter, itype), jnp.asarray(sched.last_epoch, itype),
                         jnp.asarray(_one(lrs), dtype))
    return p, state


def from_torch(scheduler, *, running: bool = False):
    """The jaxsched equivalent of a live torch LR scheduler, continuing exactly where torch goes next.

    Works for a fresh scheduler, one stepped ``k`` times, and one restored with ``load_state_dict`` (the
    optimizer's state restored too, as torch requires). It reads the scheduler's attributes, the
    optimizer's ``initial_lr`` and group keys, and the LR the optimizer holds now.

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

    Raises:
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
    name = type(scheduler).__name__
    if not hasattr(scheduler, "optimizer"):
        raise TypeError(f"from_torch: expected a torch LR scheduler, got {scheduler!r}.")
    if name == "ReduceLROnPlateau":
        return _plateau(scheduler)
    if name == "CosineAnnealingWarmRestarts":
        t_cur = scheduler.T_cur
        if float(t_cur) != int(t_cur) or scheduler.last_epoch < 0:
            raise ValueError(
                f"from_torch: this CosineAnnealingWarmRestarts was stepped with a fractional epoch "
                f"(T_cur={t_cur!r}); a schedule of the step cannot continue it. For torch's "
                f"step(epoch + i / iters) idiom use jaxsched.PerEpoch(schedule, iters, fractional=True)."
            )
    base = _base_lrs(scheduler)
    if name in ("CyclicLR", "OneCycleLR"):
        schedule = _config(scheduler, None)
    elif name == "SWALR":
        schedule = _swalr(scheduler)
    else:
        schedule = _config(scheduler, _one(base))
    k = _steps(scheduler)
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


def _swalr(sched) -> SWALR:
    """SWALR anneals from the LR the optimizer held at construction; recover it from the LR it holds now."""
    groups = sched.optimizer.param_groups
    step = sched._step_count - 1
    A = sched.anneal_epochs
    if A == 0:
        step = max(1, step)
    alpha = sched.anneal_func(max(0, min(1, step / max(1, A))))
    start = [sched._get_initial_lr(g["lr"], g["swa_lr"], alpha) for g in groups]
    return _config(sched, _one(start))

