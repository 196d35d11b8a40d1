"""Flax linen (``jaxsched.flax.TrainState`` forwards ``value=``) and Flax NNX (``nnx.Optimizer``: the LR read
back, ``value=``, ``set_optimizer_lr`` keeping the LR variable), against live torch."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx
from flax.training import train_state

import jaxsched
from jaxsched import optim
from jaxsched.flax import TrainState, set_optimizer_lr
from jaxsched.optim import get_lr
from tests.references import torch_trajectory

LOSSES = [1.0, 0.9, 0.95, 0.97, 0.91, 0.96, 0.99, 0.8, 0.85, 0.9, 0.95, 0.97]


def torch_plateau_lrs(losses, **kwargs) -> list[float]:
    """The LR each torch update applied when ReduceLROnPlateau is stepped with ``losses[k]`` after update k."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    applied = []
    for loss in losses:
        applied.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(loss)
    return applied


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(8)(x)))


def test_flax_train_state_drops_value():
    plateau = jaxsched.ReduceLROnPlateau(0.1, patience=1)
    state = train_state.TrainState.create(apply_fn=None, params={"w": jnp.ones(2)},
                                          tx=optim.scheduled(optax.sgd, plateau))
    with pytest.raises(TypeError, match="metric is missing"):
        state.apply_gradients(grads={"w": jnp.ones(2)}, value=1.0)
    fixed = TrainState.create(apply_fn=None, params={"w": jnp.ones(2)}, tx=optim.scheduled(optax.sgd, plateau))
    assert int(fixed.apply_gradients(grads={"w": jnp.ones(2)}, value=1.0).step) == 1


def test_linen_train_state_forwards_value_to_the_plateau():
    x = jax.random.normal(jax.random.key(0), (16, 3))
    plateau = jaxsched.ReduceLROnPlateau(0.1, patience=1, factor=0.5)
    model = MLP()
    state = TrainState.create(apply_fn=model.apply, params=model.init(jax.random.key(1), x),
                              tx=optim.scheduled(optax.sgd, plateau, momentum=0.9))

    @jax.jit
    def train_step(state, loss_value):
        grads = jax.grad(lambda p: jnp.mean(state.apply_fn(p, x) ** 2))(state.params)
        return state.apply_gradients(grads=grads, value=loss_value)

    lrs = []
    for loss in LOSSES:
        state = train_step(state, loss)
        lrs.append(float(state.lr))
    assert int(state.step) == len(LOSSES)
    np.testing.assert_allclose(lrs, torch_plateau_lrs(LOSSES, patience=1, factor=0.5), rtol=1e-6)
    assert min(lrs) < 0.1       # the plateau did cut: the test can tell a dropped value from a forwarded one


def test_linen_train_state_still_replaces_fields():
    class WithStats(TrainState):
        batch_stats: dict

    plateau = jaxsched.ReduceLROnPlateau(0.1, patience=0)
    state = WithStats.create(apply_fn=None, params=jnp.ones(2), tx=optim.scheduled(optax.sgd, plateau),
                             batch_stats={"mean": jnp.zeros(1)})
    state = state.apply_gradients(grads=jnp.ones(2), value=1.0, batch_stats={"mean": jnp.ones(1)})
    assert float(state.batch_stats["mean"][0]) == 1.0
    plain = optax.GradientTransformation(optax.sgd(0.1).init, optax.sgd(0.1).update)   # takes no extra args
    with pytest.raises(TypeError, match=r"\['value'\] are not fields"):
        TrainState.create(apply_fn=None, params=jnp.ones(1), tx=plain).apply_gradients(grads=jnp.ones(1), value=1.0)


def _nnx_model():
    return nnx.Sequential(nnx.Linear(3, 8, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(8, 1, rngs=nnx.Rngs(1)))


def test_nnx_optimizer_follows_torch_onecycle():
    x = jax.random.normal(jax.random.key(0), (16, 3))
    s = jaxsched.OneCycleLR(max_lr=0.1, total_steps=20)
    model = _nnx_model()
    optimizer = nnx.Optimizer(model, optim.scheduled(optax.sgd, s), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    lrs, moms = [], []
    for _ in range(20):
        train_step(model, optimizer)
        lrs.append(float(get_lr(optimizer.opt_state)))
        moms.append(float(optimizer.opt_state.hyperparams["momentum"][...]))
    torch_lr, torch_mom = torch_trajectory(s, 20)
    assert torch_mom is not None
    np.testing.assert_allclose(lrs, torch_lr[:20, 0], atol=1e-6 * 0.1, rtol=0)
    np.testing.assert_allclose(moms, torch_mom[:20, 0], atol=1e-6, rtol=0)


def test_nnx_optimizer_passes_value_to_the_plateau():
    x = jax.random.normal(jax.random.key(0), (16, 3))
    model = _nnx_model()
    optimizer = nnx.Optimizer(model, optim.scheduled(optax.sgd, jaxsched.ReduceLROnPlateau(0.1, patience=1,
                                                                                           factor=0.5)),
                              wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, loss_value):
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        optimizer.update(model, grads, value=loss_value)

    lrs = []
    for loss in LOSSES:
        train_step(model, optimizer, loss)
        lrs.append(float(get_lr(optimizer.opt_state)))
    np.testing.assert_allclose(lrs, torch_plateau_lrs(LOSSES, patience=1, factor=0.5), rtol=1e-6)


def test_nnx_set_optimizer_lr_keeps_the_variable_and_the_trace():
    x = jnp.ones((4, 3))
    traces = []

    @nnx.jit
    def train_step(model, optimizer):
        traces.append(None)
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        optimizer.update(model, grads)

    def fresh():
        model = _nnx_model()
        return model, nnx.Optimizer(model, optim.scheduled(optax.sgd, 0.1, momentum=0.9), wrt=nnx.Param)

    def opt_state_leaves(optimizer):
        return [float(v) for v in jax.tree_util.tree_leaves(nnx.state(optimizer, nnx.OptState))
                if jnp.ndim(v) == 0 and jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating)]

    # the naive assignment: the LR becomes a bare array, missing from nnx.state(..., OptState), and jit retraces
    model, optimizer = fresh()
    train_step(model, optimizer)
    optimizer.opt_state = optim.set_lr(optimizer.opt_state, 0.05)
    assert pytest.approx(0.05) not in opt_state_leaves(optimizer)
    n = len(traces)
    train_step(model, optimizer)
    assert len(traces) == n + 1

    # set_optimizer_lr: the same value, written into the variable; no retrace, the state still holds it
    traces.clear()
    model, optimizer = fresh()
    train_step(model, optimizer)
    for lr in (0.05, 0.02):
        set_optimizer_lr(optimizer, lr)
        assert isinstance(optimizer.opt_state.hyperparams["learning_rate"], nnx.Variable)
        assert pytest.approx(lr) in opt_state_leaves(optimizer)
        train_step(model, optimizer)
        assert float(get_lr(optimizer.opt_state)) == pytest.approx(lr)
    assert len(traces) == 1
