"""Run the torch scheduler that a jaxsched schedule mirrors, on a real torch optimizer.

``torch_trajectory(schedule, steps)`` builds a fresh optimizer whose parameter groups carry the
schedule's initial LRs, builds the torch scheduler that the schedule's class names in the catalogue
(``mirrors="torch.optim.lr_scheduler.StepLR"``) with the same arguments, and records the LR (and the
momentum or Adam ``betas[0]``) after ``0..steps`` calls of ``scheduler.step()``, each preceded by
``optimizer.step()`` as in a real training loop.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings

import jax
import numpy as np
import torch

import jaxsched


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


def counterpart(schedule) -> type:
    """The torch scheduler class that ``schedule``'s class mirrors (its ``mirrors=`` catalogue entry)."""
    path = type(schedule)._mirrors
    if path is None or not path.startswith("torch."):
        raise ValueError(f"{type(schedule).__name__} mirrors no torch scheduler (its catalogue entry: {path!r}).")
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def counterpart_args(schedule) -> dict:
    """torch's keyword arguments for ``schedule``: every constructor field but ``lr`` (the optimizer's LR).

    jaxsched keeps torch's argument names, so this reads the fields as they are; a class whose arguments need
    translating defines ``_counterpart_args(self) -> dict`` instead.
    """
    hook = getattr(schedule, "_counterpart_args", None)
    if hook is not None:
        return dict(hook())
    return {f.name: getattr(schedule, f.name) for f in dataclasses.fields(schedule) if f.init and f.name != "lr"}


def _torch_value(v, opt):
    """A jaxsched argument as torch takes it: members built on ``opt``, tuples as lists, lambdas as floats."""
    if isinstance(v, jaxsched.Schedule):
        return build(v, opt)
    if isinstance(v, (tuple, list)):
        return [_torch_value(x, opt) for x in v]
    if callable(v):
        return _torch_lambda(v)
    return v


def build(schedule, opt):
    """The torch scheduler mirroring ``schedule`` on optimizer ``opt`` (members constructed in list order)."""
    kwargs = {k: _torch_value(v, opt) for k, v in counterpart_args(schedule).items()}
    return counterpart(schedule)(optimizer=opt, **kwargs)


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
