"""jaxsched.lr_find on problems whose good LR range is known, and its two suggestion rules."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsched
from jaxsched._lr_find import steepest, valley


def regression(seed=0, n=64, d=6):
    """Least squares with a known curvature L: full-batch gradient descent diverges exactly above 2 / L."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.geomspace(3.0, 0.1, d)
    y = x @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    L = float(np.linalg.eigvalsh(x.T @ x / n).max())
    loss = lambda w, b: 0.5 * jnp.mean((b[0] @ w - b[1]) ** 2)  # noqa: E731
    return loss, (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)), L


@pytest.mark.parametrize("seed", [0, 1])
def test_divergence_and_suggestions_bracket_the_stable_range(seed):
    loss, batch, L = regression(seed)
    params = jnp.zeros(batch[0].shape[1])
    r = jaxsched.lr_find(loss, params, lambda lr: optax.sgd(lr), itertools.repeat(batch),
                         start_lr=1e-4 / L, end_lr=1e3 / L, num_steps=120)
    assert r.stop_reason == "diverged"
    assert r.num_steps < 120
    # below 2 / L gradient descent on a quadratic only ever lowers the loss: no stop before it
    assert r.lrs[-1] > 2 / L
    assert r.lrs[-1] < 40 / L, f"stopped late: {r.lrs[-1] * L:.3g} / L"
    # both suggestions are stable LRs that train, not the tiny start of the ramp
    assert 1e-2 / L < r.valley < 2 / L
    assert 1e-2 / L < r.steep < 2 / L
    np.testing.assert_allclose(r.lrs, [float(jaxsched.ExponentialLR(1e-4 / L, gamma=1e7 ** (1 / 119))(i))
                                       for i in range(r.num_steps)], rtol=1e-6)
    # smoothing is the debiased EMA of the recorded losses
    avg, want = 0.0, []
    for i, v in enumerate(r.losses):
        avg = 0.98 * avg + 0.02 * v
        want.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(r.smoothed, want, rtol=1e-12)


def test_caller_params_untouched_and_any_optimizer_and_state():
    loss, batch, L = regression(2)
    params = {"w": jnp.zeros(batch[0].shape[1]), "b": jnp.zeros(())}
    before = jax.tree_util.tree_map(np.asarray, params)

    def loss_fn(p, count, b):  # a non-differentiated state threaded through, like Flax batch_stats
        return 0.5 * jnp.mean((b[0] @ p["w"] + p["b"] - b[1]) ** 2), count + 1

    r = jaxsched.lr_find(loss_fn, params, lambda lr: optax.adam(lr), lambda i: batch, state=jnp.zeros((), jnp.int32),
                         start_lr=1e-5, end_lr=10.0, num_steps=80)
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.tree_util.tree_map(np.asarray, params), before)
    assert r.losses[0] == pytest.approx(float(0.5 * jnp.mean(batch[1] ** 2)), rel=1e-5)
    assert r.valley is not None and r.steep is not None
    assert r.smoothed.min() < 0.75 * r.smoothed[0]


def test_out_of_batches_stops_cleanly():
    loss, batch, _ = regression(3)
    r = jaxsched.lr_find(loss, jnp.zeros(6), lambda lr: optax.sgd(lr), [batch] * 15, start_lr=1e-5, end_lr=1e-3,
                         num_steps=50)
    assert r.stop_reason == "out of batches" and r.num_steps == 15


def test_steepest_and_valley_rules_on_known_curves():
    lrs = np.geomspace(1e-4, 1.0, 101)
    x = np.log10(lrs)
    curve = 2.0 - np.tanh(2.0 * (x + 2.0))  # falls fastest at lr = 1e-2
    assert lrs[steepest(lrs, curve)] == pytest.approx(1e-2, rel=0.1)
    # rising until index 19, falling to index 59, rising again: the valley is the fall's middle, index 39
    losses = np.concatenate([5.0 + 0.001 * np.arange(20), np.linspace(5.0, 1.0, 41)[1:], 1.0 + np.arange(1, 41) * 0.1])
    assert valley(losses) == 39
    # noise in the fall does not move it much: the longest decreasing subsequence skips the bumps
    bumpy = losses + np.where(np.arange(100) % 7 == 3, 0.15, 0.0)
    assert valley(bumpy) == pytest.approx(39, abs=3)
    assert valley([]) is None and steepest([1.0], [1.0]) is None


def test_plot_writes_a_png(tmp_path):
    loss, batch, L = regression(0)
    r = jaxsched.lr_find(loss, jnp.zeros(6), lambda lr: optax.sgd(lr), itertools.repeat(batch),
                         start_lr=1e-3 / L, end_lr=1e2 / L, num_steps=60)
    fig = r.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 5000
    assert fig.axes[0].get_xscale() == "log"
    import json
    d = json.loads(json.dumps(r.to_dict()))
    assert d["valley"] == r.valley and len(d["lrs"]) == r.num_steps


@pytest.mark.parametrize("kw, match", [
    (dict(start_lr=1.0, end_lr=0.1), "start_lr=1.0, end_lr=0.1"),
    (dict(start_lr=0.0), "start_lr=0.0"),
    (dict(num_steps=1), "num_steps=1"),
    (dict(beta=1.0), "beta=1.0"),
    (dict(diverge=1.0), "diverge=1.0"),
])
def test_bad_arguments_are_named(kw, match):
    loss, batch, _ = regression(0)
    with pytest.raises(ValueError, match=match):
        jaxsched.lr_find(loss, jnp.zeros(6), lambda lr: optax.sgd(lr), [batch], **kw)
    with pytest.raises(TypeError, match="factory"):
        jaxsched.lr_find(loss, jnp.zeros(6), optax.sgd(0.1), [batch])
