"""The golden sequences printed in torch-lr-scheduler-semantics.md (torch 2.13's own output), for every scheduler.

Each golden value is checked to the precision it is printed with (half a unit of its last digit), with x64 and in
float32 (plus 1e-6 x the largest LR), and the live torch trajectory is checked against the same golden values, as a
sanity check of both the table and the torch harness.
"""

from __future__ import annotations

from decimal import Decimal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsched as js
from tests.references import torch_trajectory
from tests.strategies import named


def _lam(src):
    return named(src)


# (id, schedule factory, golden LRs per group (strings, index 0..), golden momentum (one group) or None)
GOLDEN = [
    ("LambdaLR-2groups",
     lambda: js.LambdaLR((0.1, 0.01), lr_lambda=(_lam("(lambda e: 0.5 ** e)"), _lam("(lambda e: e + 1.0)"))),
     [["0.1", "0.05", "0.025", "0.0125", "0.00625", "0.003125", "0.0015625", "0.00078125"],
      ["0.01", "0.02", "0.03", "0.04", "0.05", "0.06", "0.07", "0.08"]], None),
    ("MultiplicativeLR-0.9", lambda: js.MultiplicativeLR(0.1, lr_lambda=_lam("(lambda e: 0.9)")),
     [["0.1", "0.09000000000000001", "0.08100000000000002", "0.0729", "0.06561", "0.059049", "0.0531441",
       "0.04782969"]], None),
    ("MultiplicativeLR-1/(e+1)", lambda: js.MultiplicativeLR(0.1, lr_lambda=_lam("(lambda e: 1.0 / (e + 1))")),
     [["0.1", "0.05", "0.016666666667", "0.0041666666667", "0.00083333333333"]], None),
    ("StepLR", lambda: js.StepLR(0.1, step_size=3, gamma=0.5),
     [["0.1", "0.1", "0.1", "0.05", "0.05", "0.05", "0.025", "0.025", "0.025", "0.0125"]], None),
    ("MultiStepLR", lambda: js.MultiStepLR(0.1, milestones=[2, 5, 5, 7], gamma=0.1),
     [["0.1", "0.1", "0.010000000000000002", "0.01", "0.01", "0.00010000000000000005", "0.0001",
       "1.0000000000000006e-05", "1e-05"]], None),
    ("MultiStepLR-milestone0", lambda: js.MultiStepLR(0.1, milestones=[0, 2], gamma=0.5),
     [["0.05", "0.05", "0.025"]], None),
    ("ConstantLR", lambda: js.ConstantLR(0.1, factor=0.5, total_iters=3),
     [["0.05", "0.05", "0.05", "0.1", "0.1", "0.1"]], None),
    ("ConstantLR-defaults", lambda: js.ConstantLR(0.1),
     [["0.0333333333"] * 5 + ["0.1", "0.1"]], None),
    ("LinearLR-warmup", lambda: js.LinearLR(0.1, start_factor=0.25, end_factor=1.0, total_iters=4),
     [["0.025", "0.04375", "0.0625", "0.08125", "0.1", "0.1"]], None),
    ("LinearLR-decay", lambda: js.LinearLR(0.1, start_factor=1.0, end_factor=0.1, total_iters=5),
     [["0.1", "0.082", "0.064", "0.046", "0.028", "0.01", "0.01"]], None),
    ("ExponentialLR", lambda: js.ExponentialLR(0.1, gamma=0.9),
     [["0.1", "0.09", "0.081", "0.0729", "0.06561", "0.059049", "0.0531441", "0.04782969"]], None),
    ("PolynomialLR-p1", lambda: js.PolynomialLR(0.1, total_iters=4, power=1.0),
     [["0.1", "0.07500000000000001", "0.05", "0.025", "0", "0"]], None),
    ("PolynomialLR-p2", lambda: js.PolynomialLR(0.1, total_iters=5, power=2.0),
     [["0.1", "0.06400000000000002", "0.036", "0.016", "0.003999999999999999", "0", "0"]], None),
    ("CosineAnnealingLR", lambda: js.CosineAnnealingLR(0.1, T_max=3),
     [["0.1", "0.075", "0.025", "0", "0.025", "0.075", "0.1", "0.075"]], None),
    ("CosineAnnealingLR-2groups-eta", lambda: js.CosineAnnealingLR((0.1, 0.01), T_max=4, eta_min=0.001),
     [["0.1", "0.0855017857", "0.0505", "0.0154982143", "0.001", "0.0154982143"],
      ["0.01", "0.0086819805", "0.0055", "0.0023180195", "0.001", "0.0023180195"]], None),
    ("SequentialLR-constant-exp",
     lambda: js.SequentialLR([js.ConstantLR(0.1, factor=0.1, total_iters=3), js.ExponentialLR(0.1, gamma=0.9)],
                             milestones=[3]),
     [["0.01", "0.01", "0.01", "0.1", "0.09", "0.081", "0.0729", "0.06561"]], None),
    ("SequentialLR-linear-cosine",
     lambda: js.SequentialLR([js.LinearLR(0.1, start_factor=0.1, end_factor=1.0, total_iters=3),
                              js.CosineAnnealingLR(0.1, T_max=4)], milestones=[3]),
     [["0.01", "0.04", "0.07", "0.1", "0.0853553391", "0.05", "0.0146446609", "0", "0.0146446609"]], None),
    ("SequentialLR-exp-lambda",
     lambda: js.SequentialLR([js.ExponentialLR(0.1, gamma=0.5),
                              js.LambdaLR(0.1, lr_lambda=_lam("(lambda e: 1.0 / (e + 1))"))], milestones=[2]),
     [["0.1", "0.05", "0.1", "0.05", "0.0333333333", "0.025"]], None),
    ("SequentialLR-multiplicative",
     lambda: js.SequentialLR([js.ConstantLR(0.1, factor=0.1, total_iters=10),
                              js.MultiplicativeLR(0.1, lr_lambda=_lam("(lambda e: 0.5)"))], milestones=[3]),
     [["0.01", "0.01", "0.01", "0.005", "0.0025"]], None),
    ("SequentialLR-milestone0",
     lambda: js.SequentialLR([js.ExponentialLR(0.1, gamma=0.5), js.ExponentialLR(0.1, gamma=0.9)], milestones=[0]),
     [["0.1", "0.09", "0.081"]], None),
    ("ChainedScheduler-constant-exp",
     lambda: js.ChainedScheduler([js.ConstantLR(0.1, factor=0.1, total_iters=3), js.ExponentialLR(0.1, gamma=0.9)]),
     [["0.01", "0.009", "0.0081", "0.0729", "0.06561", "0.059049"]], None),
    ("ChainedScheduler-lambda-exp",
     lambda: js.ChainedScheduler([js.LambdaLR(0.1, lr_lambda=_lam("(lambda e: 1.0 + 0 * e)")),
                                  js.ExponentialLR(0.1, gamma=0.9)]),
     [["0.1", "0.09", "0.09", "0.09"]], None),
    ("ChainedScheduler-exp-lambda",
     lambda: js.ChainedScheduler([js.ExponentialLR(0.1, gamma=0.9),
                                  js.LambdaLR(0.1, lr_lambda=_lam("(lambda e: 1.0 + 0 * e)"))]),
     [["0.1", "0.1", "0.1"]], None),
    ("ChainedScheduler-affine-cosine",
     lambda: js.ChainedScheduler([js.CosineAnnealingLR(0.1, T_max=4, eta_min=0.05), js.ExponentialLR(0.1, gamma=0.5)]),
     [["0.1", "0.0463388", "0.0239277", "0.0211818", "0.025", "0.0161612", "-0.0327665"]], None),
    ("CyclicLR-triangular",
     lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3),
     [["0.01", "0.055", "0.09999999999999999", "0.07", "0.04", "0.01", "0.055", "0.1"]],
     ["0.9", "0.85", "0.8", "0.8333333333", "0.8666666667", "0.9", "0.85"]),
    ("CyclicLR-triangular2", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2, mode="triangular2"),
     [["0.01", "0.055", "0.1", "0.055", "0.01", "0.0325", "0.055", "0.0325", "0.01", "0.02125"]], None),
    ("CyclicLR-exp_range",
     lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2, mode="exp_range", gamma=0.9),
     [["0.01", "0.0505", "0.0829", "0.042805", "0.01", "0.03657205", "0.05782969", "0.0315233605", "0.01"]], None),
    ("CyclicLR-scale_fn-cycle",
     lambda: js.CyclicLR(base_lr=0.0, max_lr=1.0, step_size_up=2, scale_fn=_lam("(lambda e: 0.5 ** e)"),
                         scale_mode="cycle"),
     [["0", "0.25", "0.5", "0.25", "0", "0.125", "0.25", "0.125", "0"]], None),
    ("CyclicLR-scale_fn-iterations",
     lambda: js.CyclicLR(base_lr=0.0, max_lr=1.0, step_size_up=2, scale_fn=_lam("(lambda e: 0.5 ** e)"),
                         scale_mode="iterations"),
     [["0", "0.25", "0.25", "0.0625", "0", "0.015625"]], None),
    ("CyclicLR-down0", lambda: js.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=0),
     [["0.01", "0.04", "0.07", "0.01"]], None),
    ("CyclicLR-float-size", lambda: js.CyclicLR(base_lr=0.0, max_lr=1.0, step_size_up=2.5),
     [["0", "0.4", "0.8", "0.8", "0.4", "0"]], None),
    ("CAWR-Tmult2", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=3, T_mult=2),
     [["0.1", "0.075", "0.025", "0.1", "0.0933012702", "0.075", "0.05", "0.025", "0.0066987298", "0.1",
       "0.0982962913"]], None),
    ("CAWR-eta", lambda: js.CosineAnnealingWarmRestarts(0.1, T_0=4, eta_min=0.01),
     [["0.1", "0.0868198052", "0.055", "0.0231801948", "0.1"]], None),
    ("OneCycleLR-cos", lambda: js.OneCycleLR(max_lr=1.0, total_steps=10),
     [["0.040000000000000036", "0.52", "1.0", "0.950484632", "0.8117456539", "0.6112620219", "0.3887419781",
       "0.1882583461", "0.0495193680", "4e-06", "0.0495193680"]],
     ["0.95", "0.9", "0.85", "0.8549515566", "0.8688255099", "0.8888739533", "0.9111260467", "0.9311744901",
      "0.9450484434", "0.95", "0.9450484434"]),
    ("OneCycleLR-three-phase-linear",
     lambda: js.OneCycleLR(max_lr=1.0, total_steps=10, three_phase=True, anneal_strategy="linear"),
     [["0.04", "0.52", "1.0", "0.52", "0.04", "0.0320008", "0.0240016", "0.0160024", "0.0080032",
       "3.9999999999970615e-06", "-0.0079952"]],
     ["0.95", "0.9", "0.85", "0.9", "0.95", "0.95"]),
    ("OneCycleLR-2groups",
     lambda: js.OneCycleLR(max_lr=(1.0, 2.0), total_steps=10, div_factor=10.0, final_div_factor=100.0),
     [["0.1", "0.55", "1", "0.9505339495"], ["0.2", "1.1", "2", "1.901067899"]], None),
    ("OneCycleLR-total5", lambda: js.OneCycleLR(max_lr=1.0, total_steps=5),
     [["0.04", "0.9504846", "0.6112620", "0.1882583", "4e-06", "0.1882583"]], None),
    ("OneCycleLR-total1", lambda: js.OneCycleLR(max_lr=1.0, total_steps=1),
     [["4e-06", "0.6112620219"]], None),
    ("OneCycleLR-index0-in-phase2", lambda: js.OneCycleLR(max_lr=1.0, total_steps=10, pct_start=0.05),
     [["0.99318"]], None),
    ("SWALR-cos", lambda: js.SWALR(0.1, swa_lr=0.01, anneal_epochs=4),
     [["0.1", "0.0868198052", "0.055", "0.0231801948", "0.01", "0.01"]], None),
    ("SWALR-linear", lambda: js.SWALR(0.1, swa_lr=0.01, anneal_epochs=4, anneal_strategy="linear"),
     [["0.1", "0.0775", "0.055", "0.0325", "0.01"]], None),
    ("SWALR-2groups",
     lambda: js.SWALR((0.1, 0.5), swa_lr=(0.01, 0.05), anneal_epochs=3, anneal_strategy="linear"),
     [["0.1", "0.07", "0.04", "0.01"], ["0.5", "0.35", "0.2", "0.05"]], None),
]

# the tail of OneCycleLR over 100 steps: index 100 extrapolates (cos turns up, linear goes negative)
TAILS = [
    ("cos", ["0.000507465", "4e-06", "0.000507465"]),
    ("linear", ["0.0142897", "4.0e-06", "-0.0142817"]),
]


def _golden(strings):
    """Values and per-value tolerances: half a unit of the last printed digit (exact when printed in full)."""
    values = np.array([float(x) for x in strings])
    quanta = np.array([0.5 * 10.0 ** Decimal(x).as_tuple().exponent for x in strings])
    return values, quanta + 1e-15 * np.abs(values)


def _as_groups(golden_groups):
    vals, tols = zip(*(_golden(g) for g in golden_groups))
    n = min(len(v) for v in vals)
    return np.stack([v[:n] for v in vals], axis=1), np.stack([t[:n] for t in tols], axis=1)


def _eval(fn, n):
    return np.asarray(jax.jit(fn)(jnp.arange(n)), np.float64).reshape(n, -1)


def _check(got, want, tol, what, name):
    bad = np.abs(got - want) > tol
    assert not bad.any(), (
        f"{name} ({what}): index {np.argwhere(bad)[0].tolist()}: got {got[bad][0]!r}, golden {want[bad][0]!r}"
    )


@pytest.mark.parametrize("name,make,lrs,momentum", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name, make, lrs, momentum):
    s = make()
    want, tol = _as_groups(lrs)
    n = want.shape[0]
    with jax.enable_x64(True):
        _check(_eval(s, n), want, tol, "jaxsched x64", name)
        ref, ref_mom = torch_trajectory(s, n - 1)
        _check(ref, want, tol, "live torch", name)
        if momentum is not None:
            mw, mt = _as_groups([momentum])
            _check(_eval(s.momentum, mw.shape[0]), mw, mt, "momentum x64", name)
            _check(ref_mom[: mw.shape[0]], mw, mt, "live torch momentum", name)
    got32 = _eval(s, n)
    assert jax.jit(s)(0).dtype == jnp.float32
    _check(got32, want, tol + 1e-6 * np.max(np.abs(want)), "jaxsched float32", name)


@pytest.mark.parametrize("strategy,tail", TAILS)
def test_golden_onecycle_tail(strategy, tail):
    s = js.OneCycleLR(max_lr=1.0, total_steps=100, anneal_strategy=strategy)
    want, tol = _golden(tail)
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(s)(jnp.arange(98, 101)), np.float64)
        ref, _ = torch_trajectory(s, 100)
    _check(got[:, None], want[:, None], tol[:, None], "jaxsched x64", f"OneCycleLR({strategy})")
    _check(ref[98:], want[:, None], tol[:, None], "live torch", f"OneCycleLR({strategy})")


def test_every_scheduler_has_a_golden_sequence():
    names = {type(make()).__name__ for _, make, _, _ in GOLDEN}
    assert names == {
        "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
        "SequentialLR", "PolynomialLR", "CosineAnnealingLR", "ChainedScheduler", "CyclicLR",
        "CosineAnnealingWarmRestarts", "OneCycleLR", "SWALR",
    }


def test_golden_check_can_fail():
    want, tol = _golden(["0.1", "0.075"])
    with pytest.raises(AssertionError, match="golden"):
        _check(np.array([[0.1], [0.0756]]), want[:, None], tol[:, None], "x", "demo")
