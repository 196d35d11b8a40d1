"""jaxsched.timm: from_timm on live schedulers, value semantics, validation, and the plateau in optax."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from jaxsched import timm as jt
from jaxsched._frameworks import from_timm
from jaxsched._value import from_config
from tests._timm_loader import load_timm_scheduler

ts = load_timm_scheduler()
if ts is None:
    pytest.skip("timm is not installed", allow_module_level=True)

#: One configuration per class, away from the defaults (two parameter groups where it reads naturally).
EXAMPLES = [
    jt.CosineLRScheduler((0.1, 0.05), t_initial=20, lr_min=1e-3, cycle_mul=1.5, cycle_decay=0.7, cycle_limit=3,
                         warmup_t=4, warmup_lr_init=1e-4, warmup_prefix=True, t_in_epochs=False, k_decay=1.5),
    jt.TanhLRScheduler(0.1, t_initial=15, lb=-5.0, ub=2.0, lr_min=1e-3, cycle_mul=2.0, cycle_limit=2, warmup_t=3,
                       warmup_lr_init=0.01),
    jt.PolyLRScheduler(0.1, t_initial=25, power=1.5, lr_min=1e-4, cycle_limit=2, k_decay=0.5),
    jt.StepLRScheduler((0.1, 0.2), decay_t=2.4, decay_rate=0.97, warmup_t=3, warmup_lr_init=1e-3),
    jt.MultiStepLRScheduler(0.1, decay_t=[5, 12, 30], decay_rate=0.5, warmup_t=2, warmup_prefix=False),
    jt.WSDLRScheduler((0.1, 0.05), t_initial=40, decay_t=10, lr_min=1e-4, stable_fn="power", stable_power=0.3,
                      decay_fn="exp", decay_ratio=0.2, warmup_t=5, warmup_lr_init=1e-3, t_in_epochs=False),
    jt.PlateauLRScheduler(0.1, decay_rate=0.5, patience_t=2, threshold=1e-3, cooldown_t=1, warmup_t=3,
                          warmup_lr_init=1e-3, lr_min=1e-4, mode="min"),
]


def optimizer(lr):
    lrs = lr if isinstance(lr, tuple) else (lr,)
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": v} for v in lrs], lr=lrs[0])


def live(s, opt=None):
    assert ts is not None
    args = dict(s.to_config()["args"])
    del args["lr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(ts, type(s).__name__)(opt or optimizer(s.lr), **args)


def test_examples_cover_every_class():
    assert {type(s) for s in EXAMPLES} == set(jt.CLASSES.values())


@pytest.mark.parametrize("s", EXAMPLES, ids=lambda s: type(s).__name__)
def test_from_timm_gives_the_same_schedule(s):
    assert from_timm(live(s)) == s


def test_from_timm_mid_run_gives_the_whole_schedule():
    """timm's schedulers are functions of t: converting after some steps changes nothing."""
    s = EXAMPLES[0]
    sched = live(s)
    for t in range(17):
        sched.step_update(t)
    assert from_timm(sched) == s


@pytest.mark.parametrize("s", EXAMPLES, ids=lambda s: type(s).__name__)
def test_value_semantics(s):
    cfg = s.to_config()
    assert cfg["name"] == f"timm.{type(s).__name__}"
    back = from_config(cfg)
    assert back == s and hash(back) == hash(s) and repr(back) == repr(s)
    assert eval(repr(s), {**jt.CLASSES}) == s
    assert repr(s).startswith(f"{type(s).__name__}({s.lr!r}, ")  # the optimizer's slot: positional lr


@pytest.mark.parametrize("s", [e for e in EXAMPLES if not isinstance(e, jt.PlateauLRScheduler)],
                         ids=lambda s: type(s).__name__)
def test_jit_and_vmap_over_the_lr(s):
    steps = jnp.arange(60)
    eager = s(steps)
    np.testing.assert_allclose(jax.jit(s)(steps), eager, rtol=1e-6)
    lr = s.lr[0] if isinstance(s.lr, tuple) else s.lr
    scale = jnp.asarray([1.0, 3.0])
    args = dict(s.to_config()["args"])
    args.pop("lr")
    if isinstance(s, jt.StepLRScheduler):
        args["decay_t"] = s.decay_t

    def at(lr_):
        return type(s)(lr_, **args)(steps)

    out = jax.jit(jax.vmap(at))(lr * scale)  # one compiled program rather than op-by-op batching
    np.testing.assert_allclose(out[0], at(lr), rtol=1e-6)
    assert not np.allclose(out[1], out[0])  # the second LR really gave another schedule


@pytest.mark.parametrize("make, match", [
    (lambda: jt.CosineLRScheduler(0.1, t_initial=0), r"t_initial must be > 0.*t_initial=0"),
    (lambda: jt.CosineLRScheduler(0.1, t_initial=10, lr_min=-1.0), r"lr_min must be >= 0"),
    (lambda: jt.CosineLRScheduler(0.1, t_initial=10, cycle_mul=0.5), r"cycle_mul must be >= 1.*math domain"),
    (lambda: jt.CosineLRScheduler(0.1, t_initial=10, k_decay=0.0), r"k_decay must be > 0"),
    (lambda: jt.TanhLRScheduler(0.1, t_initial=10, lb=3.0, ub=-7.0), r"lb must be < ub"),
    (lambda: jt.MultiStepLRScheduler(0.1, decay_t=[10, 5]), r"decay_t must be sorted"),
    (lambda: jt.StepLRScheduler(0.1, decay_t=0), r"decay_t must be > 0"),
    (lambda: jt.PlateauLRScheduler(0.1, decay_rate=1.0), r"decay_rate must be < 1.0"),
    (lambda: jt.PlateauLRScheduler(0.1, mode="best"), r"mode must be one of 'min', 'max'"),
    (lambda: jt.CosineLRScheduler(0.1, t_initial=10, noise_range_t=(1, 5)), r"noise_range_t must be None"),
    (lambda: jt.WSDLRScheduler(0.1, t_initial=10, decay_t=11), r"decay_t must be in \(0, t_initial\]"),
    (lambda: jt.WSDLRScheduler(0.1, t_initial=10, decay_t=5, stable_fn="rsqrt"), r"requires a positive stable_t"),
    (lambda: jt.WSDLRScheduler(0.1, t_initial=10, decay_t=5, decay_fn="square"), r"decay_fn must be one of"),
])
def test_validation_names_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_from_timm_refusals():
    opt = optimizer((0.1, 0.2))
    opt.param_groups[1]["lr_scale"] = 0.5
    assert ts is not None
    with pytest.raises(ValueError, match=r"parameter groups \[1\] have an 'lr_scale'"):
        from_timm(ts.CosineLRScheduler(opt, t_initial=10))
    with pytest.raises(TypeError, match="no jaxsched counterpart"):
        from_timm(torch.optim.lr_scheduler.StepLR(optimizer(0.1), step_size=3))


def test_plateau_needs_the_metric_and_runs_in_optax():
    p = EXAMPLES[-1]
    with pytest.raises(TypeError, match="the metric is missing"):
        p.update(p.init())
    params = {"w": jnp.zeros(2)}
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=p)
    state = opt.init(params)
    grads = {"w": jnp.ones(2)}
    step = jax.jit(lambda st, v: opt.update(grads, st, params, value=v))
    seen = []
    for loss in [1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]:
        updates, state = step(state, loss)
        seen.append(-float(updates["w"][0]))
    # the reference: timm stepped with the same metrics; optax applies the LR before the update's step
    sched_opt = optimizer(p.lr)
    sched = live(p, sched_opt)
    ref = [sched_opt.param_groups[0]["lr"]]
    for epoch, loss in enumerate([1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8], start=1):
        sched.step(epoch, loss)
        ref.append(sched_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, ref, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# the cycle location shared by Keras' CosineDecayRestarts and timm's cycle schedulers


def _exact_cycle(e: int, first: int, m):
    from fractions import Fraction

    i, start, m = 0, Fraction(0), Fraction(m)
    while start + first * m**i <= e:
        start += first * m**i
        i += 1
    return i, float(e - start), float(first * m**i)


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize("first, mul", [(1, 2.0), (5, 2.0), (1, 3.0), (2, 3.0), (7, 4.0), (3, 10.0), (1000, 3.0),
                                        (1, 1.5), (4, 2.5)])
def test_cycle_is_exact(first, mul, x64):
    """Every step 0..1999, random steps and the largest step land in the exact cycle (rational arithmetic)."""
    from jaxsched._cycles import cycle

    with jax.enable_x64(x64):
        top = 2**63 - 1 if x64 else 2**31 - 1
        rng = np.random.default_rng(first)
        es = np.concatenate([np.arange(2000), rng.integers(0, top, 300), [top - 1, top]])
        if not float(mul).is_integer():  # the table covers steps up to 2**53
            es = es[es <= 2**53]
        dtype = jnp.float64 if x64 else jnp.float32
        out = jax.jit(jax.vmap(lambda e: cycle(e, first, mul, None, dtype)))(jnp.asarray(es))
        i, t_curr, t_i = (np.asarray(a) for a in out)  # read on the host once, not one device read per element
        for k, e in enumerate(es.tolist()):
            want = _exact_cycle(e, first, mul)
            assert int(i[k]) == want[0], (e, int(i[k]), want)
            assert abs(float(t_curr[k]) - want[1]) <= 2e-7 * max(want[2], 1.0), (e, float(t_curr[k]), want)
            assert abs(float(t_i[k]) - want[2]) <= 2e-7 * want[2], (e, float(t_i[k]), want)
