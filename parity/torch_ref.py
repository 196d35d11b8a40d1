"""Run the torch scheduler that a jaxsched schedule mirrors, on a real torch optimizer.

``torch_trajectory(schedule, steps)`` builds a fresh optimizer whose parameter groups carry the
schedule's initial LRs, builds the torch scheduler with the same arguments, and records the LR (and the
momentum or Adam ``betas[0]``) after ``0..steps`` calls of ``scheduler.step()``, each preceded by
``optimizer.step()`` as in a real training loop.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import torch


def _groups(schedule) -> int | None:
    return schedule.num_groups


def make_optimizer(lrs, optimizer: str = "sgd"):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    groups = [{"params": [p], "lr": float(lr)} for p, lr in zip(params, lrs)]
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=float(lrs[0]), momentum=0.9)
    if optimizer == "adam":
        return torch.optim.Adam(groups, lr=float(lrs[0]))
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")


def _torch_lambda(fn):
    """A jaxsched lambda (jnp-traceable) as a Python-float function, as torch calls it.

    It is evaluated with x64 on, so that ``jnp.minimum(1.0, (e + 1) / 10)`` gives torch the float64 value a
    Python lambda would, not a float32 one.
    """
    if isinstance(fn, tuple):
        return [_torch_lambda(f) for f in fn]

    def call(e):
        with jax.enable_x64(True):
            return float(np.asarray(fn(e)))

    return call


def build(schedule, opt):
    """The torch scheduler mirroring ``schedule`` on optimizer ``opt`` (constructed in list order)."""
    S = torch.optim.lr_scheduler
    name = type(schedule).__name__
    a = {k: getattr(schedule, k) for k in schedule.__dataclass_fields__}
    listify = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    if name == "LambdaLR":
        return S.LambdaLR(opt, _torch_lambda(a["lr_lambda"]))
    if name == "MultiplicativeLR":
        return S.MultiplicativeLR(opt, _torch_lambda(a["lr_lambda"]))
    if name == "StepLR":
        return S.StepLR(opt, a["step_size"], a["gamma"])
    if name == "MultiStepLR":
        return S.MultiStepLR(opt, list(a["milestones"]), a["gamma"])
    if name == "ConstantLR":
        return S.ConstantLR(opt, a["factor"], a["total_iters"])
    if name == "LinearLR":
        return S.LinearLR(opt, a["start_factor"], a["end_factor"], a["total_iters"])
    if name == "ExponentialLR":
        return S.ExponentialLR(opt, a["gamma"])
    if name == "PolynomialLR":
        return S.PolynomialLR(opt, a["total_iters"], a["power"])
    if name == "CosineAnnealingLR":
        return S.CosineAnnealingLR(opt, a["T_max"], a["eta_min"])
    if name == "CosineAnnealingWarmRestarts":
        return S.CosineAnnealingWarmRestarts(opt, a["T_0"], a["T_mult"], a["eta_min"])
    if name == "SWALR":
        return torch.optim.swa_utils.SWALR(opt, listify(a["swa_lr"]), a["anneal_epochs"], a["anneal_strategy"])
    if name == "CyclicLR":
        kw = dict(base_lr=listify(a["base_lr"]), max_lr=listify(a["max_lr"]), step_size_up=a["step_size_up"],
                  step_size_down=a["step_size_down"], mode=a["mode"], gamma=a["gamma"],
                  scale_mode=a["scale_mode"], cycle_momentum=a["cycle_momentum"],
                  base_momentum=listify(a["base_momentum"]), max_momentum=listify(a["max_momentum"]))
        if a["scale_fn"] is not None:
            kw["scale_fn"] = _torch_lambda(a["scale_fn"])
        return S.CyclicLR(opt, **kw)
    if name == "OneCycleLR":
        return S.OneCycleLR(opt, max_lr=listify(a["max_lr"]), total_steps=a["total_steps"], epochs=a["epochs"],
                            steps_per_epoch=a["steps_per_epoch"], pct_start=a["pct_start"],
                            anneal_strategy=a["anneal_strategy"], cycle_momentum=a["cycle_momentum"],
                            base_momentum=listify(a["base_momentum"]), max_momentum=listify(a["max_momentum"]),
                            div_factor=a["div_factor"], final_div_factor=a["final_div_factor"],
                            three_phase=a["three_phase"])
    if name == "SequentialLR":
        subs = [build(s, opt) for s in a["schedulers"]]
        return S.SequentialLR(opt, subs, list(a["milestones"]))
    if name == "ChainedScheduler":
        subs = [build(s, opt) for s in a["schedulers"]]
        return S.ChainedScheduler(subs, opt)
    raise ValueError(f"no torch counterpart known for {name}")


def initial_lrs(schedule) -> list[float]:
    """The optimizer LRs the torch run starts from (one per group)."""
    g = _groups(schedule) or 1
    base = schedule._base
    if isinstance(base, tuple):
        return [float(x) for x in base]
    return [float(base)] * g


def torch_trajectory(schedule, steps: int, optimizer: str = "sgd"):
    """``(lr, momentum)`` as float64 arrays of shape ``(steps + 1, G)``; momentum is None unless cycled."""
    opt = make_optimizer(initial_lrs(schedule), optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = build(schedule, opt)
        cycles = getattr(schedule, "cycle_momentum", False)
        lrs, moms = [], []

        def record():
            lrs.append([float(g["lr"]) for g in opt.param_groups])
            if cycles:
                key = "betas" if "betas" in opt.defaults else "momentum"
                moms.append([float(g[key][0] if key == "betas" else g[key]) for g in opt.param_groups])

        record()
        for _ in range(steps):
            opt.step()
            sched.step()
            record()
    return np.asarray(lrs, np.float64), (np.asarray(moms, np.float64) if cycles else None)
