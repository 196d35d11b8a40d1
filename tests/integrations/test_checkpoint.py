"""Checkpoint and resume: a schedule's JSON config plus the optimizer state (which holds the plateau / Running /
step-count state) through orbax-checkpoint and flax.serialization; the resumed run sees exactly the LRs of an
uninterrupted run."""

from __future__ import annotations

import json

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import jaxsched
from jaxsched import optim

N, CUT = 24, 11
LOSSES = [3.0, 2.0, 2.0, 2.5, 2.0, 2.0, 1.0, 1.2, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
          0.4, 0.4, 0.4, 0.4, 0.4, 0.4]

CONFIGS = {
    "plateau": jaxsched.ReduceLROnPlateau((0.1, 0.05), patience=1, factor=0.5, cooldown=1).to_config(),
    "onecycle": jaxsched.OneCycleLR(max_lr=0.3, total_steps=N).to_config(),
    "running-chained": jaxsched.ChainedScheduler([jaxsched.CosineAnnealingLR(0.1, T_max=5, eta_min=0.01),
                                                  jaxsched.StepLR(0.1, step_size=4, gamma=0.5)]).to_config(),
    "per-epoch": jaxsched.PerEpoch(jaxsched.ExponentialLR(0.1, gamma=0.8), steps_per_epoch=3).to_config(),
}


def build(config: dict):
    """The optimizer for a schedule config (what a training script does at start and at resume)."""
    s = jaxsched.from_config(json.dumps(config))
    params = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
    if isinstance(s, jaxsched.ReduceLROnPlateau):
        return optim.grouped(optax.sgd, s, {"a": 0, "b": 1}), params
    if isinstance(s, jaxsched.ChainedScheduler):
        s = jaxsched.Running(s)
    return optim.scheduled(optax.sgd, s), params


def _plain_lrs(opt, params, st, ks):
    """Run updates ``ks`` (indices into LOSSES, the metric for the plateau); the applied updates and the state."""
    step = jax.jit(lambda st, v: opt.update(jax.tree_util.tree_map(jnp.ones_like, params), st, params, value=v))
    out = []
    for k in ks:
        upd, st = step(st, LOSSES[k])
        out.append(np.asarray(jax.tree_util.tree_leaves(upd)[0]).ravel()[0])
    return out, st


@pytest.mark.parametrize("name", list(CONFIGS))
def test_orbax_resume_equals_uninterrupted(name, tmp_path):
    config = CONFIGS[name]
    opt, params = build(config)
    full, _ = _plain_lrs(opt, params, opt.init(params), range(N))
    first, st = _plain_lrs(opt, params, opt.init(params), range(CUT))
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "state", {"params": params, "opt_state": st})
    ckpt.wait_until_finished()
    (tmp_path / "schedule.json").write_text(json.dumps(config))
    del opt, st
    # a fresh process would do exactly this
    opt2, params2 = build(json.loads((tmp_path / "schedule.json").read_text()))
    target = {"params": params2, "opt_state": opt2.init(params2)}
    restored = ckpt.restore(tmp_path / "state", target)
    rest, _ = _plain_lrs(opt2, restored["params"], restored["opt_state"], range(CUT, N))
    np.testing.assert_array_equal(np.asarray(first + rest), np.asarray(full))
    assert len(set(np.round(full, 12))) > 1  # the LR does change across the cut


@pytest.mark.parametrize("name", list(CONFIGS))
def test_flax_serialization_resume_equals_uninterrupted(name):
    config = CONFIGS[name]
    opt, params = build(config)
    full, _ = _plain_lrs(opt, params, opt.init(params), range(N))
    first, st = _plain_lrs(opt, params, opt.init(params), range(CUT))
    blob = flax.serialization.to_bytes(st)
    opt2, params2 = build(config)
    st2 = flax.serialization.from_bytes(opt2.init(params2), blob)
    rest, _ = _plain_lrs(opt2, params2, st2, range(CUT, N))
    np.testing.assert_array_equal(np.asarray(first + rest), np.asarray(full))


def test_plateau_state_alone_round_trips():
    p = jaxsched.ReduceLROnPlateau(0.1, mode="max", patience=0, factor=0.5)
    st = p.init()
    for v in [1.0, 0.5, float("nan")]:
        st = p.update(st, value=v)
    d = flax.serialization.to_state_dict(st)
    assert set(d) == {"best", "num_bad_epochs", "cooldown_counter", "last_epoch", "lr"}
    back = flax.serialization.from_state_dict(p.init(), d)
    assert isinstance(back, jaxsched.PlateauState)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back, st)
    msg = flax.serialization.msgpack_restore(flax.serialization.msgpack_serialize(d))
    back2 = flax.serialization.from_state_dict(p.init(), msg)
    assert float(back2.lr) == float(st.lr) == pytest.approx(0.025) and float(back2.best) == 1.0  # two cuts
    assert jaxsched.from_config(json.loads(json.dumps(p.to_config()))) == p


def test_configs_round_trip_through_json():
    for config in CONFIGS.values():
        s = jaxsched.from_config(json.dumps(config))
        assert s.to_config() == config
