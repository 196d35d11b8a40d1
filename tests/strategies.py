"""Hypothesis strategies: one per torch scheduler, drawing configurations over the whole valid range.

Each ``<name>_cases()`` strategy draws ``(schedule, steps)``: a jaxsched schedule and the trajectory length to
compare (``steps + 1`` LRs, indices ``0..steps``). Exclusions from torch's accepted range are commented where
they are made; they are jaxsched's documented restrictions, not gaps.

User callables (``lr_lambda``, ``scale_fn``) are drawn from a small family of jnp-traceable forms. Each carries
its source text, so :func:`pasteable` turns a schedule's repr into a constructor call that can be pasted into a
Python session with ``import jax.numpy as jnp; from jaxsched import *``.
"""

from __future__ import annotations

import dataclasses
import doctest
import functools
import importlib
import inspect
import pkgutil
import re

import jax.numpy as jnp
from hypothesis import strategies as st

import jaxsched
import jaxsched.keras
import jaxsched.timm
import jaxsched.transformers
from jaxsched._value import REGISTRY

# ------------------------------------------------------------------------------------------------------------
# building blocks

MAX_STEPS = 400


def _finite(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def lrs():
    """A positive initial LR spanning five decades, plus the corner 0.0 (torch's optimizers accept it)."""
    return st.one_of(_finite(1e-4, 10.0), st.just(0.0), st.sampled_from([0.1, 1.0]))


def steps(lo=50, hi=MAX_STEPS):
    return st.integers(lo, hi)


def groups():
    """``None`` for a scalar schedule, else the number of parameter groups."""
    return st.sampled_from([None, None, 1, 2, 3])


def per_group(value_strategy, n):
    """A scalar (``n is None``) or a tuple of ``n`` values."""
    if n is None:
        return value_strategy
    return st.tuples(*([value_strategy] * n))


# ------------------------------------------------------------------------------------------------------------
# user callables: a small family of jnp-traceable forms with their source text


@functools.cache
def named(src: str):
    """The function ``eval(src)`` whose repr (``__qualname__``) is its source, e.g. ``(lambda e: 0.9 ** e)``."""
    fn = eval(src, {"jnp": jnp})  # noqa: S307 - test-only, text built from numbers below
    fn.__qualname__ = src
    fn.__name__ = src
    return fn


def pasteable(schedule) -> str:
    """``repr(schedule)`` with each ``<function (lambda e: ...)>`` replaced by its source."""
    return re.sub(r"<function (\(lambda e: .*?\))>", r"\1", repr(schedule))


def _num(x: float) -> str:
    return repr(float(x))


def lambda_factors():
    """``e -> factor`` forms for LambdaLR (absolute: the factor multiplies the initial LR)."""
    return st.one_of(
        _finite(0.0, 2.0).map(lambda c: named(f"(lambda e: {_num(c)} + 0 * e)")),
        _finite(0.5, 1.0).map(lambda g: named(f"(lambda e: {_num(g)} ** e)")),
        st.integers(1, 60).map(lambda w: named(f"(lambda e: jnp.minimum(1.0, (e + 1) / {w}))")),
        st.just(named("(lambda e: 1.0 / (e + 1))")),
        st.tuples(st.integers(0, 200), _finite(0.0, 1.5), _finite(0.0, 1.5)).map(
            lambda t: named(f"(lambda e: jnp.where(e < {t[0]}, {_num(t[1])}, {_num(t[2])}))")),
        st.integers(1, 200).map(lambda T: named(f"(lambda e: 0.5 * (1 + jnp.cos(jnp.pi * e / {T})))")),
    )


def multiplicative_factors():
    """``e -> factor`` forms for MultiplicativeLR (the LR is multiplied by ``f(e)`` at every step)."""
    return st.one_of(
        # constant factors: MultiplicativeLR's closed form lr * f ** e. Factors above 1 compound; keep
        # f ** MAX_STEPS below ~e**4 so float32's exp(e * log f) stays within 1e-6 of the largest LR.
        _finite(0.5, 1.01).map(lambda c: named(f"(lambda e: {_num(c)})")),
        st.just(named("(lambda e: 0.95)")),
        st.tuples(st.integers(0, 100), _finite(0.3, 1.0)).map(
            lambda t: named(f"(lambda e: jnp.where(e < {t[0]}, {_num(t[1])}, 1.0))")),
        st.just(named("(lambda e: 1.0 / (e + 1))")),
        st.integers(1, 50).map(lambda k: named(f"(lambda e: 1.0 - 1.0 / (e + {k}))")),
    )


def scale_fns(mode="cycle"):
    """CyclicLR ``scale_fn`` forms (called with the cycle number >= 1, or the step >= 0 for 'iterations')."""
    forms = [
        st.just(named("(lambda e: 0.5 ** e)")),
        _finite(0.9, 1.0).map(lambda g: named(f"(lambda e: {_num(g)} ** e)")),
        st.just(named("(lambda e: 1.0 / (2.0 ** (e - 1)))")),
        _finite(0.0, 1.0).map(lambda c: named(f"(lambda e: {_num(c)} + 0 * e)")),
    ]
    if mode == "cycle":  # 1 / e at step 0 is torch's ZeroDivisionError in 'iterations' mode
        forms.append(st.just(named("(lambda e: 1.0 / e)")))
    return st.one_of(*forms)


def _callables(strategy, n):
    """One callable, or (for ``n`` groups) either one shared callable or a tuple of ``n``."""
    if n is None:
        return strategy
    return st.one_of(strategy, st.tuples(*([strategy] * n)))


# ------------------------------------------------------------------------------------------------------------
# one strategy per scheduler: each draws (schedule, steps)


@st.composite
def lambdalr_cases(draw, lr=None):
    n = draw(groups())
    lr = draw(per_group(lrs(), n)) if lr is None else lr
    return jaxsched.LambdaLR(lr, lr_lambda=draw(_callables(lambda_factors(), _n(lr)))), draw(steps())


@st.composite
def multiplicativelr_cases(draw, lr=None):
    n = draw(groups())
    lr = draw(per_group(lrs(), n)) if lr is None else lr
    return jaxsched.MultiplicativeLR(lr, lr_lambda=draw(_callables(multiplicative_factors(), _n(lr)))), draw(steps())


def gammas():
    """Decay factors, incl. 0, 1 and negative ones (torch accepts any gamma)."""
    return st.one_of(_finite(0.0, 1.0), st.sampled_from([0.0, 0.1, 0.5, 1.0, -0.5]), _finite(1.0, 1.5))


@st.composite
def steplr_cases(draw, lr=None):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    size = draw(st.integers(1, 60))
    gamma = draw(gammas())
    if abs(gamma) > 1.0:  # growth: keep gamma ** (steps / step_size) modest (float32's exp(k log gamma))
        size = max(size, 20)
    return jaxsched.StepLR(lr, step_size=size, gamma=gamma), draw(steps())


@st.composite
def multisteplr_cases(draw, lr=None):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    n = draw(steps())
    # non-negative integer milestones (jaxsched's deliberate restriction); unsorted, repeated and 0 allowed
    ms = draw(st.lists(st.integers(0, n + 10), max_size=6))
    return jaxsched.MultiStepLR(lr, milestones=ms, gamma=draw(gammas())), n


@st.composite
def constantlr_cases(draw, lr=None):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    total = draw(st.integers(0, 120))
    # factor=0 with total_iters > 0 makes torch divide by zero at total_iters: jaxsched rejects it.
    factor = draw(st.one_of(_finite(0.0, 1.0), st.sampled_from([1.0, 1.0 / 3])) if total == 0
                  else st.one_of(_finite(1e-3, 1.0), st.just(1.0)))
    return jaxsched.ConstantLR(lr, factor=factor, total_iters=total), draw(steps())


@st.composite
def linearlr_cases(draw, lr=None, allow_zero_iters=True):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    total = draw(st.integers(0 if allow_zero_iters else 1, 150))
    sf = draw(st.one_of(_finite(1e-3, 1.0), st.just(1.0)))
    ef = draw(st.one_of(_finite(0.0, 1.0), st.sampled_from([0.0, 1.0])))
    return jaxsched.LinearLR(lr, start_factor=sf, end_factor=ef, total_iters=total), draw(steps())


@st.composite
def exponentiallr_cases(draw, lr=None):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    # gamma > 1 compounds: <= 1.01 keeps gamma ** 400 < e**4 (see multiplicative_factors)
    gamma = draw(st.one_of(_finite(0.0, 1.0), _finite(0.98, 1.01), st.sampled_from([0.0, 1.0, -0.9])))
    return jaxsched.ExponentialLR(lr, gamma=gamma), draw(steps())


@st.composite
def polynomiallr_cases(draw, lr=None, allow_zero_iters=True):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    total = draw(st.integers(0 if allow_zero_iters else 1, 300))
    # a negative power makes torch divide by zero at total_iters (jaxsched rejects it unless total_iters=0)
    power = draw(st.one_of(_finite(0.0, 5.0), st.sampled_from([0.0, 0.5, 1.0, 2.0]))
                 if total else _finite(-2.0, 5.0))
    return jaxsched.PolynomialLR(lr, total_iters=total, power=power), draw(steps())


@st.composite
def cosineannealinglr_cases(draw, lr=None):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    T = draw(st.integers(1, 150))  # positive int T_max: jaxsched's deliberate restriction
    eta = draw(st.one_of(st.just(0.0), _finite(0.0, 1.0), _finite(-0.1, 0.0)))
    return jaxsched.CosineAnnealingLR(lr, T_max=T, eta_min=eta), draw(steps())


@st.composite
def cawr_cases(draw, lr=None):
    lr = draw(per_group(lrs(), draw(groups()))) if lr is None else lr
    T0 = draw(st.integers(1, 60))
    Tm = draw(st.integers(1, 4))
    eta = draw(st.one_of(st.just(0.0), _finite(0.0, 1.0), st.just(-0.01)))
    return jaxsched.CosineAnnealingWarmRestarts(lr, T_0=T0, T_mult=Tm, eta_min=eta), draw(steps())


@st.composite
def swalr_cases(draw, lr=None):
    n = draw(groups())
    lr = draw(per_group(lrs(), n)) if lr is None else lr
    n = _n(lr)
    swa = draw(st.one_of(lrs(), per_group(lrs(), n)) if n is not None else lrs())
    anneal = draw(st.one_of(st.just(0), st.just(1), st.integers(0, 150)))
    strategy = draw(st.sampled_from(["cos", "linear"]))
    return jaxsched.SWALR(lr, swa_lr=swa, anneal_epochs=anneal, anneal_strategy=strategy), draw(steps())


def _n(lr):
    return len(lr) if isinstance(lr, tuple) else None


@st.composite
def cycliclr_cases(draw):
    n = draw(groups())
    base = draw(per_group(lrs(), n))
    peak = draw(per_group(lrs(), n))  # torch accepts max_lr < base_lr too
    size = st.one_of(st.integers(1, 40), _finite(0.25, 40.0), st.sampled_from([0.5, 1.5, 2.5]))
    up = draw(size)
    down = draw(st.one_of(st.none(), st.just(0), size))
    mode = draw(st.sampled_from(["triangular", "triangular2", "exp_range"]))
    kw = {}
    if draw(st.booleans()):  # a custom scale_fn overrides mode, in both scale modes
        kw["scale_mode"] = draw(st.sampled_from(["cycle", "iterations"]))
        kw["scale_fn"] = draw(scale_fns(kw["scale_mode"]))
    # exp_range's amplitude is gamma ** step: jaxsched rejects gamma > 1 for it (overflow); any gamma otherwise
    gamma = draw(_finite(0.9, 1.0) if mode == "exp_range" else _finite(0.0, 2.0))
    momentum = draw(st.booleans())
    lo = draw(per_group(_finite(0.0, 0.99), n))
    hi = draw(per_group(_finite(0.0, 0.99), n))
    s = jaxsched.CyclicLR(base_lr=base, max_lr=peak, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma,
                          cycle_momentum=momentum, base_momentum=lo, max_momentum=hi, **kw)
    return s, draw(steps())


def _onecycle_ok(total, pct, three):
    """torch's zero-length phases (ZeroDivisionError), which jaxsched rejects at construction."""
    end1 = float(pct * total) - 1
    if end1 == 0.0:
        return False
    if three:
        end2 = float(2 * pct * total) - 2
        return total - 1.0 != end2 and end2 != end1
    return total - 1.0 != end1


@st.composite
def onecyclelr_cases(draw):
    n = draw(groups())
    peak = draw(per_group(lrs(), n))
    by_epochs = draw(st.booleans())
    if by_epochs:
        epochs, spe = draw(st.integers(1, 20)), draw(st.integers(1, 20))
        total, kw = epochs * spe, dict(epochs=epochs, steps_per_epoch=spe)
    else:
        total = draw(st.integers(1, 300))
        kw = dict(total_steps=total)
    three = draw(st.booleans())
    # small pct_start: pct * total < 1 puts index 0 in phase 2 already (the warm-up never shows)
    pct = draw(st.one_of(_finite(0.0, 1.0), st.sampled_from([0.0, 0.3, 0.25, 0.5, 1.0]), _finite(0.0, 1.0 / total)))
    if not _onecycle_ok(total, pct, three):
        pct = 0.3 if _onecycle_ok(total, 0.3, three) else 0.0
    s = jaxsched.OneCycleLR(
        max_lr=peak, pct_start=pct, anneal_strategy=draw(st.sampled_from(["cos", "linear"])),
        cycle_momentum=draw(st.booleans()), base_momentum=draw(per_group(_finite(0.0, 0.99), n)),
        max_momentum=draw(per_group(_finite(0.0, 0.99), n)), div_factor=draw(_finite(1.0, 100.0)),
        final_div_factor=draw(st.one_of(_finite(1.0, 1e4), st.just(1e4))), three_phase=three, **kw)
    return s, total  # exactly total_steps + 1 values: index total_steps is the last legal one


# members of SequentialLR / ChainedScheduler: CyclicLR and OneCycleLR cannot be members (deliberate), composites
# do not nest (deliberate), and every member shares one lr (deliberate: torch's members share one optimizer).
def member_cases(lr, first: bool):
    return st.one_of(
        lambdalr_cases(lr=lr), multiplicativelr_cases(lr=lr), steplr_cases(lr=lr), multisteplr_cases(lr=lr),
        constantlr_cases(lr=lr), exponentiallr_cases(lr=lr), cosineannealinglr_cases(lr=lr), cawr_cases(lr=lr),
        swalr_cases(lr=lr),
        # total_iters=0 LinearLR/PolynomialLR cannot follow a milestone (torch's closed form divides by 0)
        linearlr_cases(lr=lr, allow_zero_iters=first), polynomiallr_cases(lr=lr, allow_zero_iters=first),
    ).map(lambda case: case[0])


def _share_swa_lr(members):
    """torch's SWALR keeps swa_lr in the optimizer's param groups: the last one constructed sets it for all
    SWALR members of a composite. jaxsched requires one swa_lr (a deliberate restriction), so draw one."""
    swa = [m for m in members if isinstance(m, jaxsched.SWALR)]
    return [dataclasses.replace(m, swa_lr=swa[0].swa_lr) if isinstance(m, jaxsched.SWALR) else m for m in members]


@st.composite
def sequentiallr_cases(draw):
    lr = draw(per_group(lrs(), draw(groups())))
    k = draw(st.integers(1, 4))
    members = _share_swa_lr([draw(member_cases(lr, i == 0)) for i in range(k)])
    n = draw(steps())
    ms = sorted(draw(st.lists(st.integers(0, n), min_size=k - 1, max_size=k - 1)))
    if ms and ms[0] == 0 and not draw(st.booleans()):
        ms[0] = 1  # milestone 0 (switch at construction) stays possible, but is not the common case
    # a milestone 0 makes member 1 start at construction; it then may not be a total_iters=0 LinearLR either
    return jaxsched.SequentialLR(members, milestones=sorted(ms)), n


@st.composite
def chainedscheduler_cases(draw):
    lr = draw(per_group(lrs(), draw(groups())))
    k = draw(st.integers(1, 4))
    members = _share_swa_lr([draw(member_cases(lr, True)) for _ in range(k)])
    return jaxsched.ChainedScheduler(members), draw(st.integers(30, 200))


CASES = {
    "LambdaLR": lambdalr_cases,
    "MultiplicativeLR": multiplicativelr_cases,
    "StepLR": steplr_cases,
    "MultiStepLR": multisteplr_cases,
    "ConstantLR": constantlr_cases,
    "LinearLR": linearlr_cases,
    "ExponentialLR": exponentiallr_cases,
    "SequentialLR": sequentiallr_cases,
    "PolynomialLR": polynomiallr_cases,
    "CosineAnnealingLR": cosineannealinglr_cases,
    "ChainedScheduler": chainedscheduler_cases,
    "CyclicLR": cycliclr_cases,
    "CosineAnnealingWarmRestarts": cawr_cases,
    "OneCycleLR": onecyclelr_cases,
    "SWALR": swalr_cases,
}


# ------------------------------------------------------------------------------------------------------------
# a fixed registry of example instances: every class, scalar and grouped (contract and numerics tests)


def examples():
    """``[(id, schedule)]``: every schedule class, scalar and with parameter groups, lambdas and none."""
    js = jaxsched
    # written for strict dtype promotion too: a Python float meets the integer step only after astype(float)
    lam = named("(lambda e: 0.9 ** e.astype(float))")
    warm = named("(lambda e: jnp.minimum(1.0, (e + 1) / 10))")
    const = named("(lambda e: 0.95)")
    g2 = (0.1, 0.02)
    out = [
        ("LambdaLR", js.LambdaLR(0.1, lr_lambda=warm)),
        ("LambdaLR-groups", js.LambdaLR(g2, lr_lambda=(lam, warm))),
        ("MultiplicativeLR-const", js.MultiplicativeLR(0.1, lr_lambda=const)),
        ("MultiplicativeLR-stepdep-groups",
         js.MultiplicativeLR(g2, lr_lambda=named("(lambda e: 1.0 - 1.0 / (e.astype(float) + 3.0))"))),
        ("StepLR", js.StepLR(0.1, step_size=7, gamma=0.5)),
        ("StepLR-groups", js.StepLR(g2, step_size=3, gamma=0.9)),
        ("MultiStepLR", js.MultiStepLR(0.1, milestones=[5, 2, 5, 40], gamma=0.3)),
        ("MultiStepLR-groups", js.MultiStepLR(g2, milestones=[0, 9])),
        ("ConstantLR", js.ConstantLR(0.1, factor=0.25, total_iters=6)),
        ("ConstantLR-groups", js.ConstantLR(g2)),
        ("LinearLR", js.LinearLR(0.1, start_factor=0.1, end_factor=1.0, total_iters=20)),
        ("LinearLR-groups", js.LinearLR(g2, start_factor=1.0, end_factor=0.0, total_iters=15)),
        ("ExponentialLR", js.ExponentialLR(0.1, gamma=0.97)),
        ("ExponentialLR-groups", js.ExponentialLR(g2, gamma=0.999)),
        ("PolynomialLR", js.PolynomialLR(0.1, total_iters=30, power=2.0)),
        ("PolynomialLR-groups", js.PolynomialLR(g2, total_iters=12, power=0.5)),
        ("CosineAnnealingLR", js.CosineAnnealingLR(0.1, T_max=25, eta_min=0.001)),
        ("CosineAnnealingLR-groups", js.CosineAnnealingLR(g2, T_max=8)),
        ("SequentialLR", js.SequentialLR([js.LinearLR(0.1, start_factor=0.1, total_iters=5),
                                          js.CosineAnnealingLR(0.1, T_max=30, eta_min=0.002)], milestones=[5])),
        ("SequentialLR-groups", js.SequentialLR([js.ConstantLR(g2, factor=0.5, total_iters=3),
                                                 js.MultiplicativeLR(g2, lr_lambda=const),
                                                 js.SWALR(g2, swa_lr=0.01, anneal_epochs=5)], milestones=[4, 20])),
        ("SequentialLR-lambda", js.SequentialLR([js.LambdaLR(0.1, lr_lambda=warm), js.ExponentialLR(0.1, 0.9)],
                                                milestones=[10])),
        ("ChainedScheduler", js.ChainedScheduler([js.ConstantLR(0.1, factor=0.1, total_iters=3),
                                                  js.ExponentialLR(0.1, gamma=0.9)])),
        ("ChainedScheduler-affine-groups", js.ChainedScheduler([js.CosineAnnealingLR(g2, T_max=10, eta_min=0.001),
                                                                js.StepLR(g2, step_size=4, gamma=0.5)])),
        ("CyclicLR", js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6)),
        ("CyclicLR-groups-exp", js.CyclicLR(base_lr=(0.01, 0.001), max_lr=(0.1, 0.01), step_size_up=2.5,
                                            mode="exp_range", gamma=0.99, base_momentum=(0.8, 0.85))),
        ("CyclicLR-scale_fn", js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=lam,
                                          scale_mode="iterations", cycle_momentum=False)),
        ("CosineAnnealingWarmRestarts", js.CosineAnnealingWarmRestarts(0.1, T_0=5, T_mult=2, eta_min=0.001)),
        ("CosineAnnealingWarmRestarts-groups", js.CosineAnnealingWarmRestarts(g2, T_0=7)),
        ("OneCycleLR", js.OneCycleLR(max_lr=0.1, total_steps=100)),
        ("OneCycleLR-groups", js.OneCycleLR(max_lr=g2, epochs=4, steps_per_epoch=25, three_phase=True,
                                            anneal_strategy="linear", base_momentum=(0.8, 0.85))),
        ("SWALR", js.SWALR(0.1, swa_lr=0.01, anneal_epochs=10)),
        ("SWALR-groups", js.SWALR(g2, swa_lr=(0.01, 0.005), anneal_epochs=0, anneal_strategy="linear")),
        # the adapters
        ("LinearWarmup", js.LinearWarmup(js.CosineAnnealingLR(0.1, T_max=30), num_warmup_steps=5)),
        ("LinearWarmup-groups", js.LinearWarmup(js.StepLR(g2, step_size=4), num_warmup_steps=3, start_factor=0.2)),
        ("PerEpoch", js.PerEpoch(js.StepLR(0.1, step_size=2, gamma=0.5), steps_per_epoch=5)),
        ("PerEpoch-groups-fractional", js.PerEpoch(js.CosineAnnealingWarmRestarts(g2, T_0=3), steps_per_epoch=4,
                                                   fractional=True)),
        ("Offset", js.Offset(js.ExponentialLR(0.1, gamma=0.9), start=3)),
        ("Offset-groups", js.Offset(js.OneCycleLR(max_lr=g2, total_steps=100), start=10)),
    ]
    hf = js.transformers
    out += [
        ("hf.ConstantSchedule", hf.ConstantSchedule(0.1)),
        ("hf.ConstantSchedule-groups", hf.ConstantSchedule(g2)),
        ("hf.ConstantScheduleWithWarmup", hf.ConstantScheduleWithWarmup(0.1, num_warmup_steps=7)),
        ("hf.LinearScheduleWithWarmup", hf.LinearScheduleWithWarmup(0.1, num_warmup_steps=5, num_training_steps=30)),
        ("hf.LinearScheduleWithWarmup-groups", hf.LinearScheduleWithWarmup(g2, num_warmup_steps=3,
                                                                           num_training_steps=50)),
        ("hf.CosineScheduleWithWarmup", hf.CosineScheduleWithWarmup(0.1, num_warmup_steps=5, num_training_steps=35)),
        ("hf.CosineWithHardRestartsScheduleWithWarmup", hf.CosineWithHardRestartsScheduleWithWarmup(
            0.1, num_warmup_steps=4, num_training_steps=36, num_cycles=3)),
        ("hf.PolynomialDecayScheduleWithWarmup", hf.PolynomialDecayScheduleWithWarmup(
            0.1, num_warmup_steps=5, num_training_steps=30, lr_end=1e-4, power=2.0)),
        ("hf.InverseSqrtSchedule", hf.InverseSqrtSchedule(0.1, num_warmup_steps=6)),
        ("hf.CosineWithMinLRScheduleWithWarmup", hf.CosineWithMinLRScheduleWithWarmup(
            0.1, num_warmup_steps=5, num_training_steps=30, min_lr=1e-3)),
        ("hf.CosineWithMinLRScheduleWithWarmupLRRate", hf.CosineWithMinLRScheduleWithWarmupLRRate(
            0.1, num_warmup_steps=5, num_training_steps=30, min_lr_rate=0.05)),
        ("hf.WSDSchedule", hf.WSDSchedule(0.1, num_warmup_steps=5, num_decay_steps=10, num_training_steps=35)),
    ]
    ks, tm = js.keras, js.timm  # Keras' and timm's catalogues (tests/parity/test_keras_parity.py, test_timm*.py)
    out += [
        ("keras.ExponentialDecay", ks.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5, staircase=True)),
        ("keras.PiecewiseConstantDecay", ks.PiecewiseConstantDecay(boundaries=[4, 10], values=[0.1, 0.05, 0.01])),
        ("keras.PolynomialDecay", ks.PolynomialDecay(0.1, decay_steps=12, end_learning_rate=0.01, power=2.0,
                                                     cycle=True)),
        ("keras.InverseTimeDecay", ks.InverseTimeDecay(0.1, decay_steps=3, decay_rate=0.5)),
        ("keras.CosineDecay", ks.CosineDecay(0.01, decay_steps=20, alpha=0.1, warmup_target=0.1, warmup_steps=5)),
        ("keras.CosineDecayRestarts", ks.CosineDecayRestarts(0.1, first_decay_steps=4, t_mul=1.5, m_mul=0.8)),
        ("timm.CosineLRScheduler-groups", tm.CosineLRScheduler(g2, t_initial=10, cycle_mul=2.0, cycle_limit=3,
                                                               warmup_t=3, warmup_lr_init=1e-3, k_decay=1.5)),
        ("timm.TanhLRScheduler", tm.TanhLRScheduler(0.1, t_initial=12, lr_min=1e-3, warmup_t=2)),
        ("timm.PolyLRScheduler", tm.PolyLRScheduler(0.1, t_initial=15, power=2.0, cycle_limit=2, cycle_decay=0.5)),
        ("timm.StepLRScheduler-groups", tm.StepLRScheduler(g2, decay_t=2.5, decay_rate=0.7, warmup_t=2)),
        ("timm.MultiStepLRScheduler", tm.MultiStepLRScheduler(0.1, decay_t=[3, 8], decay_rate=0.5)),
        ("timm.WSDLRScheduler", tm.WSDLRScheduler(0.1, t_initial=20, decay_t=8, stable_fn="rsqrt", warmup_t=4)),
    ]
    return out + docstring_examples(jaxsched.Schedule, out)


def stateful_examples():
    """``[(id, schedule)]``: every StatefulSchedule class, scalar and with parameter groups.

    Metric-driven ones (``metric_driven``) are fed the losses of :func:`stateful_metrics`.
    """
    js = jaxsched
    g2 = (0.1, 0.02)
    plateau = js.ReduceLROnPlateau(0.1, factor=0.5, patience=2, cooldown=1)
    out = [
        ("ReduceLROnPlateau", plateau),
        ("ReduceLROnPlateau-groups-max", js.ReduceLROnPlateau(g2, mode="max", factor=0.3, patience=1,
                                                              threshold_mode="abs", min_lr=(0.01, 0.001))),
        ("Running", js.Running(js.MultiplicativeLR(0.1, lr_lambda=named("(lambda e: 0.95)")))),
        ("Running-groups", js.Running(js.ChainedScheduler([js.CosineAnnealingLR(g2, T_max=10),
                                                           js.StepLR(g2, step_size=4, gamma=0.5)]))),
        ("GreedyLR", js.transformers.GreedyLR(0.1, patience=2, factor=0.5, min_lr=1e-3)),
        ("GreedyLR-groups", js.transformers.GreedyLR(g2, patience=1, min_lr=1e-4, max_lr=1.0)),
        ("Accumulate", js.optim.accumulate(plateau, 3)),
        ("timm.PlateauLRScheduler-groups", js.timm.PlateauLRScheduler(g2, decay_rate=0.5, patience_t=2, warmup_t=2,
                                                                      warmup_lr_init=1e-3, mode="min")),
    ]
    return out + docstring_examples(jaxsched.StatefulSchedule, out)


def stateful_metrics(n: int = 30):
    """A loss that falls, stalls and rises: every metric-driven schedule cuts (or raises) its LR on it."""
    falling = [1.0 - 0.05 * k for k in range(n // 3)]
    return falling + [falling[-1]] * (n // 3) + [falling[-1] + 0.01 * k for k in range(n - 2 * (n // 3))]


# ------------------------------------------------------------------------------------------------------------
# coverage: every registered class has an example (a new class without one fails the contract suites)


def import_public_modules() -> None:
    """Import every public jaxsched module, so that each class is registered whatever the import order."""
    for info in pkgutil.walk_packages(jaxsched.__path__, "jaxsched."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            importlib.import_module(info.name)


def registered(kind: type) -> list[type]:
    """The concrete registered classes that are subclasses of ``kind`` (Schedule or StatefulSchedule)."""
    import_public_modules()
    return [c for c in REGISTRY.values() if issubclass(c, kind) and not inspect.isabstract(c)]


def docstring_example(cls):
    """The first instance of ``cls`` that the ``>>>`` lines of its docstring build (run in order), or None.

    A registered class with no entry in :func:`examples` / :func:`stateful_examples` is checked through this
    one, so a new schedule needs no edit here: its docstring example is its test example."""
    namespace: dict = {}
    for ex in doctest.DocTestParser().get_examples(inspect.getdoc(cls) or ""):
        try:
            exec(compile(ex.source, f"<{cls.__qualname__} docstring>", "exec"), namespace)  # noqa: S102
        except Exception:  # noqa: BLE001 - a line that fails here fails the doctest too
            return None
        found = next((v for v in namespace.values() if type(v) is cls), None)
        if found is not None:
            return found
    return None


def docstring_examples(kind: type, have: list) -> list:
    """``[(id, schedule)]`` from the docstrings of the registered ``kind`` classes that ``have`` lacks."""
    covered = {type(s) for _, s in have}
    found = [(c, docstring_example(c)) for c in registered(kind) if c not in covered]
    return [(f"{c._name}-docstring", s) for c, s in found if s is not None]


def missing_examples() -> dict[str, list[str]]:
    """Registered classes with no entry in :func:`examples` / :func:`stateful_examples` (should be empty)."""
    have = {type(s) for _, s in examples()} | {type(s) for _, s in stateful_examples()}
    out = {}
    for kind, where in ((jaxsched.Schedule, "examples()"), (jaxsched.StatefulSchedule, "stateful_examples()")):
        missing = sorted(c.__qualname__ for c in registered(kind) if c not in have)
        if missing:
            out[where] = missing
    return out


def has_callable(schedule) -> bool:
    """Whether the schedule (or a member) holds a user callable: no JSON config, no eval-able repr."""
    return "<function" in repr(schedule)


# ------------------------------------------------------------------------------------------------------------
# the hard regions of the float32 contract (issue 11), drawn on purpose: growing exponentials, non-integer
# CyclicLR cycles that land on their boundaries (step_size_down = 0 too), eta_min above the initial LR, the
# running form past T_max with eta_min > 0, long horizons. Each draws ``(schedule, steps)`` like CASES.

@st.composite
def growth_cases(draw):
    """ExponentialLR / StepLR / MultiplicativeLR with factors above 1, up to a 1e12-fold range (LR range test
    ramps: ``gamma = (max_lr / min_lr) ** (1 / steps)``), and horizons up to 20,000 steps."""
    lr = draw(st.one_of(_finite(1e-8, 1.0), st.sampled_from([1e-8, 1e-7, 1e-3, 0.1])))
    n = draw(st.one_of(steps(), st.integers(2_000, 20_000)))
    fold = draw(_finite(2.0, 1e12))  # the LR grows by this factor over the run
    gamma = fold ** (1.0 / n)
    kind = draw(st.sampled_from(["exp", "step", "mult"]))
    if kind == "exp":
        return jaxsched.ExponentialLR(lr, gamma=gamma), n
    if kind == "step":
        size = draw(st.integers(1, 10))
        return jaxsched.StepLR(lr, step_size=size, gamma=fold ** (size / n)), n
    return jaxsched.MultiplicativeLR(lr, lr_lambda=named(f"(lambda e: {_num(gamma)})")), n


def _decimal_sizes():
    """Step sizes with one or two decimals (0.3, 1.1, 2.64): their float64 values are not exact, so
    ``e / total`` lands within a float64 ulp of an integer at every multiple of the numerator."""
    return st.one_of(st.integers(1, 400).map(lambda k: k / 10), st.integers(1, 4000).map(lambda k: k / 100))


@st.composite
def cyclic_boundary_cases(draw):
    """CyclicLR with non-integer cycles (step_size_down = 0 in half the draws) run over many boundaries."""
    n = draw(groups())
    base = draw(per_group(lrs(), n))
    peak = draw(per_group(lrs(), n))
    up = draw(_decimal_sizes())
    down = draw(st.one_of(st.just(0), st.just(0), st.none(), _decimal_sizes()))
    mode = draw(st.sampled_from(["triangular", "triangular2", "exp_range"]))
    gamma = draw(_finite(0.99, 1.0)) if mode == "exp_range" else 1.0
    s = jaxsched.CyclicLR(base_lr=base, max_lr=peak, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma,
                          cycle_momentum=draw(st.booleans()))
    n = draw(st.integers(50, 1500))
    if mode == "triangular2":  # torch's 1 / 2.0 ** (cycle - 1) raises OverflowError past cycle 1025
        n = min(n, int(1000 * (up + (up if down is None else down))))
    return s, max(n, 1)


@st.composite
def eta_above_cases(draw):
    """CosineAnnealingLR / CosineAnnealingWarmRestarts (alone or after a milestone) with eta_min 2 to 10,000
    times the initial LR, over short runs (the largest LR reached is then far below eta_min)."""
    lr = draw(_finite(1e-6, 0.1))
    eta = lr * draw(_finite(2.0, 1e4))
    kind = draw(st.sampled_from(["cos", "cawr", "seq"]))
    n = draw(st.integers(1, 120))
    if kind == "cos":
        return jaxsched.CosineAnnealingLR(lr, T_max=draw(st.integers(1, 200)), eta_min=eta), n
    cawr = jaxsched.CosineAnnealingWarmRestarts(lr, T_0=draw(st.integers(1, 80)), T_mult=draw(st.integers(1, 3)),
                                                eta_min=eta)
    if kind == "cawr":
        return cawr, n
    first = jaxsched.ConstantLR(lr, factor=draw(_finite(0.1, 1.0)), total_iters=draw(st.integers(0, 5)))
    return jaxsched.SequentialLR([first, cawr], milestones=[draw(st.integers(1, 10))]), n


@st.composite
def running_cases(draw):
    """Schedules for the running form: cosines past T_max (eta_min > 0, below or above lr), exponentials and
    step decays near 1 over long horizons, and a warm-up into a cosine."""
    lr = draw(st.one_of(_finite(1e-4, 1.0), st.just(0.1)))
    kind = draw(st.sampled_from(["cos", "exp", "seq", "poly"]))
    if kind == "cos":
        T = draw(st.integers(5, 600))
        eta = lr * draw(st.one_of(_finite(0.01, 0.99), _finite(1.01, 100.0)))
        return jaxsched.CosineAnnealingLR(lr, T_max=T, eta_min=eta), draw(st.integers(2 * T, 4 * T + 7))
    if kind == "exp":
        gamma = draw(st.one_of(_finite(0.999, 0.99999), _finite(1.00001, 1.0005)))
        return jaxsched.ExponentialLR(lr, gamma=gamma), draw(st.integers(1_000, 10_000))
    if kind == "poly":
        T = draw(st.integers(1, 3000))
        return jaxsched.PolynomialLR(lr, total_iters=T, power=draw(_finite(0.5, 3.0))), T + draw(st.integers(0, 50))
    W = draw(st.integers(1, 50))
    T = draw(st.integers(5, 500))
    cos = jaxsched.CosineAnnealingLR(lr, T_max=T, eta_min=lr * draw(_finite(0.0, 0.9)))
    seq = jaxsched.SequentialLR([jaxsched.LinearLR(lr, start_factor=draw(_finite(0.01, 1.0)), total_iters=W), cos],
                                milestones=[W])
    return seq, W + draw(st.integers(T, 3 * T))


@st.composite
def decayed_torch_cases(draw):
    """``(torch scheduler name, keyword arguments, steps)``: a torch scheduler stepped until its LR is about 0
    (torch's -1.5e-18 where the exact value is 0, or below float32's range), for ``from_torch``."""
    kind = draw(st.sampled_from(["LinearLR", "PolynomialLR", "ExponentialLR", "StepLR", "MultiplicativeLR",
                                 "CosineAnnealingLR"]))
    if kind == "LinearLR":
        T = draw(st.integers(1, 20))
        return kind, dict(start_factor=draw(_finite(0.01, 1.0)), end_factor=0.0, total_iters=T), T + draw(
            st.integers(0, 10))
    if kind == "PolynomialLR":
        T = draw(st.integers(1, 20))
        return kind, dict(total_iters=T, power=draw(_finite(0.5, 3.0))), T + draw(st.integers(0, 10))
    if kind == "CosineAnnealingLR":
        T = draw(st.integers(1, 50))
        return kind, dict(T_max=T, eta_min=0.0), T
    gamma = draw(_finite(0.05, 0.6))
    n = draw(st.integers(100, 400))
    if kind == "StepLR":
        return kind, dict(step_size=draw(st.integers(1, 3)), gamma=gamma), n
    if kind == "MultiplicativeLR":
        return kind, dict(lr_lambda=named(f"(lambda e: {_num(gamma)})")), n
    return kind, dict(gamma=gamma), n


HARD_CASES = {
    "growth": growth_cases,
    "cyclic-boundaries": cyclic_boundary_cases,
    "eta_min-above-lr": eta_above_cases,
    "running": running_cases,
}
