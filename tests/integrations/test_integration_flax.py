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


def test_value_nothing_reads_is_warned_about():
    """``value=`` with a plain ``optax.adam`` (extra arguments accepted, none read) would vanish silently."""
    state = TrainState.create(apply_fn=None, params=jnp.ones(2), tx=optax.adam(0.1))
    with pytest.warns(UserWarning, match=r"value= goes to tx.update, but nothing in tx reads a metric"):
        state = state.apply_gradients(grads=jnp.ones(2), value=1.0)
    assert int(state.step) == 1
    # where a plateau reads it (jaxsched's, in a chain, or optax.contrib's), no warning
    import warnings

    import jaxsched.flax as jflax

    plateau = jaxsched.ReduceLROnPlateau(0.1, patience=1)
    readers = [optim.scheduled(optax.sgd, plateau),
               optax.chain(optax.clip(1.0), optim.scheduled(optax.adam, plateau)),
               optax.chain(optax.sgd(0.1), optax.contrib.reduce_on_plateau())]
    for tx in readers:
        st = TrainState.create(apply_fn=None, params=jnp.ones(2), tx=tx)
        assert jflax.reads_a_metric(st.opt_state)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            st.apply_gradients(grads=jnp.ones(2), value=1.0)
    assert not jflax.reads_a_metric(optim.scheduled(optax.sgd, jaxsched.StepLR(0.1, step_size=2)).init(jnp.ones(2)))


def test_a_missing_extra_is_named(monkeypatch):
    import importlib
    import sys

    for module, extra_name in [("flax", "jaxsched.flax needs flax: pip install 'jaxsched[flax]'"),
                               ("checkpoint", "jaxsched.checkpoint needs orbax-checkpoint: pip install "
                                              "'jaxsched[flax]'")]:
        with monkeypatch.context() as m:
            top = "flax" if module == "flax" else "orbax"
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")] + [top]:
                m.setitem(sys.modules, name, None)   # as if not installed
            m.delitem(sys.modules, f"jaxsched.{module}", raising=False)
            if module in vars(jaxsched):  # (getattr would import it: the attribute is lazy)
                m.delattr(jaxsched, module)
            with pytest.raises(ModuleNotFoundError) as err:
                importlib.import_module(f"jaxsched.{module}")
            assert str(err.value) == extra_name
            with pytest.raises(ModuleNotFoundError, match=r"pip install 'jaxsched\[flax\]'"):
                getattr(jaxsched, module)


@pytest.mark.slow  # a fresh interpreter importing jax, flax and orbax
def test_submodules_are_attributes_imported_on_first_use():
    import subprocess
    import sys

    code = ("import sys, jaxsched; heavy = ('flax', 'orbax', 'matplotlib', 'keras', 'torch'); "
            "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]; "
            "assert {'flax', 'checkpoint', 'plot'} <= set(dir(jaxsched)); "
            "assert jaxsched.flax.TrainState and jaxsched.checkpoint.save and jaxsched.plot.load; "
            "assert 'flax' in sys.modules and 'orbax' in sys.modules; "
            "assert 'matplotlib' not in sys.modules  # jaxsched.plot imports it when it draws\n"
            "try:\n    jaxsched.nope\nexcept AttributeError as e:\n    assert 'nope' in str(e)\n"
            "else:\n    raise SystemExit('no AttributeError')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr[-2000:]


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
