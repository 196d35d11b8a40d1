"""The README's Flax example, run for one schedule per torch scheduler: a small Flax (linen) model trained with
an optax optimizer under a jaxsched schedule; the LR read back from the optimizer state at every update equals
torch's (default float32: 1e-6 x max LR)."""

from __future__ import annotations

# --- README example begins ------------------------------------------------------------------------------
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax.training import train_state

import jaxsched
from tests.references import torch_trajectory

pytestmark = pytest.mark.slow  # trains a Flax model against torch, once per torch scheduler


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(16)(x)))


def train(schedule, steps, factory=optax.sgd):
    """Train MLP on a toy regression; return the LR (and momentum) applied at each update."""
    x = jax.random.normal(jax.random.key(0), (64, 4))
    y = jnp.sin(x.sum(axis=1, keepdims=True))
    model = MLP()
    tx = jaxsched.optim.scheduled(factory, schedule)   # LR (and momentum / b1) follow the schedule
    state = train_state.TrainState.create(apply_fn=model.apply, params=model.init(jax.random.key(1), x), tx=tx)

    @jax.jit
    def train_step(state):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((state.apply_fn(p, x) - y) ** 2))(state.params)
        return state.apply_gradients(grads=grads), loss

    lrs, moms = [], []
    for _ in range(steps):
        state, loss = train_step(state)
        hp = state.opt_state.hyperparams            # what this update applied
        lrs.append(float(hp["learning_rate"]))
        moms.append(float(hp.get("momentum", hp.get("b1", np.nan))))
    return np.asarray(lrs), np.asarray(moms), float(loss)
# --- README example ends --------------------------------------------------------------------------------


ONE_PER_SCHEDULER = [
    jaxsched.LambdaLR(0.1, lr_lambda=lambda e: jnp.minimum(1.0, (e + 1) / 5)),
    jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.9),
    jaxsched.StepLR(0.1, step_size=4, gamma=0.5),
    jaxsched.MultiStepLR(0.1, milestones=[3, 8], gamma=0.3),
    jaxsched.ConstantLR(0.1, factor=0.5, total_iters=4),
    jaxsched.LinearLR(0.1, start_factor=0.2, total_iters=6),
    jaxsched.ExponentialLR(0.1, gamma=0.9),
    jaxsched.PolynomialLR(0.1, total_iters=10, power=2.0),
    jaxsched.CosineAnnealingLR(0.1, T_max=5, eta_min=0.01),
    jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=3, T_mult=2),
    jaxsched.CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3),
    jaxsched.OneCycleLR(max_lr=0.1, total_steps=15),
    jaxsched.SWALR(0.1, swa_lr=0.01, anneal_epochs=5),
    jaxsched.SequentialLR([jaxsched.LinearLR(0.1, start_factor=0.1, total_iters=3),
                           jaxsched.ExponentialLR(0.1, gamma=0.8)], milestones=[3]),
    jaxsched.ChainedScheduler([jaxsched.ConstantLR(0.1, factor=0.5, total_iters=3),
                               jaxsched.ExponentialLR(0.1, gamma=0.9)]),
]


def test_covers_every_scheduler():
    assert {type(s).__name__ for s in ONE_PER_SCHEDULER} == set(jaxsched.SCHEDULES)


@pytest.mark.parametrize("s", ONE_PER_SCHEDULER, ids=lambda s: type(s).__name__)
def test_flax_training_applies_torchs_lr(s):
    n = 14
    factory = optax.adam if isinstance(s, jaxsched.CyclicLR) else optax.sgd
    lrs, moms, loss = train(s, n, factory)
    ref, ref_mom = torch_trajectory(s, n, optimizer="adam" if factory is optax.adam else "sgd")
    assert np.max(np.abs(lrs - ref[:n, 0])) <= 1e-6 * np.max(np.abs(ref)), (s, lrs, ref[:n, 0])
    if ref_mom is not None:
        assert np.max(np.abs(moms - ref_mom[:n, 0])) <= 1e-6, (s, moms, ref_mom[:n, 0])
    assert np.isfinite(loss)


def test_flax_training_with_plateau_on_validation_loss():
    """ReduceLROnPlateau inside the optimizer: the loss of each update is the metric (torch: step(loss))."""
    x = jax.random.normal(jax.random.key(0), (64, 4))
    y = jnp.sin(x.sum(axis=1, keepdims=True))
    model = MLP()
    plateau = jaxsched.ReduceLROnPlateau(0.5, patience=1, factor=0.5, threshold=0.05)
    tx = jaxsched.optim.scheduled(optax.sgd, plateau)
    state = train_state.TrainState.create(apply_fn=model.apply, params=model.init(jax.random.key(1), x), tx=tx)

    @jax.jit
    def train_step(state):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((state.apply_fn(p, x) - y) ** 2))(state.params)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params, value=loss)
        return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                             opt_state=opt_state), loss

    lrs, losses = [], []
    for _ in range(30):
        state, loss = train_step(state)
        lrs.append(float(state.opt_state.hyperparams["learning_rate"]))
        losses.append(float(loss))
    q = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([q], lr=0.5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5, threshold=0.05)
    ref = []
    for v in losses:
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(v)
    np.testing.assert_allclose(lrs, ref, rtol=1e-6)
    assert min(ref) < 0.5
