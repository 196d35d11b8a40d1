"""Runs along a leading axis: the formulations of benchmarks/cifar10/run_axis.py (the one-run step unrolled
per run, jax.vmap of it, the grouped network with runs folded into channels) give the runs' sequential
results, and so does the training command's Run.train_together, resumes included."""

from __future__ import annotations

import json

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
    for name in ("unrolled", "vmap", "grouped"):
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


# ----------------------------------------------------------------------------------------------------------
# the training command's runs in one program (Run.train_together) against one run at a time (Run.train)

KEYS = ("train_loss", "test_loss", "lr", "lr_last", "momentum", "train_acc", "test_acc")


def _runs(run):
    S = run.steps_per_epoch
    E = run.preset.epochs
    # a per-epoch schedule, the plateau (its decisions per run, on each run's own test loss) and a per-step
    # schedule that cycles momentum, on two seeds
    return [(train.parse_schedule("StepLR", E, S), 0), (train.parse_schedule("ReduceLROnPlateau", E, S), 0),
            (train.parse_schedule("OneCycleLR", E, S), 1)]


def _table(records):
    return np.array([[[r[k] for k in KEYS] for r in recs] for recs in records])


@pytest.fixture(scope="module")
def smoke_runs():
    from test_cifar10 import fake_arrays

    preset = train.dataclasses.replace(train.PRESETS["smoke"], epochs=2)
    runs = {loop: train.Run(preset, fake_arrays(), loop=loop) for loop in ("host", "scan")}
    sequential = {loop: [run.train(p, progress=False, seed=s) for p, s in _runs(run)] for loop, run in runs.items()}
    return runs, sequential


@pytest.mark.parametrize("runs_as, loop", [("unrolled", "host"), ("unrolled", "scan"), ("vmap", "scan"),
                                           ("grouped", "host")])
def test_train_together_equals_one_run_at_a_time(smoke_runs, runs_as, loop):
    runs, sequential = smoke_runs
    run = runs[loop]
    together = run.train_together(_runs(run), progress=False, runs_as=runs_as)
    assert run.trained_epochs == 6
    assert [[r["epoch"] for r in recs] for recs in together] == [[1, 2]] * 3
    assert all(r["runs_together"] == 3 and r["runs_as"] == runs_as for recs in together for r in recs)
    got, want = _table(together), _table(sequential[loop])
    assert len({round(float(x), 4) for x in want[:, -1, 0]}) == 3  # the runs really differ
    # LR and momentum exactly; losses to float32 noise (measured 2026-12-01: unrolled 1.4e-7 relative,
    # vmap and grouped 2.5e-3 on the test loss, where a few max-pool/ReLU decisions flip)
    np.testing.assert_array_equal(got[..., 2:5], want[..., 2:5])
    np.testing.assert_allclose(got[..., :2], want[..., :2], rtol=1e-5 if runs_as == "unrolled" else 1e-2)
    np.testing.assert_allclose(got[..., 5:], want[..., 5:], atol=1e-6 if runs_as == "unrolled" else 0.05)


def test_train_together_resumes_runs_left_at_different_epochs(tmp_path):
    """A kill between two runs' checkpoints leaves them an epoch apart: the laggards catch up one at a time,
    then all continue in one program; every log ends with each epoch once and the uninterrupted records."""
    from test_cifar10 import fake_arrays

    run = train.Run(train.PRESETS["smoke"], fake_arrays(), loop="host")  # 3 epochs
    ref = run.train_together(_runs(run), tmp_path / "ref", progress=False)
    out = tmp_path / "o"
    run.train_together(_runs(run), out, progress=False, until=1)
    assert run.trained_epochs == 3
    plan, seed = _runs(run)[1]
    run.train(plan, out, progress=False, until=2, seed=seed)  # one run ahead of the other two
    done = run.train_together(_runs(run), out, progress=False)
    assert run.trained_epochs == 2 + 3  # two runs catch up one epoch each, then the last epoch of all three
    assert [[r["epoch"] for r in recs] for recs in done] == [[1, 2, 3]] * 3
    np.testing.assert_allclose(_table(done)[..., :2], _table(ref)[..., :2], rtol=1e-5)
    for (p, s), recs in zip(_runs(run), done, strict=True):
        slug = p.slug() + (f"-seed{s}" if s else "")
        assert [json.loads(x) for x in (out / f"{slug}.jsonl").read_text().splitlines()] == recs
    assert run.train_together(_runs(run), out, progress=False) == done and run.trained_epochs == 0
