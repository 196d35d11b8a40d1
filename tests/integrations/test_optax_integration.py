"""jaxsched.optim and the step adapters inside real optax optimizers, against torch.

The LR (and momentum / Adam b1) is read back from the optimizer state after every update of a
``jax.jit(lax.scan)`` loop, and where the optimizer is plain SGD the applied update ``-lr * grad`` is checked
too. Update ``k`` must apply torch's index ``k``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jaxsched
from jaxsched import optim
from tests.references import torch_trajectory

TOL64, TOL32 = 1e-10, 1e-6


def _close(got, ref, tol, what=""):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = max(float(np.max(np.abs(ref))), 1e-300)
    err = float(np.max(np.abs(got - ref)))
    assert err <= tol * scale, f"{what}: max abs err {err:.3g} > {tol:g} x {scale:.3g}"


def run(opt, n, params, grads=None, values=None):
    """Hyperparameters after each of ``n`` updates and the updates themselves (jit(lax.scan))."""
    grads = jax.tree_util.tree_map(jnp.ones_like, params) if grads is None else grads

    @jax.jit
    def go(params, values):
        def body(st, v):
            kw = {} if values is None else {"value": v}
            upd, st = opt.update(grads, st, params, **kw)
            return st, (st.hyperparams if hasattr(st, "hyperparams") else st, upd)

        xs = jnp.zeros(n) if values is None else values
        return jax.lax.scan(body, opt.init(params), xs)[1]

    return go(params, None if values is None else jnp.asarray(values))


SCHEDULES = [
    jaxsched.StepLR(0.1, step_size=3, gamma=0.5),
    jaxsched.CosineAnnealingLR(0.1, T_max=7, eta_min=0.01),
    jaxsched.OneCycleLR(max_lr=0.5, total_steps=30),
    jaxsched.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2"),
    jaxsched.SequentialLR([jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=5),
                           jaxsched.CosineAnnealingLR(0.1, T_max=20)], milestones=[5]),
    jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=4, T_mult=2, eta_min=1e-3),
    jaxsched.SWALR(0.1, swa_lr=0.02, anneal_epochs=6),
]


@pytest.mark.parametrize("s", SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("factory", ["sgd", "adam"])
def test_applied_lr_and_momentum_match_torch(s, factory):
    n = 29
    with jax.enable_x64(True):
        opt = optim.scheduled(getattr(optax, factory), s)
        hp, upd = run(opt, n, jnp.zeros(3, jnp.float64))
    ref, ref_mom = torch_trajectory(s, n, optimizer=factory)
    _close(hp["learning_rate"], ref[:n, 0], TOL64, "lr")
    if ref_mom is not None:
        _close(hp["momentum" if factory == "sgd" else "b1"], ref_mom[:n, 0], TOL64, "momentum")
    elif factory == "sgd":
        assert "momentum" not in hp  # not injected: optax.sgd keeps its default (no momentum)
    else:
        np.testing.assert_array_equal(np.asarray(hp["b1"]), 0.9)  # Adam's default, untouched
    if factory == "sgd" and ref_mom is None:  # the update itself is -lr * grad
        _close(-np.asarray(upd)[:, 0], ref[:n, 0], TOL64, "applied update")


def test_float32_default_precision():
    s = jaxsched.OneCycleLR(max_lr=0.5, total_steps=40, three_phase=True)
    with jax.enable_x64(False):
        hp, _ = run(optim.scheduled(optax.sgd, s), 40, jnp.zeros(2))
        assert hp["learning_rate"].dtype == jnp.float32
    ref, mom = torch_trajectory(s, 40)
    _close(hp["learning_rate"], ref[:40, 0], TOL32, "lr f32")
    _close(hp["momentum"], mom[:40, 0], TOL32, "momentum f32")


def test_running_form_in_optimizer():
    """A non-multiplicative ChainedScheduler through Running: O(1) per update, torch's LRs."""
    s = jaxsched.ChainedScheduler([jaxsched.CosineAnnealingLR(0.1, T_max=5, eta_min=0.01),
                                   jaxsched.StepLR(0.1, step_size=4, gamma=0.5)])
    with jax.enable_x64(True):
        hp, _ = run(optim.scheduled(optax.sgd, jaxsched.Running(s)), 30, jnp.zeros(1, jnp.float64))
    _close(hp["learning_rate"], torch_trajectory(s, 30)[0][:30, 0], TOL64)


def test_grouped_applies_each_groups_lr():
    s = jaxsched.OneCycleLR(max_lr=(0.5, 0.05), total_steps=20, base_momentum=(0.8, 0.85))
    labels = {"body": {"w": 0}, "head": 1}
    with jax.enable_x64(True):
        params = {"body": {"w": jnp.zeros((2, 2), jnp.float64)}, "head": jnp.zeros(3, jnp.float64)}
        opt = optim.grouped(optax.sgd, s, labels)
        st = opt.init(params)
        lrs, moms = [], []
        for _ in range(20):
            _, st = opt.update(jax.tree_util.tree_map(jnp.ones_like, params), st, params)
            lrs.append([float(st.inner_states[g].inner_state.hyperparams["learning_rate"]) for g in (0, 1)])
            moms.append([float(st.inner_states[g].inner_state.hyperparams["momentum"]) for g in (0, 1)])
    ref, ref_mom = torch_trajectory(s, 20)
    _close(lrs, ref[:20], TOL64, "per-group lr")
    _close(moms, ref_mom[:20], TOL64, "per-group momentum")


def test_grouped_applied_updates_and_names():
    s = jaxsched.ExponentialLR((0.1, 0.3), gamma=0.9)
    with jax.enable_x64(True):
        params = {"a": jnp.zeros(2, jnp.float64), "b": jnp.zeros(1, jnp.float64)}
        opt = optim.grouped(optax.sgd, s, lambda p: {"a": "backbone", "b": "head"}, group_names=["backbone", "head"])
        _, upd = run(opt, 10, params)
    ref, _ = torch_trajectory(s, 10)
    _close(-np.asarray(upd["a"])[:, 0], ref[:10, 0], TOL64)
    _close(-np.asarray(upd["b"])[:, 0], ref[:10, 1], TOL64)


def test_wiring_errors():
    with pytest.raises(ValueError, match="grouped"):
        optim.scheduled(optax.sgd, jaxsched.StepLR((0.1, 0.2), step_size=2))
    with pytest.raises(ValueError, match="neither a 'momentum'.*nor a 'b1'"):
        optim.scheduled(optax.adagrad, jaxsched.OneCycleLR(max_lr=0.1, total_steps=10))
    with pytest.raises(ValueError, match="labels must be group names"):
        optim.grouped(optax.sgd, jaxsched.StepLR((0.1, 0.2), step_size=2), {"a": 0, "b": 2})
    with pytest.raises(TypeError, match="schedule must be"):
        optim.scheduled(optax.sgd, lambda k: 0.1)
    with pytest.raises(ValueError, match="no optax.inject_hyperparams state"):
        optim.set_lr(optax.sgd(0.1).init(jnp.zeros(1)), 0.1)
    scheduled_state = optim.scheduled(optax.sgd, jaxsched.StepLR(0.1, 2)).init(jnp.zeros(1))
    with pytest.raises(ValueError, match="follows a schedule in this optimizer"):
        optim.set_lr(scheduled_state, 0.1)


# ------------------------------------------------------------------------------------------------------------
# the plateau: inside the optimizer, accumulated, and stepped by the training loop


def _torch_plateau_lrs(kw, lr, metrics, per_call_updates=1):
    """The LR applied at each update when torch steps the plateau after every ``per_call_updates`` updates."""
    q = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([q], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        for _ in range(per_call_updates):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
        sched.step(m)
    return np.asarray(out)


LOSSES = [3.0, 2.0, 2.0, 2.5, 2.0, 2.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]


def test_plateau_inside_optimizer_every_update():
    kw = dict(patience=1, factor=0.5, cooldown=1)
    with jax.enable_x64(True):
        p = jaxsched.ReduceLROnPlateau(0.1, **kw)
        hp, upd = run(optim.scheduled(optax.sgd, p), len(LOSSES), jnp.zeros(1, jnp.float64), values=LOSSES)
    ref = _torch_plateau_lrs(kw, 0.1, LOSSES)
    np.testing.assert_array_equal(np.asarray(hp["learning_rate"]), ref)
    np.testing.assert_array_equal(-np.asarray(upd)[:, 0], ref)
    assert ref[-1] < ref[0]  # the sequence does cut


def test_accumulated_plateau_decides_on_epoch_means():
    n = 4
    rng = np.random.default_rng(1)
    epoch_losses = [1.0, 0.8, 0.8, 0.9, 0.85, 0.8, 0.8, 0.8, 0.7, 0.75]
    per_step = np.concatenate([m + rng.normal(0, 0.05, n) for m in epoch_losses])
    means = []
    for e in range(len(epoch_losses)):
        total = 0.0
        for v in per_step[e * n:(e + 1) * n]:
            total += float(v)
        means.append(total / n)
    kw = dict(patience=1, factor=0.5, threshold=0.01)
    with jax.enable_x64(True):
        p = optim.accumulate(jaxsched.ReduceLROnPlateau(0.1, **kw), n)
        hp, _ = run(optim.scheduled(optax.sgd, p), len(per_step), jnp.zeros(1, jnp.float64), values=per_step)
    got = np.asarray(hp["learning_rate"])
    # update k applies the LR after k // n plateau steps: an epoch's mean is known after its last update
    torch_after = [0.1]
    q = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([q], lr=0.1)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for m in means:
        tsched.step(m)
        torch_after.append(topt.param_groups[0]["lr"])
    expected = [torch_after[k // n] for k in range(len(per_step))]
    np.testing.assert_array_equal(got, expected)
    assert min(expected) < 0.1


def test_plateau_stepped_by_the_loop_with_set_lr():
    """The torch pattern: N updates per epoch, then plateau.step(val_loss); set_lr feeds the optimizer."""
    n, kw = 3, dict(patience=0, factor=0.5, min_lr=(0.02, 0.0))
    val = [1.0, 0.9, 0.9, 0.95, 0.7, 0.7, 0.7]
    with jax.enable_x64(True):
        p = jaxsched.ReduceLROnPlateau((0.1, 0.05), **kw)
        params = {"a": jnp.zeros(1, jnp.float64), "b": jnp.zeros(1, jnp.float64)}
        opt = optim.grouped(optax.sgd, p.lr, {"a": 0, "b": 1})
        st, ps = opt.init(params), p.init()
        step = jax.jit(lambda st: opt.update({"a": jnp.ones(1), "b": jnp.ones(1)}, st, params))
        applied = []
        for v in val:
            for _ in range(n):
                upd, st = step(st)
                applied.append([-float(upd["a"][0]), -float(upd["b"][0])])
            ps = p.update(ps, value=v)
            st = optim.set_lr(st, p(ps))
    qa, qb = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([{"params": [qa], "lr": 0.1}, {"params": [qb], "lr": 0.05}], lr=0.1)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, patience=0, factor=0.5, min_lr=[0.02, 0.0])
    ref = []
    for v in val:
        for _ in range(n):
            ref.append([g["lr"] for g in topt.param_groups])
            topt.step()
        tsched.step(v)
    np.testing.assert_array_equal(np.asarray(applied), np.asarray(ref))
    assert ref[-1] != ref[0]


def test_set_lr_single_group_under_jit():
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    st = opt.init(jnp.zeros(2))
    st2 = jax.jit(optim.set_lr)(st, 0.025)
    assert float(st2.hyperparams["learning_rate"]) == pytest.approx(0.025)
    assert st2.hyperparams["learning_rate"].dtype == st.hyperparams["learning_rate"].dtype


# ------------------------------------------------------------------------------------------------------------
# per-epoch schedules in a per-step loop


@pytest.mark.parametrize("s", [
    jaxsched.StepLR(0.1, step_size=2, gamma=0.5),
    jaxsched.OneCycleLR(max_lr=0.3, total_steps=8),
    jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: jnp.where(e < 3, 0.5, 0.9)),
], ids=lambda s: type(s).__name__)
def test_per_epoch_matches_torch_epoch_loop(s):
    n, epochs = 5, 8
    with jax.enable_x64(True):
        pe = jaxsched.PerEpoch(s, steps_per_epoch=n)
        hp, _ = run(optim.scheduled(optax.sgd, pe), n * epochs, jnp.zeros(1, jnp.float64))
        run_hp, _ = run(optim.scheduled(optax.sgd, jaxsched.Running(pe)), n * epochs, jnp.zeros(1, jnp.float64))
    ref, mom = torch_trajectory(s, epochs)
    per_update = np.repeat(ref[:epochs, 0], n)
    _close(hp["learning_rate"], per_update, TOL64, "PerEpoch")
    _close(run_hp["learning_rate"], per_update, TOL64, "Running(PerEpoch)")
    if mom is not None:
        _close(hp["momentum"], np.repeat(mom[:epochs, 0], n), TOL64, "PerEpoch momentum")


@pytest.mark.parametrize("T_0, T_mult, eta_min, iters", [(5, 2, 0.0, 7), (3, 1, 0.001, 4), (2, 3, 0.0, 5)])
def test_cawr_documented_fractional_epoch_idiom(T_0, T_mult, eta_min, iters):
    """torch's docs loop: optimizer.step(); scheduler.step(epoch + i / iters), run exactly as written."""
    epochs = 14
    q = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([q], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min)
    ref = []
    for epoch in range(epochs):
        for i in range(iters):
            ref.append(opt.param_groups[0]["lr"])  # the LR this update applies
            opt.step()
            sched.step(epoch + i / iters)
    s = jaxsched.PerEpoch(jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=T_0, T_mult=T_mult, eta_min=eta_min),
                          steps_per_epoch=iters, fractional=True)
    with jax.enable_x64(True):
        hp, upd = run(optim.scheduled(optax.sgd, s), epochs * iters, jnp.zeros(1, jnp.float64))
    _close(hp["learning_rate"], ref, TOL64, "CAWR idiom")
    _close(-np.asarray(upd)[:, 0], ref, TOL64, "CAWR idiom applied")


def test_adapters_value_semantics_and_errors():
    inner = jaxsched.StepLR(0.1, step_size=2)
    pe = jaxsched.PerEpoch(inner, steps_per_epoch=10)
    assert repr(pe) == "PerEpoch(StepLR(0.1, step_size=2, gamma=0.1), steps_per_epoch=10, fractional=False)"
    assert jaxsched.from_config(pe.to_config()) == pe and hash(pe) == hash(jaxsched.PerEpoch(inner, 10))
    off = jaxsched.Offset(inner, start=5)
    assert jaxsched.from_config(off.to_config()) == off
    assert "PerEpoch" not in jaxsched.SCHEDULES and "Offset" not in jaxsched.SCHEDULES
    assert float(jax.jit(pe)(25)) == pytest.approx(float(inner(2)))
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer, got steps_per_epoch=0"):
        jaxsched.PerEpoch(inner, 0)
    with pytest.raises(ValueError, match="fractional=True follows torch's documented CosineAnnealingWarmRestarts"):
        jaxsched.PerEpoch(inner, 3, fractional=True)
    with pytest.raises(TypeError, match="driven by a metric"):
        jaxsched.PerEpoch(jaxsched.ReduceLROnPlateau(0.1), 3)
    with pytest.raises(ValueError, match="changes what a step means"):
        jaxsched.SequentialLR([pe, jaxsched.StepLR(0.1, 3)], milestones=[2])
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        jaxsched.Offset(jaxsched.OneCycleLR(max_lr=0.1, total_steps=10), start=6)(5)
