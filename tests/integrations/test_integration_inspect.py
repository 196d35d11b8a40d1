"""``get_lr`` / ``get_momentum``: the hyperparameters the last update applied, against live torch, where
``optax.tree_utils.tree_get`` fails (chain, MultiSteps, parameter groups, under jit)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsched
from jaxsched import optim
from jaxsched.optim import get_lr, get_momentum
from tests.references import torch_trajectory

N = 12


def _run(opt, params, n, momentum=True):
    """The LR and momentum read back with get_lr/get_momentum after each of ``n`` updates."""
    st = opt.init(params)
    g = jax.tree_util.tree_map(jnp.ones_like, params)

    def step(st):
        _, st = opt.update(g, st, params)
        return st

    step = jax.jit(step)
    lrs, moms = [], []
    for _ in range(n):
        st = step(st)
        lrs.append(np.asarray(get_lr(st)))
        moms.append(np.asarray(get_momentum(st)) if momentum else np.nan)
    return np.array(lrs), np.array(moms)


def test_tree_get_fails_where_get_lr_works():
    s = jaxsched.OneCycleLR(max_lr=0.1, total_steps=N)
    st = optim.scheduled(optax.sgd, s).init(jnp.zeros(2))
    with pytest.raises(Exception, match="multiple values"):
        optax.tree_utils.tree_get(st, "learning_rate")
    assert float(get_lr(st)) == pytest.approx(float(s(0)), abs=1e-9)


@pytest.mark.parametrize("factory,optimizer", [(optax.sgd, "sgd"), (optax.adam, "adam")])
def test_onecycle_inside_chain_matches_torch(factory, optimizer):
    s = jaxsched.OneCycleLR(max_lr=0.1, total_steps=N)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.add_decayed_weights(1e-4),
                      optim.scheduled(factory, s))
    lrs, moms = _run(opt, jnp.zeros(3), N)
    torch_lr, torch_mom = torch_trajectory(s, N, optimizer=optimizer)
    np.testing.assert_allclose(lrs, torch_lr[:N, 0], atol=1e-6 * 0.1, rtol=0)
    assert torch_mom is not None
    np.testing.assert_allclose(moms, torch_mom[:N, 0], atol=1e-6, rtol=0)


def test_multisteps_reads_the_last_real_update():
    k = 3
    s = jaxsched.CosineAnnealingLR(0.1, T_max=5)
    opt = optax.MultiSteps(optim.scheduled(optax.sgd, s, momentum=0.9), every_k_schedule=k)
    lrs, moms = _run(opt, jnp.zeros(2), 4 * k)
    torch_lr, _ = torch_trajectory(s, 4)
    # before the first real update the inner state holds schedule(0); afterwards the LR of the last real update
    expected = [torch_lr[max(0, (i + 1) // k - 1), 0] for i in range(4 * k)]
    np.testing.assert_allclose(lrs, expected, atol=1e-6 * 0.1, rtol=0)
    np.testing.assert_allclose(moms, 0.9, atol=1e-7)


def test_grouped_returns_one_lr_per_group_in_group_order():
    s = jaxsched.StepLR((0.1, 0.01, 0.5), step_size=2, gamma=0.5)
    params = {"a": jnp.zeros(2), "b": jnp.zeros(1), "c": jnp.zeros(1)}
    opt = optim.grouped(optax.sgd, s, {"a": 2, "b": 0, "c": 1})
    lrs, _ = _run(opt, params, N, momentum=False)
    torch_lr, _ = torch_trajectory(s, N)
    assert lrs.shape == (N, 3)
    np.testing.assert_allclose(lrs, torch_lr[:N], rtol=1e-6)


def test_grouped_by_name_needs_group_names():
    s = jaxsched.ExponentialLR((0.1, 0.2), gamma=0.5)
    params = {"body": jnp.zeros(2), "head": jnp.zeros(1)}
    names = ("head", "body")     # group 0 is "head": not alphabetical, so the order cannot be guessed
    opt = optim.grouped(optax.sgd, s, {"body": "body", "head": "head"}, group_names=names)
    st = opt.init(params)
    _, st = opt.update({"body": jnp.ones(2), "head": jnp.ones(1)}, st, params)
    _, st = opt.update({"body": jnp.ones(2), "head": jnp.ones(1)}, st, params)
    np.testing.assert_allclose(np.asarray(get_lr(st, group_names=names)), [0.05, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="group_names"):
        get_lr(st)
    with pytest.raises(KeyError, match="'tail'"):
        get_lr(st, group_names=("head", "tail"))


def test_in_optimizer_plateau_reads_the_applied_lr():
    plateau = jaxsched.ReduceLROnPlateau(0.1, patience=0, factor=0.5)
    opt = optim.scheduled(optax.sgd, plateau)
    params = jnp.zeros(1)
    st = opt.init(params)
    seen = []
    for loss in [1.0, 2.0, 2.0, 0.5]:
        _, st = opt.update(jnp.ones(1), st, params, value=loss)
        seen.append(round(float(get_lr(st)), 6))
    # update k applies the LR decided by the metrics of updates 0..k-1 (torch: the epoch after the step)
    assert seen == [0.1, 0.1, 0.05, 0.025]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no optax.inject_hyperparams state"):
        get_lr(optax.sgd(0.1).init(jnp.zeros(1)))
    two = optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
                      optax.inject_hyperparams(optax.sgd)(learning_rate=0.2))
    with pytest.raises(ValueError, match="2 injected 'learning_rate' values"):
        get_lr(two.init(jnp.zeros(1)))
    with pytest.raises(ValueError, match="'momentum' or 'b1'"):
        get_momentum(optim.scheduled(optax.rmsprop, jaxsched.StepLR(0.1, step_size=1)).init(jnp.zeros(1)))


def test_get_lr_under_jit():
    s = jaxsched.MultiStepLR(0.1, milestones=[1, 2], gamma=0.1)
    opt = optim.scheduled(optax.sgd, s)
    st = opt.init(jnp.zeros(1))
    _, st = opt.update(jnp.ones(1), st, jnp.zeros(1))
    _, st = opt.update(jnp.ones(1), st, jnp.zeros(1))
    assert float(jax.jit(get_lr)(st)) == pytest.approx(0.01, rel=1e-6)
