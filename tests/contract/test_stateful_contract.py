"""The stateful-schedule contract, over an example of every registered :class:`jaxsched.StatefulSchedule` class.

optax's stateful-schedule protocol (``init()``, ``update(state, **metrics)``, ``__call__(state)``) under
``jax.jit``, in ``lax.scan`` and vmapped over independent runs; the state through orbax and
``flax.serialization``; the schedule inside ``jaxsched.optim.scheduled`` and ``jaxsched.optim.grouped``; value
semantics (equality, hashing, repr, JSON config); and the refusal where only a schedule of the step works. The
classes come from the registry: a new StatefulSchedule without an example in ``tests/strategies.py``
(``stateful_examples()``) fails :func:`test_every_registered_stateful_schedule_has_an_example`.
"""

from __future__ import annotations

import dataclasses
import json

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import jaxsched
from tests.strategies import has_callable, missing_examples, registered, stateful_examples, stateful_metrics

EXAMPLES = stateful_examples()
#: Examples that also run in the fast tier (``pytest -m "not slow"``); the rest are slow.
FAST = frozenset({"ReduceLROnPlateau", "Running-groups", "GreedyLR-groups"})
METRICS = stateful_metrics(30)
N = len(METRICS)


def _params(pairs):
    return [pytest.param(n, s, id=n, marks=() if n in FAST else pytest.mark.slow) for n, s in pairs]


def _kw(s, metric):
    """The keyword arguments of one ``update``: the metric for a metric-driven schedule, nothing otherwise."""
    return {"value": metric} if s.metric_driven else {}


def _shape(s):
    return () if s.num_groups is None else (s.num_groups,)


def _eager(s, metrics=METRICS):
    """``s(state)`` before each update and after the last one, stepping in Python: shape ``(n + 1,) + groups``."""
    state = s.init()
    out = [np.asarray(s(state))]
    for m in metrics:
        state = s.update(state, **_kw(s, m))
        out.append(np.asarray(s(state)))
    return np.stack(out)


def _scan(s, metrics):
    """The same trajectory inside one ``lax.scan`` (metrics a float array of shape ``(n,)``)."""

    def body(state, m):
        state = s.update(state, **_kw(s, m))
        return state, s(state)

    state0 = s.init()
    _, lrs = jax.lax.scan(body, state0, metrics)
    return jnp.concatenate([s(state0)[None], lrs])


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7 * np.max(np.abs(want)))


def test_every_registered_stateful_schedule_has_an_example():
    classes = registered(jaxsched.StatefulSchedule)
    assert len(classes) >= 4  # ReduceLROnPlateau, Running, GreedyLR, Accumulate: the registry is really read
    missing = missing_examples().get("stateful_examples()", [])
    assert not missing, f"give each a >>> docstring example (or a strategies.stateful_examples() entry): {missing}"
    assert {type(s) for _, s in EXAMPLES} <= set(classes)
    assert {type(s) for _, s in EXAMPLES if s.num_groups} == {type(s) for _, s in EXAMPLES} - {
        jaxsched.optim.Accumulate}  # every class with parameter groups too (Accumulate groups as its plateau)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_is_optax_stateful_schedule(name, s):
    """optax recognises it structurally (its runtime-checkable protocol), as inject_hyperparams does."""
    assert isinstance(s, optax.schedules.StatefulSchedule)
    assert isinstance(s, jaxsched.StatefulSchedule) and not isinstance(s, jaxsched.Schedule)
    assert isinstance(s.metric_driven, bool)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_the_lr_moves_on_the_metric_curve(name, s):
    """The examples are not inert: the LR changes over the run, so the comparisons below can fail."""
    lrs = _eager(s)
    assert lrs.shape == (N + 1,) + _shape(s)
    assert np.all(np.isfinite(lrs))
    assert len(np.unique(np.round(lrs, 9), axis=0)) > 1


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_jit(name, s):
    update, call = jax.jit(s.update), jax.jit(s.__call__)
    state = jax.jit(s.init)()
    got = [np.asarray(call(state))]
    for m in METRICS:
        state = update(state, **_kw(s, jnp.asarray(m, jnp.float32)))
        got.append(np.asarray(call(state)))
    _close(np.stack(got), _eager(s))


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_lax_scan(name, s):
    got = jax.jit(lambda ms: _scan(s, ms))(jnp.asarray(METRICS, jnp.float32))
    _close(got, _eager(s))


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_vmap_over_runs(name, s):
    """Independent runs side by side (one metric curve each): each equals its own run."""
    runs = [METRICS, METRICS[::-1], [2 * m for m in METRICS]]
    got = jax.jit(jax.vmap(lambda ms: _scan(s, ms)))(jnp.asarray(runs, jnp.float32))
    assert got.shape == (len(runs), N + 1) + _shape(s)
    for r, metrics in enumerate(runs):
        _close(got[r], _eager(s, metrics))


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_strict_dtype_promotion_and_x64(name, s):
    with jax.numpy_dtype_promotion("strict"):
        lrs = jax.jit(lambda ms: _scan(s, ms))(jnp.asarray(METRICS, jnp.float32))
    assert lrs.dtype == jnp.float32
    with jax.enable_x64(True), jax.numpy_dtype_promotion("strict"):
        lrs64 = jax.jit(lambda ms: _scan(s, ms))(jnp.asarray(METRICS, jnp.float64))
        assert lrs64.dtype == jnp.float64
    _close(lrs, np.asarray(lrs64))


def _state_after(s, k):
    state = s.init()
    for m in METRICS[:k]:
        state = s.update(state, **_kw(s, m))
    return state


def _resume(s, state, k):
    out = []
    for m in METRICS[k:]:
        state = s.update(state, **_kw(s, m))
        out.append(np.asarray(s(state)))
    return np.stack(out)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_orbax_round_trip(name, s, tmp_path):
    k = N // 2
    state = _state_after(s, k)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "state", state)
    ckpt.wait_until_finished()
    back = ckpt.restore(tmp_path / "state", s.init())
    assert type(back) is type(state)
    jax.tree.map(np.testing.assert_array_equal, back, state)
    np.testing.assert_array_equal(_resume(s, back, k), _eager(s)[k + 1:])


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_flax_serialization_round_trip(name, s):
    k = N // 2
    state = _state_after(s, k)
    back = flax.serialization.from_bytes(s.init(), flax.serialization.to_bytes(state))
    assert type(back) is type(state)
    jax.tree.map(np.testing.assert_array_equal, back, state)
    np.testing.assert_array_equal(_resume(s, back, k), _eager(s)[k + 1:])


def _applied(opt, params, metrics, s):
    """The LR each update applied (grad 1, plain SGD: the update is minus the LR), one row per update."""
    grads = jax.tree.map(jnp.ones_like, params)

    def body(state, m):
        updates, state = opt.update(grads, state, params, **_kw(s, m))
        return state, jnp.stack([-leaf.ravel()[0] for leaf in jax.tree.leaves(updates)])

    _, rows = jax.lax.scan(body, opt.init(params), jnp.asarray(metrics, jnp.float32))
    return rows


SCALAR = [(n, s) for n, s in EXAMPLES if s.num_groups is None]
GROUPED = [(n, s) for n, s in EXAMPLES if s.num_groups]


@pytest.mark.parametrize("name,s", _params(SCALAR))
def test_inside_optim_scheduled(name, s):
    """``optim.scheduled``: update ``k`` applies ``s(state_k)``, the LR before the ``k``-th metric is taken in
    (optax's inject_hyperparams reads the schedule, then steps it)."""
    params = jnp.zeros(())
    got = np.asarray(jax.jit(lambda: _applied(jaxsched.optim.scheduled(optax.sgd, s), params, METRICS, s))())
    _close(got[:, 0], _eager(s)[:N])


@pytest.mark.parametrize("name,s", _params(GROUPED))
def test_inside_optim_grouped(name, s):
    """``optim.grouped``: group ``i`` (a labelled part of the params) applies the schedule's LR ``i``."""
    G = s.num_groups
    params = {f"g{i}": jnp.zeros(1) for i in range(G)}
    labels = {f"g{i}": i for i in range(G)}
    got = np.asarray(jax.jit(lambda: _applied(jaxsched.optim.grouped(optax.sgd, s, labels), params, METRICS, s))())
    want = _eager(s)
    _close(got, want[:N])  # leaves in key order g0, g1, ...: one column per group


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_equality_hash_and_config(name, s):
    again = dataclasses.replace(s)
    assert again is not s and again == s and hash(again) == hash(s)
    other = jax.tree.map(lambda x: x * 0.5, s)
    assert other != s
    if has_callable(s):
        with pytest.raises(TypeError, match="callable"):
            s.to_config()
        return
    back = jaxsched.from_config(json.dumps(s.to_config()))
    assert back == s and type(back) is type(s)
    assert jaxsched.parse_spec(repr(s)) == s


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_refused_where_a_schedule_of_the_step_is_needed(name, s):
    """Composites and step adapters need ``s(step)``: a StatefulSchedule is refused at construction, by type."""
    builders = {
        "Running": lambda: jaxsched.Running(s),  # type: ignore[arg-type]
        "PerEpoch": lambda: jaxsched.PerEpoch(s, steps_per_epoch=10),  # type: ignore[arg-type]
        "Offset": lambda: jaxsched.Offset(s, start=3),  # type: ignore[arg-type]
        "LinearWarmup": lambda: jaxsched.LinearWarmup(s, num_warmup_steps=3),  # type: ignore[arg-type]
        "SequentialLR": lambda: jaxsched.SequentialLR([jaxsched.StepLR(0.1, 3), s], milestones=[5]),  # type: ignore[list-item]
        "ChainedScheduler": lambda: jaxsched.ChainedScheduler([s]),  # type: ignore[list-item]
    }
    for owner, build in builders.items():
        with pytest.raises((TypeError, ValueError)) as info:
            build()
        msg = str(info.value)
        assert owner in msg and type(s).__name__ in msg, msg
