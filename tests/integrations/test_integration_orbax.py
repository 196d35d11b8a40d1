"""orbax: ``jaxsched.checkpoint`` saves the schedule's config beside the state, resumes exactly, and refuses to
restore into an optimizer built with a different schedule (which plain orbax accepts silently)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import jaxsched
from jaxsched import checkpoint, optim
from jaxsched.optim import get_lr


def _setup(schedule):
    opt = optim.scheduled(optax.sgd, schedule, momentum=0.9)
    params = {"w": jnp.ones(3)}
    return opt, {"params": params, "opt_state": opt.init(params)}


def _train(opt, state, n):
    @jax.jit
    def step(state):
        grads = jax.tree_util.tree_map(lambda p: 0.1 * p, state["params"])
        updates, opt_state = opt.update(grads, state["opt_state"], state["params"])
        return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state}

    lrs = []
    for _ in range(n):
        state = step(state)
        lrs.append(float(get_lr(state["opt_state"])))
    return state, lrs


def test_resume_is_exact_and_a_different_schedule_is_refused(tmp_path):
    s = jaxsched.CosineAnnealingLR(0.1, T_max=10)
    opt, state = _setup(s)
    _, straight = _train(opt, state, 10)
    half, first = _train(opt, state, 4)
    checkpoint.save(tmp_path / "ckpt", half, s)

    opt2, fresh = _setup(jaxsched.CosineAnnealingLR(0.1, T_max=10))       # an equal schedule, rebuilt
    resumed, second = _train(opt2, checkpoint.restore(tmp_path / "ckpt", fresh, s), 6)
    assert first + second == straight                                      # bit for bit

    other = jaxsched.CosineAnnealingLR(0.1, T_max=20)
    _, fresh_other = _setup(other)
    with pytest.raises(checkpoint.ScheduleMismatchError, match=r"args\.T_max: 10 saved, 20 now") as err:
        checkpoint.restore(tmp_path / "ckpt", fresh_other, other)
    assert "jaxsched.from_config" in str(err.value)
    with pytest.raises(checkpoint.ScheduleMismatchError, match="name: 'CosineAnnealingLR' saved, 'StepLR' now"):
        checkpoint.restore(tmp_path / "ckpt", fresh_other, jaxsched.StepLR(0.1, step_size=10))
    assert checkpoint.load_schedule_config(tmp_path / "ckpt") == s.to_config()


def test_plain_orbax_restores_into_another_schedule_silently(tmp_path):
    s, other = jaxsched.CosineAnnealingLR(0.1, T_max=10), jaxsched.CosineAnnealingLR(0.1, T_max=20)
    opt, state = _setup(s)
    half, _ = _train(opt, state, 4)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "plain", half)
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(tmp_path / "plain", _setup(other)[1])      # no complaint
    _, lrs = _train(optim.scheduled(optax.sgd, other, momentum=0.9), restored, 1)
    assert lrs[0] == pytest.approx(float(other(4)), rel=1e-6) and abs(lrs[0] - float(s(4))) > 1e-3


def test_checkpoint_manager_with_plateau_and_accumulate(tmp_path):
    plateau = optim.accumulate(jaxsched.ReduceLROnPlateau(0.1, patience=0, factor=0.5), 2)
    opt = optim.scheduled(optax.sgd, plateau)
    params = jnp.zeros(1)
    st = opt.init(params)
    for loss in [1.0, 1.0, 2.0, 2.0]:
        _, st = opt.update(jnp.ones(1), st, params, value=loss)
    options = ocp.CheckpointManagerOptions(max_to_keep=2)
    with ocp.CheckpointManager(tmp_path / "mgr", options=options) as mgr:
        mgr.save(4, args=checkpoint.save_args(st, plateau))
        mgr.wait_until_finished()
    with ocp.CheckpointManager(tmp_path / "mgr", options=options) as mgr:
        out = mgr.restore(mgr.latest_step(), args=checkpoint.restore_args(opt.init(params)))
    checkpoint.check_schedule(out.schedule, plateau)
    assert np.array_equal(np.asarray(get_lr(out.state)), np.asarray(get_lr(st)))
    with pytest.raises(checkpoint.ScheduleMismatchError, match="accumulation_size: 2 saved, 3 now"):
        checkpoint.check_schedule(out.schedule, optim.accumulate(plateau.plateau, 3))
    with pytest.raises(checkpoint.ScheduleMismatchError, match="patience: 0 saved, 1 now"):
        checkpoint.check_schedule(out.schedule, optim.accumulate(jaxsched.ReduceLROnPlateau(0.1, patience=1,
                                                                                           factor=0.5), 2))


def test_configs_of_wrappers_and_constants():
    s = jaxsched.StepLR(0.1, step_size=3)
    assert checkpoint.schedule_config(jaxsched.Running(s)) == {"Running": s.to_config()}
    assert checkpoint.schedule_config((0.1, 0.01)) == {"constant": [0.1, 0.01]}
    with pytest.raises(TypeError, match="has no JSON config"):
        checkpoint.schedule_config(jaxsched.LambdaLR(0.1, lr_lambda=lambda e: 0.5 ** e))
    with pytest.raises(TypeError, match="schedule must be"):
        checkpoint.schedule_config(object())
