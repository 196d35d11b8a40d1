"""from_torch: a live torch scheduler (fresh, stepped k times, restored with load_state_dict) continues exactly.

For every torch scheduler: build it on a real optimizer, step it ``k`` times, convert, then step torch on and
compare its LR (and cycled momentum) with ``s(0), s(1), ...`` under x64 (1e-10 x max LR).
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxsched

S = torch.optim.lr_scheduler
TOL = 1e-10

CASES = {
    "LambdaLR": ([0.1, 0.05], lambda o: S.LambdaLR(o, lambda e: 0.95 ** e)),
    "LambdaLR-per-group": ([0.1, 0.05], lambda o: S.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1.0 / (e + 1)])),
    "MultiplicativeLR": ([0.1], lambda o: S.MultiplicativeLR(o, lambda e: 0.9)),
    "StepLR": ([0.1], lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
    "MultiStepLR": ([0.1, 1.0], lambda o: S.MultiStepLR(o, milestones=[9, 3, 3], gamma=0.5)),
    "ConstantLR": ([0.1], lambda o: S.ConstantLR(o, factor=0.25, total_iters=9)),
    "LinearLR": ([0.1], lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=12)),
    "ExponentialLR": ([0.1], lambda o: S.ExponentialLR(o, gamma=0.93)),
    "PolynomialLR": ([0.1], lambda o: S.PolynomialLR(o, total_iters=20, power=1.7)),
    "CosineAnnealingLR": ([0.1], lambda o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.01)),
    "CosineAnnealingWarmRestarts": ([0.1], lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                                      eta_min=1e-3)),
    "CyclicLR": ([0.1], lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=3,
                                             mode="triangular2")),
    "CyclicLR-exp_range": ([0.1, 0.1], lambda o: S.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=5,
                                                            mode="exp_range", gamma=0.97)),
    "CyclicLR-scale_fn": ([0.1], lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                      scale_fn=lambda x: 1.0 / (2.0 ** (x - 1)))),
    "OneCycleLR": ([0.1], lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=40)),
    "OneCycleLR-three_phase": ([0.1, 0.1], lambda o: S.OneCycleLR(o, max_lr=[0.3, 0.2], total_steps=40,
                                                                  pct_start=0.25, three_phase=True,
                                                                  anneal_strategy="linear")),
    "SWALR": ([0.1], lambda o: torch.optim.swa_utils.SWALR(o, swa_lr=0.02, anneal_epochs=9)),
    "SequentialLR": ([0.1], lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=4),
                                                         S.ExponentialLR(o, gamma=0.9)], milestones=[4])),
    "ChainedScheduler": ([0.1], lambda o: S.ChainedScheduler([S.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
                                                              S.StepLR(o, step_size=4, gamma=0.5)])),
}


def _opt(lrs, kind="sgd"):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9) if kind == "sgd" else torch.optim.Adam(groups, lr=lrs[0])


def _momentum(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _advance(opt, sched, k):
    for _ in range(k):
        opt.step()
        sched.step()


def _future(opt, sched, m):
    """torch's LRs and momenta now and after each of ``m`` more steps."""
    lrs, moms = [[g["lr"] for g in opt.param_groups]], [_momentum(opt)]
    for _ in range(m):
        opt.step()
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append(_momentum(opt))
    return np.asarray(lrs), np.asarray(moms)


def _check(s, ref, ref_mom, what):
    m = len(ref) - 1
    got = np.asarray(s(jnp.arange(m + 1)), np.float64).reshape(m + 1, -1)
    scale = float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(got - ref)))
    assert err <= TOL * scale, f"{what}: {s!r} err {err:.3g}"
    if getattr(s, "cycle_momentum", False):
        mom = np.asarray(s.momentum(jnp.arange(m + 1)), np.float64).reshape(m + 1, -1)
        assert float(np.max(np.abs(mom - ref_mom))) <= TOL, f"{what}: momentum"


def _steps_for(name):
    return (0, 7, 16) if not name.startswith("OneCycleLR") else (0, 7, 20)


@pytest.mark.parametrize("name", list(CASES))
def test_continues_where_torch_goes_next(name):
    lrs, make = CASES[name]
    m = 40 - 20 if name.startswith("OneCycleLR") else 25
    with warnings.catch_warnings(), jax.enable_x64(True):
        warnings.simplefilter("ignore")
        cycles = name.startswith(("CyclicLR", "OneCycleLR"))  # Adam only matters for the cycled betas[0]
        for kind, steps in [("sgd", _steps_for(name))] + ([("adam", (7,))] if cycles else []):
            for k in steps:
                opt = _opt(lrs, kind)
                sched = make(opt)
                _advance(opt, sched, k)
                s = jaxsched.from_torch(sched)
                assert isinstance(s, jaxsched.Offset) == (k > 0), s
                ref, ref_mom = _future(opt, sched, m)
                _check(s, ref, ref_mom, f"{name} {kind} k={k}")


@pytest.mark.parametrize("name", list(CASES))
def test_after_load_state_dict(name):
    lrs, make = CASES[name]
    k, m = 9, 20
    with warnings.catch_warnings(), jax.enable_x64(True):
        warnings.simplefilter("ignore")
        opt = _opt(lrs)
        sched = make(opt)
        _advance(opt, sched, k)
        sd, osd = sched.state_dict(), opt.state_dict()
        opt2 = _opt(lrs)
        sched2 = make(opt2)
        sched2.load_state_dict(sd)
        opt2.load_state_dict(osd)
        s = jaxsched.from_torch(sched2)
        ref, ref_mom = _future(opt2, sched2, m)
        _check(s, ref, ref_mom, f"{name} resumed")


def test_fresh_scheduler_gives_the_equal_schedule():
    opt = _opt([0.1, 0.2])
    assert jaxsched.from_torch(S.MultiStepLR(opt, milestones=[9, 3, 3], gamma=0.5)) == \
        jaxsched.MultiStepLR((0.1, 0.2), milestones=(3, 3, 9), gamma=0.5)
    opt = _opt([0.1])
    assert jaxsched.from_torch(S.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)) == \
        jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=3, T_mult=2)


def test_plateau_config_and_state_continue():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, float("nan"), 0.7, 0.7, 0.7, 0.7, 0.7]
    with jax.enable_x64(True):
        for kw in [dict(patience=1, factor=0.5, cooldown=1), dict(mode="max", threshold_mode="abs", patience=0,
                                                                  threshold=0.01, min_lr=[0.05, 0.0])]:
            opt = _opt([0.1, 0.2])
            sched = S.ReduceLROnPlateau(opt, **kw)
            for v in metrics[:6]:
                sched.step(v)
            p, st = jaxsched.from_torch(sched)
            assert isinstance(st, jaxsched.PlateauState) and int(st.last_epoch) == 6
            got, ref = [], []
            for v in metrics[6:]:
                sched.step(v)
                st = p.update(st, value=v)
                ref.append([g["lr"] for g in opt.param_groups])
                got.append(np.asarray(p(st)).tolist())
                assert float(st.best) == sched.best and int(st.num_bad_epochs) == sched.num_bad_epochs
                assert int(st.cooldown_counter) == sched.cooldown_counter
            np.testing.assert_array_equal(got, ref)
            assert got[-1] != [0.1, 0.2]


def test_untraceable_lambda_is_a_clear_error():
    opt = _opt([0.1])
    sched = S.LambdaLR(opt, lambda e: 0.1 if e < 10 else 0.01)
    with pytest.raises(TypeError, match=r"(?s)from_torch: the LambdaLR's lr_lambda cannot be converted.*jnp.where"):
        jaxsched.from_torch(sched)


def test_externally_edited_lr():
    """StepLR keeps multiplying an LR edited outside the scheduler: Running seeded with it follows torch."""
    with jax.enable_x64(True):
        opt = _opt([0.1])
        sched = S.StepLR(opt, step_size=3, gamma=0.5)
        _advance(opt, sched, 4)
        opt.param_groups[0]["lr"] = 0.7
        with pytest.raises(ValueError, match="changed outside the scheduler.*running=True"):
            jaxsched.from_torch(sched)
        r, st = jaxsched.from_torch(sched, running=True)
        got = []
        for _ in range(12):
            got.append(float(r(st)))
            st = r.update(st)
        ref, _ = _future(opt, sched, 11)
    np.testing.assert_allclose(got, ref[:, 0], rtol=1e-14)
    assert math.isclose(got[-1], 0.7 * 0.5 ** 4)


def test_fractional_cawr_is_refused():
    opt = _opt([0.1])
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(1.5)
    with pytest.raises(ValueError, match="fractional epoch.*PerEpoch"):
        jaxsched.from_torch(sched)
