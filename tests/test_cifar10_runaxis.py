"""Runs along a leading axis (benchmarks/cifar10/run_axis.py): jax.vmap of the one-run step and the grouped
network (runs folded into channels, grouped convolutions) give the runs' sequential results."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.cifar10 import run_axis, train

pytestmark = pytest.mark.slow  # compiles and trains three formulations of a network (minutes on 2 CPU cores)


@pytest.mark.parametrize("preset_name", ["smoke"])
def test_batched_formulations_equal_the_sequential_runs(preset_name):
    preset = train.PRESETS[preset_name]
    model = train.build_model(preset, dtype=jnp.float32)
    tx = train.make_tx(preset)
    x, y, lrs, moms = run_axis.make_inputs(3, 8)  # three runs, each its own data, LR and seed
    got = {}
    for name, fn in run_axis.step_fns(model, tx).items():
        state = run_axis.init_stacked(model, tx, 3)
        for _ in range(2):
            state, losses = fn(state, x, y, lrs, moms)
        got[name] = (np.concatenate([np.ravel(a) for a in jax.tree.leaves(state)]), np.asarray(losses))
    seq_state, seq_losses = got["sequential"]
    assert len(set(np.round(seq_losses, 4))) == 3  # the runs really differ
    for name in ("vmap", "grouped"):
        state, losses = got[name]
        # the same arithmetic up to float32 summation order (measured 2026-11-30: 1e-6 after two steps)
        np.testing.assert_allclose(losses, seq_losses, rtol=1e-5)
        np.testing.assert_allclose(state, seq_state, rtol=1e-4, atol=1e-5)


def test_grouped_forward_is_the_flax_model_per_run():
    preset = train.dataclasses.replace(train.PRESETS["smoke"], model="resnet18", widths=(4, 8, 8, 8))
    model = train.build_model(preset, dtype=jnp.float32)  # strided stages (no max-pool), 1x1 shortcuts
    tx = train.make_tx(preset)
    state = run_axis.init_stacked(model, tx, 2)
    x, _, _, _ = run_axis.make_inputs(2, 4)
    logits, stats = run_axis.grouped_forward(model, state["params"], state["batch_stats"], x)
    for r in range(2):
        want, upd = model.apply({"params": run_axis.unstack(state["params"], r),
                                 "batch_stats": run_axis.unstack(state["batch_stats"], r)}, x[r], train=True,
                                mutable=["batch_stats"])
        np.testing.assert_allclose(logits[r], want, rtol=1e-4, atol=1e-5)
        got_stats = jax.tree.leaves(run_axis.unstack(stats, r))
        for a, b in zip(got_stats, jax.tree.leaves(upd["batch_stats"]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
