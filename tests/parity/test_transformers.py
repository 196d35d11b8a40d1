"""jaxsched.transformers against live HF transformers (pinned in the test extra): whole trajectories.

Every name ``transformers.get_scheduler`` accepts is built twice, by transformers on a real torch SGD
optimizer (one or two parameter groups) and by ``jaxsched.transformers.get_scheduler``; the LR after
``0..T+20`` calls of ``scheduler.step()`` must agree to 1e-6 x max|LR| in float32 (under ``jax.jit``) and
1e-10 x max|LR| with x64. GreedyLR is fed the same metric sequence on both sides.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from hypothesis import given, note, settings
from hypothesis import strategies as st
from transformers.trainer_utils import SchedulerType

import jaxsched
from jaxsched.transformers import (
    SCHEDULER_NAMES,
    GreedyLR,
    get_scheduler,
)

TOL32, TOL64 = 1e-6, 1e-10
LAMBDA_NAMES = [n for n in SCHEDULER_NAMES if n not in ("reduce_lr_on_plateau", "greedy")]
# Ten names, each example compiles twice (float32 and x64): a third of the profile's examples per name.
PER_NAME = settings(max_examples=max(6, settings.default.max_examples // 4))


def make_optimizer(lrs, default_lr):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=default_lr)


def hf_trajectory(name, lrs, default_lr, W, T, kw, steps):
    opt = make_optimizer(lrs, default_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = transformers.get_scheduler(name, opt, W, T, dict(kw))
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    return np.asarray(out, np.float64)


def ours(s, steps):
    out = np.asarray(jax.jit(s)(jnp.arange(steps + 1)), np.float64)  # as optax calls it
    return out.reshape(steps + 1, -1)


def assert_close(got, ref, tol, label, s):
    assert got.shape == ref.shape, (label, got.shape, ref.shape)
    assert np.all(np.isfinite(got)), f"{label}: non-finite LR from {s!r}"
    scale = max(np.max(np.abs(ref)), 1e-12)
    err = np.abs(got - ref)
    k = int(np.argmax(err.max(axis=1)))
    assert err.max() <= tol * scale, (
        f"{label}: {s!r} differs from transformers by {err.max():.3e} (> {tol:g} x {scale:.3g}) at step {k}: "
        f"ours {got[k]}, transformers {ref[k]}")


def check_both(name, lrs, default_lr, W, T, kw, ours_kw=None):
    steps = max(T, W) + 20
    ref = hf_trajectory(name, lrs, default_lr, W, T, kw, steps)
    lr = lrs[0] if len(lrs) == 1 else tuple(lrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = get_scheduler(name, lr, W, T, {**kw, **(ours_kw or {})})
    assert_close(ours(s, steps), ref, TOL32, "float32", s)
    with jax.enable_x64(True):
        assert_close(ours(s, steps), ref, TOL64, "x64", s)
    return s


# ----------------------------------------------------------------------------------------------------------
# hypothesis parity, one test per name


lrs_st = st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=2)
cycles_st = st.floats(0.0, 4.0) | st.sampled_from([0.5, 1.0, 1.5, 2.0])


@st.composite
def config(draw, name):
    lrs = draw(lrs_st)
    default_lr = lrs[0] if len(lrs) == 1 else draw(st.floats(1e-4, 1.0))
    W = draw(st.integers(0, 40))
    T = draw(st.integers(0, 200))
    kw, extra = {}, {}
    needs_init = len(lrs) > 1
    if name in ("cosine", "cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        kw["num_cycles"] = draw(cycles_st)
    if name == "cosine_with_restarts":
        kw["num_cycles"] = draw(st.integers(1, 8) | st.floats(0.1, 6.0))
    if name == "polynomial":
        T = draw(st.integers(0, 200).filter(lambda t: t != W))
        kw["lr_end"] = default_lr * draw(st.floats(0.0, 0.99))
        kw["power"] = draw(st.floats(0.0, 4.0) | st.sampled_from([0.5, 1.0, 2.0]))
        if needs_init:
            extra["lr_init"] = default_lr
    if name == "inverse_sqrt":
        kw["timescale"] = draw(st.none() | st.integers(1, 100))
    if name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if draw(st.booleans()):
            kw["min_lr"] = default_lr * draw(st.floats(0.0, 1.0))
            if needs_init:
                extra["lr_init"] = default_lr
        else:
            kw["min_lr_rate"] = draw(st.floats(0.0, 1.0))
    if name == "cosine_warmup_with_min_lr":
        kw["warmup_lr_rate"] = draw(st.none() | st.floats(0.0, 1.0))
    if name == "warmup_stable_decay":
        kw["num_decay_steps"] = draw(st.integers(0, 100))
        which = draw(st.sampled_from(["T", "S", "both"]))
        if which != "T":
            kw["num_stable_steps"] = draw(st.integers(0, 100))
        if which == "S":
            T = None
        kw["warmup_type"] = draw(st.sampled_from(["linear", "cosine", "1-sqrt"]))
        kw["decay_type"] = draw(st.sampled_from(["linear", "cosine", "1-sqrt"]))
        kw["min_lr_ratio"] = draw(st.floats(0.0, 0.5))
        kw["num_cycles"] = draw(cycles_st)
    if name in ("constant",):
        W = T = None
    if name in ("constant_with_warmup", "inverse_sqrt"):
        T = None
    return lrs, default_lr, W, T, kw, extra


@pytest.mark.slow
@pytest.mark.parametrize("name", LAMBDA_NAMES)
@PER_NAME
@given(data=st.data())
def test_matches_transformers(name, data):
    lrs, default_lr, W, T, kw, extra = data.draw(config(name))
    steps_W = W or 0
    T_eff = T if T is not None else (steps_W + kw.get("num_stable_steps", 0) + kw.get("num_decay_steps", 0) + 30)
    # run past the end of every phase
    steps = max(T_eff, steps_W) + 20
    ref = hf_trajectory(name, lrs, default_lr, W, T, kw, steps)
    lr = lrs[0] if len(lrs) == 1 else tuple(lrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = get_scheduler(name, lr, W, T, {**kw, **extra})
    note(repr(s))
    assert_close(ours(s, steps), ref, TOL32, "float32", s)
    with jax.enable_x64(True):
        assert_close(ours(s, steps), ref, TOL64, "x64", s)


def test_hard_restart_boundaries_follow_transformers_rounding():
    # float64 22 * (15 / 22) < 15: transformers sits at the bottom of the cosine at step 15, not at the top.
    assert 22 * (15 / 22) != 15
    s = check_both("cosine_with_restarts", [0.1], 0.1, 0, 22, {"num_cycles": 22})
    assert float(s(15)) < 1e-6
    check_both("cosine_with_restarts", [0.1], 0.1, 3, 52, {"num_cycles": 49})


def test_long_cosine_float32_phase():
    # many cycles over many steps: a plain float32 angle would be off by more than 1e-6 of the LR
    check_both("cosine", [1.0], 1.0, 0, 20000, {"num_cycles": 7.3})
    check_both("warmup_stable_decay", [1.0], 1.0, 10, 20000,
               {"num_decay_steps": 19000, "num_cycles": 5.7, "decay_type": "cosine"})


def test_polynomial_uses_optimizer_default_lr():
    # groups at 0.1 and 0.01 on an optimizer whose default lr is 0.05: the factor is built from 0.05
    s = check_both("polynomial", [0.1, 0.01], 0.05, 5, 50, {"lr_end": 0.01, "power": 2.0},
                   ours_kw={"lr_init": 0.05})
    assert s.lr_init == 0.05
    with pytest.raises(ValueError, match="lr_init must be given with several parameter groups"):
        get_scheduler("polynomial", (0.1, 0.01), 5, 50)
    with pytest.raises(ValueError, match=r"lr_end \(0.2\) must be smaller than initial lr \(0.1\)"):
        get_scheduler("polynomial", 0.1, 5, 50, {"lr_end": 0.2})


# ----------------------------------------------------------------------------------------------------------
# errors: the same as transformers for missing arguments


def hf_error(name, W, T, kw):
    opt = make_optimizer([0.1], 0.1)
    with pytest.raises(Exception) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transformers.get_scheduler(name, opt, W, T, kw)
    return info.value


@pytest.mark.parametrize("name, W, T, kw", [
    (n, None, None, {}) for n in LAMBDA_NAMES if n != "constant"
] + [
    (n, 10, None, {}) for n in ("linear", "cosine", "cosine_with_restarts", "polynomial", "cosine_with_min_lr",
                                "cosine_warmup_with_min_lr")
] + [
    ("warmup_stable_decay", 10, None, {"num_decay_steps": 5}),
    ("cosine_with_min_lr", 10, 100, {}),
    ("cosine_with_min_lr", 10, 100, {"min_lr": 0.01, "min_lr_rate": 0.1}),
    ("cosine_warmup_with_min_lr", 10, 100, {}),
    ("warmup_stable_decay", 10, 100, {"num_decay_steps": 5, "warmup_type": "exp"}),
    ("warmup_stable_decay", 10, 100, {"num_decay_steps": 5, "decay_type": "step"}),
    ("no_such_schedule", 10, 100, {}),
])
def test_same_errors_as_transformers(name, W, T, kw):
    ref = hf_error(name, W, T, kw)
    assert isinstance(ref, ValueError)
    with pytest.raises(ValueError) as info:
        get_scheduler(name, 0.1, W, T, kw)
    assert str(ref).rstrip(".") in str(info.value), (str(ref), str(info.value))


def test_unknown_keyword_is_a_type_error_like_transformers():
    assert isinstance(hf_error("linear", 10, 100, {"num_cycles": 2}), TypeError)
    with pytest.raises(TypeError, match="num_cycles"):
        get_scheduler("linear", 0.1, 10, 100, {"num_cycles": 2})


def test_names_are_transformers_names():
    assert list(SCHEDULER_NAMES) == [t.value for t in SchedulerType]
    assert get_scheduler(SchedulerType.COSINE, 0.1, 1, 10) == get_scheduler("cosine", 0.1, 1, 10)


@pytest.mark.parametrize("cls, kw, arg", [
    ("CosineScheduleWithWarmup", dict(num_warmup_steps=-1, num_training_steps=10), "num_warmup_steps=-1"),
    ("LinearScheduleWithWarmup", dict(num_warmup_steps=1, num_training_steps=2.5), "num_training_steps=2.5"),
    ("PolynomialDecayScheduleWithWarmup", dict(num_warmup_steps=5, num_training_steps=5), "num_warmup_steps=5"),
    ("PolynomialDecayScheduleWithWarmup", dict(num_warmup_steps=1, num_training_steps=5, power=-1.0),
     "power=-1.0"),
    ("InverseSqrtSchedule", dict(num_warmup_steps=1, timescale=0), "timescale=0"),
    ("CosineScheduleWithWarmup", dict(num_warmup_steps=1, num_training_steps=10, num_cycles=float("nan")),
     "num_cycles=nan"),
])
def test_bad_values_are_named_at_construction(cls, kw, arg):
    with pytest.raises((ValueError, TypeError), match=arg.replace("(", r"\(").replace(".", r"\.")):
        getattr(jaxsched.transformers, cls)(0.1, **kw)


def test_wsd_conflicting_lengths_warns_and_uses_stable_steps():
    with pytest.warns(UserWarning, match="num_stable_steps will be used"):
        s = get_scheduler("warmup_stable_decay", 0.1, 2, 100, {"num_decay_steps": 4, "num_stable_steps": 3})
    assert s.stable_steps == 3


# ----------------------------------------------------------------------------------------------------------
# contract: value semantics, config, spec, jit/vmap


def _examples():
    return [
        get_scheduler("constant", 0.1),
        get_scheduler("constant_with_warmup", 0.1, 3),
        get_scheduler("linear", (0.1, 0.2), 3, 30),
        get_scheduler("cosine", 0.1, 3, 30, {"num_cycles": 1.5}),
        get_scheduler("cosine_with_restarts", 0.1, 3, 30, {"num_cycles": 3}),
        get_scheduler("polynomial", 0.1, 3, 30, {"power": 2.0, "lr_end": 1e-3}),
        get_scheduler("inverse_sqrt", 0.1, 3, None, {"timescale": 7}),
        get_scheduler("cosine_with_min_lr", 0.1, 3, 30, {"min_lr": 1e-3}),
        get_scheduler("cosine_warmup_with_min_lr", 0.1, 3, 30, {"min_lr_rate": 0.1, "warmup_lr_rate": 0.2}),
        get_scheduler("warmup_stable_decay", 0.1, 3, 30, {"num_decay_steps": 10, "decay_type": "1-sqrt"}),
    ]


@pytest.mark.parametrize("s", _examples(), ids=lambda s: type(s).__name__)
def test_value_semantics_config_and_spec(s):
    again = jaxsched.parse_spec(repr(s))
    assert again == s and hash(again) == hash(s) and repr(again) == repr(s)
    assert jaxsched.from_config(s.to_config()) == s
    import json
    assert jaxsched.from_config(json.dumps(s.to_config())) == s
    ks = jnp.arange(40)
    # hyperparameters traced as jit arguments are float32 leaves: close to, not equal to, the eager value
    np.testing.assert_allclose(np.asarray(jax.jit(lambda s: s(ks))(s)), np.asarray(s(ks)), rtol=1e-5, atol=1e-8)
    leaves, treedef = jax.tree_util.tree_flatten(s)
    assert jax.tree_util.tree_unflatten(treedef, leaves) == s


def test_vmap_over_lr_and_num_cycles():
    s = get_scheduler("cosine", 0.1, 3, 30, {"num_cycles": 1.5})
    leaves, treedef = jax.tree_util.tree_flatten(s)
    lrs = jnp.asarray([0.1, 0.2, 0.4])
    out = jax.vmap(lambda lr: jax.tree_util.tree_unflatten(treedef, [lr, leaves[1]])(10))(lrs)
    np.testing.assert_allclose(np.asarray(out), np.asarray(s(10)) * np.asarray([1, 2, 4]), rtol=1e-6)
    ncs = jnp.asarray([0.5, 1.5])
    got = jax.vmap(lambda nc: jax.tree_util.tree_unflatten(treedef, [leaves[0], nc])(10))(ncs)
    want = [float(get_scheduler("cosine", 0.1, 3, 30, {"num_cycles": nc})(10)) for nc in (0.5, 1.5)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)


def test_optax_schedule_as_is():
    import optax
    s = get_scheduler("linear", 0.1, 2, 10)
    opt = optax.sgd(learning_rate=s)
    params = jnp.zeros(())
    state = opt.init(params)
    lrs = []
    for _ in range(4):
        upd, state = opt.update(jnp.ones(()), state, params)
        lrs.append(-float(upd))
    np.testing.assert_allclose(lrs, [0.0, 0.05, 0.1, 0.0875], rtol=1e-6)


def test_running_form_matches_closed_form():
    s = get_scheduler("cosine_with_restarts", 0.1, 3, 40, {"num_cycles": 3})
    run = jaxsched.Running(s)
    state = run.init()
    got = []
    for _ in range(45):
        got.append(float(run(state)))
        state = run.update(state)
    np.testing.assert_allclose(got, np.asarray(s(jnp.arange(45))), rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------------------------------------
# GreedyLR and ReduceLROnPlateau (metric-driven)


def hf_greedy(lrs, kw, metrics):
    opt = make_optimizer(lrs, lrs[0])
    sched = transformers.get_scheduler("greedy", opt, scheduler_specific_kwargs=dict(kw))
    out = []
    for m in metrics:
        opt.step()
        sched.step(m)
        out.append([g["lr"] for g in opt.param_groups])
    return np.asarray(out, np.float64)


def ours_greedy(g, metrics):
    """The LR after each metric, the updates run as one jitted lax.scan."""
    def run(values):
        def body(state, v):
            state = g.update(state, value=v)
            return state, g(state)
        return jax.lax.scan(body, g.init(), values)[1]
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    out = np.asarray(jax.jit(run)(jnp.asarray(metrics, dtype)), np.float64)
    return out.reshape(len(metrics), -1)


@st.composite
def greedy_config(draw):
    lrs = draw(st.lists(st.floats(0.01, 0.5), min_size=1, max_size=2))
    n = len(lrs)
    min_lr = draw(st.floats(1e-3, 0.05))
    kw = dict(
        mode=draw(st.sampled_from(["min", "max"])),
        factor=draw(st.floats(0.3, 0.99)),
        patience=draw(st.integers(0, 4)),
        threshold_mode=draw(st.sampled_from(["abs", "rel"])),
        threshold=draw(st.sampled_from([1e-6, 1e-3, 0.01])),
        cooldown=draw(st.integers(0, 3)),
        warmup=draw(st.integers(0, 3)),
        min_lr=[min_lr] * n if n > 1 and draw(st.booleans()) else min_lr,
        max_lr=draw(st.floats(0.5, 2.0)),
        smooth=draw(st.booleans()),
        window_size=draw(st.integers(1, 6)),
        reset_start=draw(st.integers(1, 5)),
    )
    # metrics on a 1/16 grid: float32 and float64 make the same comparisons
    trend = draw(st.sampled_from([-1, 0, 1]))
    raw = draw(st.lists(st.integers(0, 16), min_size=10, max_size=80))
    metrics = [(8 * 16 + trend * i + r) / 16.0 for i, r in enumerate(raw)]
    return lrs, kw, metrics


@pytest.mark.slow
@PER_NAME
@given(greedy_config())
def test_greedy_matches_transformers(cfg):
    lrs, kw, metrics = cfg
    ref = hf_greedy(lrs, kw, metrics)
    lr = lrs[0] if len(lrs) == 1 else tuple(lrs)
    g = get_scheduler("greedy", lr, scheduler_specific_kwargs={k: tuple(v) if isinstance(v, list) else v
                                                              for k, v in kw.items()})
    note(repr(g))
    assert_close(ours_greedy(g, metrics), ref, TOL32, "float32", g)
    with jax.enable_x64(True):
        assert_close(ours_greedy(g, metrics), ref, TOL64, "x64", g)


def test_greedy_increases_then_resets():
    # steady improvement raises the LR to max_lr; then a long plateau cuts it to min_lr and resets it
    kw = dict(patience=1, factor=0.5, min_lr=0.01, max_lr=0.4, reset_start=2)
    metrics = [10.0 - i for i in range(8)] + [5.0] * 30
    g = GreedyLR(0.1, **kw)
    got = ours_greedy(g, metrics)[:, 0]
    ref = hf_greedy([0.1], kw, metrics)[:, 0]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert got.max() == pytest.approx(0.4) and got.min() == pytest.approx(0.01)
    assert np.any(np.isclose(got[np.argmin(got) + 1:], 0.1)), "GreedyLR never reset to the initial LR"


def test_greedy_errors_and_contract():
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        GreedyLR(0.1, factor=1.0)
    with pytest.raises(ValueError, match="mode must be one of 'min', 'max', got mode='up'"):
        GreedyLR(0.1, mode="up")
    with pytest.raises(ValueError, match="verbose=True"):
        GreedyLR(0.1, verbose=True)
    with pytest.raises(ValueError, match="min_lr"):
        GreedyLR((0.1, 0.2), min_lr=(0.01, 0.01, 0.01))
    with pytest.raises(ValueError, match="GreedyLR"):
        jaxsched.SequentialLR([GreedyLR(0.1), jaxsched.StepLR(0.1, 3)], milestones=[3])
    g = GreedyLR((0.1, 0.2), min_lr=(0.01, 0.02), smooth=True, window_size=3)
    assert jaxsched.parse_spec(repr(g)) == g and jaxsched.from_config(g.to_config()) == g
    assert g.num_groups == 2
    with pytest.raises(TypeError, match="metric-driven"):
        g(3)


def test_reduce_lr_on_plateau_maps_to_jaxsched():
    plateau = jaxsched.SCHEDULES.get("ReduceLROnPlateau") or getattr(jaxsched, "ReduceLROnPlateau", None)
    if plateau is None:
        with pytest.raises(NotImplementedError, match="ReduceLROnPlateau"):
            get_scheduler("reduce_lr_on_plateau", 0.1)
        return
    kw = dict(mode="min", factor=0.5, patience=2, cooldown=1)
    s = get_scheduler("reduce_lr_on_plateau", 0.1, scheduler_specific_kwargs=kw)
    assert isinstance(s, plateau)
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8]
    opt = make_optimizer([0.1], 0.1)
    ref_s = transformers.get_scheduler("reduce_lr_on_plateau", opt, scheduler_specific_kwargs=kw)
    state = s.init()
    for m in metrics:
        opt.step()
        ref_s.step(m)
        state = s.update(state, value=m)
        assert float(np.asarray(s(state))) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6)
