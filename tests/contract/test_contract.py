"""The step-schedule contract, over an example of every registered :class:`jaxsched.Schedule` class.

jit, vmap over steps, vmap over a float hyperparameter, value equality and hashing (no retrace for an equal
schedule), repr as the constructor call, JSON config round trip, use inside optax, strict dtype promotion, the
output dtype with and without x64, and the running form. The classes come from the registry (every public
value class registers itself): a new class without an example in ``tests/strategies.py`` fails
:func:`test_every_registered_step_schedule_has_an_example`.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsched
from jaxsched._value import CATALOGUE
from tests.strategies import examples, has_callable, missing_examples, registered

EXAMPLES = examples()
#: Examples that also run in the fast tier (``pytest -m "not slow"``): one of each kind; the rest are slow.
FAST = frozenset({"StepLR", "MultiplicativeLR-const", "OneCycleLR-groups", "SequentialLR-lambda",
                  "ChainedScheduler", "CyclicLR-scale_fn", "hf.CosineScheduleWithWarmup", "LinearWarmup-groups"})
PLAIN = [(n, s) for n, s in EXAMPLES if not has_callable(s)]
WITH_CALLABLE = [(n, s) for n, s in EXAMPLES if has_callable(s)]
K = 40  # steps checked per schedule (OneCycleLR examples have total_steps=100)


def _params(pairs):
    return [pytest.param(n, s, id=n, marks=() if n in FAST else pytest.mark.slow) for n, s in pairs]


def _shape(s):
    return () if s.num_groups is None else (s.num_groups,)


_EAGER: dict[tuple, np.ndarray] = {}


def _eager(s, steps):
    """``s(k)`` called eagerly for each ``k``: the reference the compiled forms are checked against. Computed once
    per schedule (a value: equal schedules hash alike), steps, dtype-promotion mode and precision, and shared by
    the tests of one example; a copy each time."""
    steps = tuple(int(k) for k in steps)
    key = (s, steps, jax.config.jax_numpy_dtype_promotion, jax.config.jax_enable_x64)
    try:
        hash(key)
    except TypeError:
        return np.stack([np.asarray(s(k)) for k in steps])
    if key not in _EAGER:
        _EAGER[key] = np.stack([np.asarray(s(k)) for k in steps])
    return _EAGER[key].copy()


def _close(got, want, rtol=1e-6):
    """float32 agreement: XLA may rewrite x / c as x * (1 / c) under jit, an ulp apart from eager."""
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=rtol * np.max(np.abs(want)) + 1e-30)


@pytest.fixture(params=["strict", "standard"])
def promotion(request):
    """Every contract test runs under strict dtype promotion too (catches silent float64/int32 promotion)."""
    with jax.numpy_dtype_promotion(request.param):
        yield request.param


def test_fast_examples_exist():
    assert FAST <= {n for n, _ in EXAMPLES}


def test_every_registered_step_schedule_has_an_example():
    """A class that registers itself (subclassing Schedule) is checked here only through an example."""
    classes = registered(jaxsched.Schedule)
    assert len(classes) >= 30  # torch's 15, HF transformers' 10, the adapters: the registry is really read
    missing = missing_examples().get("examples()", [])
    assert not missing, f"give each a >>> docstring example (or an entry in strategies.examples()): {missing}"
    assert {type(s) for _, s in EXAMPLES} <= set(classes)


def test_every_torch_scheduler_has_a_grouped_example():
    """Parameter groups are a torch feature: each catalogued torch step scheduler is checked with groups too."""
    torch_classes = {c for path, c in CATALOGUE.items()
                     if path.startswith("torch.") and issubclass(c, jaxsched.Schedule)}
    grouped = {type(s) for _, s in EXAMPLES if s.num_groups}
    assert torch_classes and torch_classes <= grouped, sorted(c.__name__ for c in torch_classes - grouped)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_jit_and_vmap_over_steps(name, s, promotion):
    steps = np.arange(K)
    eager = _eager(s, steps)
    assert eager.shape == (K,) + _shape(s)
    _close(jax.jit(s)(jnp.asarray(steps)), eager)
    _close(jax.vmap(s)(jnp.asarray(steps)), eager)
    _close(jax.jit(jax.vmap(s))(jnp.asarray(steps)), eager)
    # a traced scalar step, and a 2-d array of steps
    _close(jax.jit(lambda k: s(k))(jnp.int32(7)), eager[7])
    grid = jax.jit(s)(jnp.asarray(steps).reshape(4, 10))
    assert grid.shape == (4, 10) + _shape(s)
    _close(np.asarray(grid).reshape(eager.shape), eager)
    if getattr(s, "cycle_momentum", False):
        mom = np.stack([np.asarray(s.momentum(int(k))) for k in steps])
        _close(jax.jit(s.momentum)(jnp.asarray(steps)), mom)
        assert mom.shape == (K,) + _shape(s)


def _scaled(s, factor):
    """``s`` with every float hyperparameter multiplied by ``factor`` (a pytree map: no validation)."""
    return jax.tree.map(lambda x: x * factor, s)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_vmap_over_a_float_hyperparameter(name, s, promotion):
    other = _scaled(s, 0.9)
    stacked = jax.tree.map(lambda a, b: jnp.stack([jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)]),
                           s, other)
    got = jax.jit(jax.vmap(lambda t: t(jnp.arange(K))))(stacked)
    assert got.shape == (2, K) + _shape(s)
    want = np.stack([_eager(s, range(K)), _eager(other, range(K))])
    # traced float32 leaves (gamma rounded to float32 first) differ from concrete ones by float32 rounding
    _close(got, want, rtol=2e-5)
    assert not np.allclose(want[0], want[1])  # the hyperparameter really changed the schedule


def _rebuilt(s):
    """An equal schedule built again through the constructor (a new object)."""
    return dataclasses.replace(s)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_equality_and_hash(name, s):
    t = _rebuilt(s)
    assert t is not s and t == s and hash(t) == hash(s)
    assert len({s, t}) == 1
    other = _scaled(s, 0.5)
    assert other != s
    assert s != "not a schedule"


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_no_retrace_for_an_equal_schedule_or_new_floats(name, s):
    traces = []

    @jax.jit
    def lr(sched, k):
        traces.append(1)
        return sched(k)

    lr(s, 3)
    lr(_rebuilt(s), 3)
    assert len(traces) == 1, "an equal schedule retraced"
    lr(_scaled(s, 0.5), 3)  # float hyperparameters are leaves: new values, same trace
    assert len(traces) == 1, "a change of float hyperparameters retraced"


def test_retrace_when_static_structure_changes():
    traces = []

    @jax.jit
    def lr(sched, k):
        traces.append(1)
        return sched(k)

    lr(jaxsched.StepLR(0.1, step_size=3), 3)
    lr(jaxsched.StepLR(0.1, step_size=4), 3)  # ints are static: a new trace, the right value
    assert len(traces) == 2
    assert float(lr(jaxsched.StepLR(0.1, step_size=4), 4)) == pytest.approx(0.01)


def _namespace():
    """Every registered class by its Python name: the names a repr is written with."""
    return {cls.__name__: cls for cls in registered(jaxsched.Schedule)}


@pytest.mark.parametrize("name,s", _params(PLAIN))
def test_repr_is_the_constructor_call(name, s):
    text = repr(s)
    assert text.startswith(type(s).__name__ + "(")
    assert eval(text, _namespace()) == s  # the repr of our own schedule
    assert jaxsched.parse_spec(text) == s


@pytest.mark.parametrize("name,s", _params(WITH_CALLABLE))
def test_repr_shows_the_callable(name, s):
    assert repr(s).startswith(type(s).__name__ + "(") and "<function" in repr(s)


@pytest.mark.parametrize("name,s", _params(PLAIN))
def test_config_json_round_trip(name, s):
    text = json.dumps(s.to_config())
    back = jaxsched.from_config(json.loads(text))
    assert back == s and hash(back) == hash(s) and type(back) is type(s)
    assert jaxsched.from_config(text) == s
    np.testing.assert_array_equal(np.asarray(back(jnp.arange(K))), np.asarray(s(jnp.arange(K))))


@pytest.mark.parametrize("name,s", _params(WITH_CALLABLE))
def test_config_of_a_callable_is_a_clear_type_error(name, s):
    with pytest.raises(TypeError) as info:
        s.to_config()
    msg = str(info.value)
    assert "callable" in msg and "JSON" in msg, msg
    assert any(arg in msg for arg in ("lr_lambda", "scale_fn")), msg


def _applied_lrs(tx, s, n):
    """The LR each of ``n`` updates applied (grad = 1, params = 0): ``-update``."""
    params = jnp.zeros(_shape(s) or ())

    def body(state, _):
        updates, state = tx.update(jnp.ones_like(params), state, params)
        return state, (updates, state)

    _, (updates, states) = jax.lax.scan(body, tx.init(params), None, length=n)
    return -updates, states


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_inside_optax_sgd(name, s):
    """optax.sgd(learning_rate=s): update k applies s(k) (torch's LR after k scheduler.step() calls)."""
    got, _ = jax.jit(lambda: _applied_lrs(optax.sgd(learning_rate=s), s, K))()
    _close(got, _eager(s, range(K)))


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_inside_inject_hyperparams(name, s):
    """inject_hyperparams(optax.sgd)(learning_rate=s, momentum=0.9): the LR in the state after update k is s(k)."""
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=s, momentum=0.9)
    first, states = jax.jit(lambda: _applied_lrs(tx, s, K))()
    held = np.asarray(states.hyperparams["learning_rate"])
    want = _eager(s, range(K))
    _close(held, want)
    # with momentum 0.9 and grad 1, update k is lr_k * (1 + 0.9 + ... + 0.9**k): the first one is lr_0
    np.testing.assert_allclose(np.asarray(first[0]), want[0], rtol=1e-6)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_output_dtype(name, s):
    assert jax.jit(s)(3).dtype == jnp.float32
    assert s(3).dtype == jnp.float32
    with jax.enable_x64(True):
        assert jax.jit(s)(3).dtype == jnp.float64
        assert s(jnp.arange(3)).dtype == jnp.float64
        assert jaxsched.Running(s).init().lr.dtype == jnp.float64
    assert jaxsched.Running(s).init().lr.dtype == jnp.float32


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_strict_promotion_with_x64(name, s):
    with jax.enable_x64(True), jax.numpy_dtype_promotion("strict"):
        out = jax.jit(s)(jnp.arange(K))
        r = jaxsched.Running(s)
        st = jax.jit(r.update)(r.init())
        assert out.dtype == jnp.float64 and st.lr.dtype == jnp.float64
        if getattr(s, "cycle_momentum", False):
            assert jax.jit(s.momentum)(jnp.arange(K)).dtype == jnp.float64


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_running_matches_the_closed_form(name, s):
    """Running (torch's recursion, O(1) per step) against s(k), with x64."""
    with jax.enable_x64(True):
        r = jaxsched.Running(s)

        def body(state, _):
            return r.update(state), r(state)

        got = jax.jit(lambda: jax.lax.scan(body, r.init(), None, length=K)[1])()
        np.testing.assert_allclose(np.asarray(got), np.asarray(s(jnp.arange(K))), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name,s", _params(EXAMPLES))
def test_num_groups(name, s):
    assert s.num_groups == (2 if "groups" in name else None)
    assert np.shape(s(0)) == _shape(s)
