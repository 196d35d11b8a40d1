"""Bad configurations are rejected at construction with an error that names the argument and quotes the value.

Covers every case torch rejects (torch-lr-scheduler-semantics.md, per class), the cases torch only fails on later
(a ZeroDivisionError at some step), a Python ``if`` on the step inside ``lr_lambda``, and OneCycleLR stepped past
its end. A few torch rejections are also run in live torch to confirm that torch does reject them.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxsched as js


def f(e):
    return 0.9 ** e


def _opt(lr=0.1, groups=1):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for _ in range(groups)],
                           lr=lr, momentum=0.9)


def q(value) -> str:
    """How the value must be quoted in the message: ``name=<repr>``."""
    return repr(value)


# (id, constructor thunk, exception type, substrings the message must contain: the argument and the quoted value)
CASES = [
    # --- every schedule: the initial LR (torch's optimizers reject a negative lr), non-finite floats
    ("StepLR-lr<0", lambda: js.StepLR(-0.1, step_size=3), ValueError, ["lr=", q(-0.1)]),
    ("ExponentialLR-lr-group<0", lambda: js.ExponentialLR((0.1, -1.0), gamma=0.9), ValueError, ["lr[1]=", q(-1.0)]),
    ("ExponentialLR-gamma-nan", lambda: js.ExponentialLR(0.1, gamma=math.nan), ValueError, ["gamma=", "nan"]),
    ("ExponentialLR-gamma-str", lambda: js.ExponentialLR(0.1, gamma="0.9"), TypeError, ["gamma=", q("0.9")]),
    ("ExponentialLR-lr-ndarray", lambda: js.ExponentialLR(np.array([0.1, 0.2]), gamma=0.9), TypeError,
     ["lr=", "array([0.1, 0.2])"]),
    # --- LambdaLR / MultiplicativeLR
    ("LambdaLR-length", lambda: js.LambdaLR((0.1, 0.2), lr_lambda=(f, f, f)), ValueError,
     ["Expected 2 lr_lambdas, but got 3", "lr_lambda="]),
    ("LambdaLR-not-callable", lambda: js.LambdaLR(0.1, lr_lambda=0.5), TypeError,
     ["lr_lambda should be a function", "lr_lambda=0.5"]),
    ("MultiplicativeLR-length", lambda: js.MultiplicativeLR((0.1, 0.2), lr_lambda=[f]), ValueError,
     ["Expected 2 lr_lambdas, but got 1", "lr_lambda="]),
    ("MultiplicativeLR-not-callable", lambda: js.MultiplicativeLR(0.1, lr_lambda=0.9), TypeError,
     ["lr_lambda should be a function, but got float", "lr_lambda=0.9"]),
    # --- StepLR: torch constructs step_size=0 and raises ZeroDivisionError on the first step
    ("StepLR-step_size=0", lambda: js.StepLR(0.1, step_size=0), ValueError, ["step_size=0"]),
    ("StepLR-step_size<0", lambda: js.StepLR(0.1, step_size=-2), ValueError, ["step_size=-2"]),
    ("StepLR-step_size-float", lambda: js.StepLR(0.1, step_size=2.5), TypeError, ["step_size=2.5"]),
    # --- MultiStepLR: non-negative integer milestones (deliberate)
    ("MultiStepLR-negative", lambda: js.MultiStepLR(0.1, milestones=[3, -1]), ValueError, ["milestones[1]=-1"]),
    ("MultiStepLR-float", lambda: js.MultiStepLR(0.1, milestones=[2.5]), TypeError, ["milestones[0]=2.5"]),
    ("MultiStepLR-not-list", lambda: js.MultiStepLR(0.1, milestones=5), TypeError, ["milestones=5"]),
    # --- ConstantLR
    ("ConstantLR-factor>1", lambda: js.ConstantLR(0.1, factor=1.5), ValueError,
     ["factor=1.5", "between 0 and 1"]),
    ("ConstantLR-factor<0", lambda: js.ConstantLR(0.1, factor=-0.1), ValueError, ["factor=-0.1"]),
    # torch accepts factor=0 and raises ZeroDivisionError at step total_iters
    ("ConstantLR-factor=0", lambda: js.ConstantLR(0.1, factor=0.0, total_iters=4), ValueError,
     ["factor=0.0", "total_iters=4"]),
    ("ConstantLR-total_iters<0", lambda: js.ConstantLR(0.1, total_iters=-1), ValueError, ["total_iters=-1"]),
    # --- LinearLR
    ("LinearLR-start=0", lambda: js.LinearLR(0.1, start_factor=0.0), ValueError, ["start_factor=0.0"]),
    ("LinearLR-start>1", lambda: js.LinearLR(0.1, start_factor=1.5), ValueError, ["start_factor=1.5"]),
    ("LinearLR-end<0", lambda: js.LinearLR(0.1, end_factor=-0.5), ValueError, ["end_factor=-0.5"]),
    ("LinearLR-end>1", lambda: js.LinearLR(0.1, end_factor=2.0), ValueError, ["end_factor=2.0"]),
    # --- PolynomialLR: torch raises ZeroDivisionError at step total_iters for a negative power
    ("PolynomialLR-power<0", lambda: js.PolynomialLR(0.1, total_iters=4, power=-1.0), ValueError,
     ["power=-1.0"]),
    ("PolynomialLR-total_iters<0", lambda: js.PolynomialLR(0.1, total_iters=-3), ValueError,
     ["total_iters=-3"]),
    # --- CosineAnnealingLR: torch constructs T_max=0 and raises ZeroDivisionError on the first step
    ("CosineAnnealingLR-T_max=0", lambda: js.CosineAnnealingLR(0.1, T_max=0), ValueError, ["T_max=0"]),
    ("CosineAnnealingLR-T_max-float", lambda: js.CosineAnnealingLR(0.1, T_max=2.5), TypeError, ["T_max=2.5"]),
    # --- SequentialLR
    ("SequentialLR-empty", lambda: js.SequentialLR([], milestones=[]), ValueError,
     ["expects at least one scheduler"]),
    ("SequentialLR-milestone-count", lambda: js.SequentialLR([js.StepLR(0.1, 2), js.StepLR(0.1, 3)],
                                                             milestones=[2, 4]), ValueError,
     ["number of milestones", "milestones=[2, 4]"]),
    ("SequentialLR-unsorted", lambda: js.SequentialLR([js.StepLR(0.1, 2), js.StepLR(0.1, 3), js.StepLR(0.1, 4)],
                                                      milestones=[5, 2]), ValueError, ["milestones=[5, 2]"]),
    ("SequentialLR-negative-milestone", lambda: js.SequentialLR([js.StepLR(0.1, 2), js.StepLR(0.1, 3)],
                                                                milestones=[-1]), ValueError, ["milestones[0]=-1"]),
    ("SequentialLR-other-lr", lambda: js.SequentialLR([js.StepLR(0.1, 2), js.StepLR(0.2, 3)], milestones=[2]),
     ValueError, ["same optimizer", "lr=0.2"]),
    ("SequentialLR-not-a-schedule", lambda: js.SequentialLR([js.StepLR(0.1, 2), "StepLR"], milestones=[2]),
     TypeError, ["index 1", q("StepLR")]),
    ("SequentialLR-nested", lambda: js.SequentialLR(
        [js.StepLR(0.1, 2), js.SequentialLR([js.StepLR(0.1, 2)], milestones=[])], milestones=[2]),
     ValueError, ["schedulers[1]", "nest"]),
    ("SequentialLR-cyclic", lambda: js.SequentialLR(
        [js.StepLR(0.01, 2), js.CyclicLR(base_lr=0.01, max_lr=0.1)], milestones=[2]), ValueError,
     ["schedulers[1]", "CyclicLR"]),
    ("SequentialLR-linear-total0-after-milestone", lambda: js.SequentialLR(
        [js.StepLR(0.1, 2), js.LinearLR(0.1, total_iters=0)], milestones=[3]), ValueError,
     ["schedulers[1]", "total_iters=0"]),
    # --- ChainedScheduler
    ("ChainedScheduler-empty", lambda: js.ChainedScheduler([]), ValueError,
     ["expects at least one scheduler to be chained"]),
    ("ChainedScheduler-other-lr", lambda: js.ChainedScheduler([js.StepLR(0.1, 2), js.ExponentialLR(0.3, 0.9)]),
     ValueError, ["same optimizer", "lr=0.3"]),
    ("ChainedScheduler-onecycle", lambda: js.ChainedScheduler([js.OneCycleLR(max_lr=0.1, total_steps=10)]),
     ValueError, ["schedulers[0]", "OneCycleLR"]),
    ("ChainedScheduler-not-list", lambda: js.ChainedScheduler(js.StepLR(0.1, 2)), TypeError,
     ["schedulers=StepLR(0.1, step_size=2, gamma=0.1)"]),
    # --- CyclicLR
    ("CyclicLR-up=0", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=0), ValueError,
     ["step_size_up=0"]),
    ("CyclicLR-down<0", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_down=-1), ValueError,
     ["step_size_down=-1"]),
    ("CyclicLR-mode", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, mode="cosine"), ValueError,
     ["mode is invalid and scale_fn is None", "mode=" + q("cosine")]),
    ("CyclicLR-lengths", lambda: js.CyclicLR(base_lr=(0.01, 0.02), max_lr=(0.1, 0.2, 0.3)), ValueError,
     ["base_lr has 2", "max_lr has 3"]),
    ("CyclicLR-exp_range-gamma>1", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, mode="exp_range", gamma=1.5),
     ValueError, ["gamma=1.5"]),
    # torch accepts any scale_mode string (anything but "cycle" means "iterations"); jaxsched names the two
    ("CyclicLR-scale_mode", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, scale_fn=f, scale_mode="bogus"),
     ValueError, ["scale_mode=" + q("bogus"), "'cycle', 'iterations'"]),
    ("CyclicLR-cycle_momentum", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, cycle_momentum="yes"), TypeError,
     ["cycle_momentum=" + q("yes")]),
    # --- CosineAnnealingWarmRestarts
    ("CAWR-T_0=0", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=0), ValueError,
     ["Expected positive integer T_0", "T_0=0"]),
    ("CAWR-T_0-float", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=2.0), ValueError, ["T_0=2.0"]),
    ("CAWR-T_mult=0", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=2, T_mult=0), ValueError,
     ["Expected integer T_mult >= 1", "T_mult=0"]),
    ("CAWR-T_mult-float", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=2, T_mult=1.5), ValueError,
     ["T_mult=1.5"]),
    ("CAWR-eta_min-str", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=2, eta_min="0"), ValueError,
     ["Expected float or int eta_min", "eta_min=" + q("0")]),
    # --- OneCycleLR
    ("OneCycleLR-total=0", lambda: js.OneCycleLR(max_lr=0.1, total_steps=0), ValueError,
     ["Expected positive integer total_steps", "total_steps=0"]),
    ("OneCycleLR-total-float", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10.0), ValueError,
     ["total_steps=10.0"]),
    ("OneCycleLR-no-total", lambda: js.OneCycleLR(max_lr=0.1, epochs=3), ValueError,
     ["You must define either total_steps OR (epochs AND steps_per_epoch)", "steps_per_epoch=None"]),
    ("OneCycleLR-epochs=0", lambda: js.OneCycleLR(max_lr=0.1, epochs=0, steps_per_epoch=5), ValueError,
     ["Expected positive integer epochs", "epochs=0"]),
    ("OneCycleLR-steps_per_epoch<0", lambda: js.OneCycleLR(max_lr=0.1, epochs=2, steps_per_epoch=-5), ValueError,
     ["Expected positive integer steps_per_epoch", "steps_per_epoch=-5"]),
    ("OneCycleLR-pct>1", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10, pct_start=1.5), ValueError,
     ["Expected float between 0 and 1 pct_start", "pct_start=1.5"]),
    ("OneCycleLR-pct-int", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10, pct_start=0), ValueError,
     ["pct_start=0"]),
    ("OneCycleLR-anneal", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10, anneal_strategy="exp"), ValueError,
     ["anneal_strategy=" + q("exp"), "'cos', 'linear'"]),
    ("OneCycleLR-lengths", lambda: js.OneCycleLR(max_lr=(0.1, 0.2), total_steps=10, base_momentum=(0.8, 0.8, 0.8)),
     ValueError, ["max_lr has 2", "base_momentum has 3"]),
    ("OneCycleLR-div_factor=0", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10, div_factor=0.0), ValueError,
     ["div_factor=0.0"]),
    # zero-length phases: torch raises ZeroDivisionError (at construction, or at the step landing in the phase)
    ("OneCycleLR-warmup-0", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10, pct_start=0.1), ValueError,
     ["pct_start * total_steps", "0.1 * 10"]),
    ("OneCycleLR-pct=1", lambda: js.OneCycleLR(max_lr=0.1, total_steps=10, pct_start=1.0), ValueError,
     ["last phase has zero length", "pct_start=1.0"]),
    ("OneCycleLR-three-phase-0", lambda: js.OneCycleLR(max_lr=0.1, total_steps=4, pct_start=0.25, three_phase=True),
     ValueError, ["zero length", "0.25"]),
    # --- SWALR
    ("SWALR-anneal_strategy", lambda: js.SWALR(0.1, swa_lr=0.01, anneal_strategy="exp"), ValueError,
     ["anneal_strategy=" + q("exp"), "'cos', 'linear'"]),
    ("SWALR-anneal_epochs<0", lambda: js.SWALR(0.1, swa_lr=0.01, anneal_epochs=-1), ValueError,
     ["anneal_epochs must be equal or greater than 0", "anneal_epochs=-1"]),
    ("SWALR-anneal_epochs-float", lambda: js.SWALR(0.1, swa_lr=0.01, anneal_epochs=2.0), ValueError,
     ["anneal_epochs=2.0"]),
    ("SWALR-lengths", lambda: js.SWALR((0.1, 0.2), swa_lr=(0.01, 0.02, 0.03)), ValueError,
     ["lr has 2", "swa_lr has 3"]),
]


@pytest.mark.parametrize("name,make,exc,parts", CASES, ids=[c[0] for c in CASES])
def test_rejected_at_construction(name, make, exc, parts):
    with pytest.raises(exc) as info:
        make()
    msg = str(info.value)
    cls = name.split("-")[0].replace("CAWR", "CosineAnnealingWarmRestarts")
    assert msg.startswith(cls), f"the message should start with the class name {cls}: {msg!r}"
    for part in parts:
        assert part in msg, f"{part!r} missing from the message {msg!r}"


def test_every_scheduler_has_validation_cases():
    classes = {c[0].split("-")[0].replace("CAWR", "CosineAnnealingWarmRestarts") for c in CASES}
    assert {"LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
            "SequentialLR", "PolynomialLR", "CosineAnnealingLR", "ChainedScheduler", "CyclicLR",
            "CosineAnnealingWarmRestarts", "OneCycleLR", "SWALR"} <= classes


# --- torch really rejects these (at construction or on a later step); jaxsched rejects them at construction

TORCH_REJECTS = [
    ("StepLR step_size=0", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=0), 1, ZeroDivisionError),
    ("CosineAnnealingLR T_max=0", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=0), 1,
     ZeroDivisionError),
    ("ConstantLR factor=0", lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.0, total_iters=4), 4,
     ZeroDivisionError),
    ("PolynomialLR power<0", lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=4, power=-1.0), 4,
     ZeroDivisionError),
    ("CyclicLR up=0", lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=0), 0,
     ZeroDivisionError),
    ("OneCycleLR pct*total=1", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, pct_start=0.1),
     0, ZeroDivisionError),
    ("OneCycleLR pct=1", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.0), 10,
     ZeroDivisionError),
    ("LinearLR start_factor=0", lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.0), 0, ValueError),
    ("ConstantLR factor>1", lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.5), 0, ValueError),
    ("CAWR T_0=0", lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), 0, ValueError),
    ("OneCycleLR total=0", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=0), 0, ValueError),
    ("SWALR anneal_epochs=-1", lambda o: torch.optim.swa_utils.SWALR(o, 0.01, anneal_epochs=-1), 0, ValueError),
]


@pytest.mark.parametrize("name,make,at_step,exc", TORCH_REJECTS, ids=[t[0] for t in TORCH_REJECTS])
def test_torch_rejects_it_too(name, make, at_step, exc):
    """The live torch counterpart fails, at construction (at_step=0) or on step ``at_step``."""
    opt = _opt()
    with warnings.catch_warnings(), pytest.raises(exc):
        warnings.simplefilter("ignore")
        sched = make(opt)
        for _ in range(at_step):
            opt.step()
            sched.step()


# --- a Python `if` on the step inside a user callable


@pytest.mark.parametrize("make", [
    lambda fn: js.LambdaLR(0.1, lr_lambda=fn),
    lambda fn: js.MultiplicativeLR(0.1, lr_lambda=fn),
])
@pytest.mark.parametrize("fn", [
    lambda e: 0.1 if e < 10 else 0.01,
    lambda e: min(1.0, (e + 1) / 10),
    lambda e: 0.5 ** int(e),
])
def test_python_control_flow_in_lr_lambda(make, fn):
    with pytest.raises(TypeError) as info:
        make(fn)
    msg = str(info.value)
    assert "lr_lambda" in msg and "jnp.where" in msg, msg


def test_python_control_flow_in_one_group_lambda_names_the_group():
    with pytest.raises(TypeError, match=r"(?s)lr_lambda\[1\].*jnp\.where"):
        js.LambdaLR((0.1, 0.2), lr_lambda=(lambda e: 0.9 ** e, lambda e: 1.0 if e < 3 else 0.1))


def test_python_control_flow_in_scale_fn():
    with pytest.raises(TypeError, match=r"(?s)scale_fn.*jnp\.where"):
        js.CyclicLR(base_lr=0.01, max_lr=0.1, scale_fn=lambda c: 1.0 if c < 2 else 0.5)


def test_the_traceable_rewrite_is_accepted():
    s = js.LambdaLR(0.1, lr_lambda=lambda e: jnp.where(e < 10, 0.1, 0.01))
    assert float(s(3)) == pytest.approx(0.01) and float(s(12)) == pytest.approx(0.001)


# --- OneCycleLR stepped past its end


def test_onecycle_past_the_end():
    s = js.OneCycleLR(max_lr=0.1, total_steps=10)
    s(10)  # index total_steps is legal (torch extrapolates there)
    s.momentum(10)
    for call in (s, s.momentum):
        with pytest.raises(ValueError) as info:
            call(11)
        msg = str(info.value)
        assert "Tried to step 11 times" in msg and "total_steps" in msg and "10" in msg, msg


def test_onecycle_past_the_end_in_torch_raises_too():
    opt = _opt()
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="Tried to step 11 times"):
        warnings.simplefilter("ignore")
        for _ in range(11):
            opt.step()
            sched.step()


def test_onecycle_traced_step_past_the_end_holds_the_last_value():
    s = js.OneCycleLR(max_lr=0.1, total_steps=10)
    out = jax.jit(s)(jnp.asarray([10, 11, 1000]))
    assert np.all(out == out[0])


# --- steps


@pytest.mark.parametrize("step,exc,part", [
    (-1, ValueError, "step=-1"),
    (1.5, TypeError, "dtype"),
    (True, TypeError, "step=True"),
])
def test_bad_steps(step, exc, part):
    with pytest.raises(exc, match=part):
        js.StepLR(0.1, step_size=3)(step)


def test_float_step_array_is_rejected():
    with pytest.raises(TypeError, match="astype"):
        js.StepLR(0.1, step_size=3)(jnp.arange(3.0))
