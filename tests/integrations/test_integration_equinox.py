"""Equinox: a schedule held in an eqx.Module compiles once for every LR when its float leaves are arrays
(and once per LR when they are Python floats, which equinox treats as static); training with optax under
eqx.filter_jit follows torch."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsched
from jaxsched import optim
from jaxsched.optim import get_lr, get_momentum
from tests.references import torch_trajectory

SCHEDULES = [
    lambda lr: jaxsched.CosineAnnealingLR(lr, T_max=10, eta_min=0.001),
    lambda lr: jaxsched.OneCycleLR(max_lr=lr, total_steps=20),
    lambda lr: jaxsched.SequentialLR([jaxsched.LinearLR(lr, start_factor=0.1, total_iters=3),
                                      jaxsched.ExponentialLR(lr, gamma=0.9)], milestones=[3]),
]


class Model(eqx.Module):
    w: jax.Array
    schedule: jaxsched.Schedule


@pytest.mark.parametrize("make", SCHEDULES, ids=["cosine", "onecycle", "sequential"])
def test_array_leaves_compile_once(make):
    compiles = []

    @eqx.filter_jit
    def lrs(model, steps):
        compiles.append(None)
        return jax.vmap(model.schedule)(steps)

    steps = jnp.arange(12)
    for lr in (0.1, 0.2, 0.3):
        lrs(Model(jnp.ones(2), make(lr)), steps)
    assert len(compiles) == 3          # Python-float leaves are static to equinox: one compilation per LR

    compiles.clear()
    for lr in (0.1, 0.2, 0.3):
        s = make(lr)
        got = lrs(Model(jnp.ones(2), jax.tree.map(jnp.asarray, s)), steps)
        np.testing.assert_allclose(np.asarray(got), np.asarray(jax.vmap(s)(steps)), atol=1e-6 * lr, rtol=0)
    assert len(compiles) == 1


@pytest.mark.slow
def test_equinox_training_follows_torch():
    model = eqx.nn.MLP(4, 1, width_size=8, depth=1, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (16, 4))
    s = jaxsched.OneCycleLR(max_lr=0.1, total_steps=15)
    tx = optim.scheduled(optax.sgd, s)
    opt_state = tx.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def train_step(model, opt_state):
        grads = eqx.filter_grad(lambda m: jnp.mean(jax.vmap(m)(x) ** 2))(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state

    lrs, moms = [], []
    for _ in range(15):
        model, opt_state = train_step(model, opt_state)
        lrs.append(float(get_lr(opt_state)))
        moms.append(float(get_momentum(opt_state)))
    torch_lr, torch_mom = torch_trajectory(s, 15)
    assert torch_mom is not None
    np.testing.assert_allclose(lrs, torch_lr[:15, 0], atol=1e-6 * 0.1, rtol=0)
    np.testing.assert_allclose(moms, torch_mom[:15, 0], atol=1e-6, rtol=0)
