"""jaxsched.keras: converters, value semantics, validation, and ``as_keras`` trained with a Keras optimizer."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxsched  # noqa: E402
from jaxsched import keras as jk  # noqa: E402
from jaxsched._frameworks import from_keras  # noqa: E402
from jaxsched._value import from_config  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip("Keras must run on the JAX backend", allow_module_level=True)

def BAD(x) -> Any:
    """A wrongly typed argument, passed on purpose."""
    return x


#: One configuration per class, away from the defaults.
EXAMPLES = [
    jk.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.9, staircase=True, name="exp"),
    jk.PiecewiseConstantDecay(boundaries=[3, 9], values=[1.0, 0.3, 0.05]),
    jk.PolynomialDecay(0.2, decay_steps=11, end_learning_rate=0.01, power=2.5, cycle=True),
    jk.InverseTimeDecay(0.5, decay_steps=4, decay_rate=0.7),
    jk.CosineDecay(0.01, decay_steps=20, alpha=0.1, warmup_target=0.1, warmup_steps=5),
    jk.CosineDecayRestarts(0.1, first_decay_steps=5, t_mul=1.5, m_mul=0.8, alpha=0.05),
]


def test_examples_cover_every_class():
    assert {type(s) for s in EXAMPLES} == set(jk.CLASSES.values())


@pytest.mark.slow
@pytest.mark.parametrize("s", EXAMPLES, ids=lambda s: type(s).__name__)
def test_from_keras_gives_the_same_schedule(s):
    live = getattr(keras.optimizers.schedules, type(s).__name__)(**s.to_config()["args"])
    converted = from_keras(live)
    assert converted == s and hash(converted) == hash(s)
    steps = np.arange(40)
    np.testing.assert_allclose(np.asarray(converted(jnp.asarray(steps))),
                               np.asarray([float(live(int(t))) for t in steps]), rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("s", EXAMPLES, ids=lambda s: type(s).__name__)
def test_value_semantics(s):
    cfg = s.to_config()
    assert cfg["name"] == f"keras.{type(s).__name__}"
    back = from_config(cfg)
    assert back == s and hash(back) == hash(s) and repr(back) == repr(s)
    assert eval(repr(s), {**jk.CLASSES}) == s  # the repr is the constructor call
    steps = jnp.arange(30)
    np.testing.assert_allclose(jax.jit(s)(steps), s(steps), rtol=1e-6)
    # float hyperparameters are pytree leaves: one compilation, traced under jit, vmappable
    leaves, treedef = jax.tree_util.tree_flatten(s)
    assert leaves and all(isinstance(x, float) for x in leaves)
    doubled = jax.tree_util.tree_unflatten(treedef, [2 * x for x in leaves])
    out = jax.vmap(lambda t: jax.jit(lambda q: q(t))(doubled))(steps)
    np.testing.assert_allclose(out, type(s)(**{**cfg["args"], **{k: getattr(doubled, k) for k in s._leaf_names}})(
        steps), rtol=1e-6)


def test_vmap_over_a_hyperparameter():
    lrs = jnp.asarray([0.1, 0.2, 0.4])
    out = jax.vmap(lambda lr: jk.CosineDecay(lr, decay_steps=10, alpha=0.1)(jnp.arange(12)))(lrs)
    np.testing.assert_allclose(out[2], 4 * out[0], rtol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: jk.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5), r"decay_steps must be > 0.*decay_steps=0"),
    (lambda: jk.ExponentialDecay(0.1, decay_steps=10, decay_rate=-0.5), r"decay_rate must be >= 0"),
    (lambda: jk.PiecewiseConstantDecay([1, 2], [0.1, 0.2]), r"1 less than the length of values"),
    (lambda: jk.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3]), r"non-decreasing"),
    (lambda: jk.CosineDecay(0.1, decay_steps=10, warmup_steps=-1), r"warmup_steps must be >= 0"),
    (lambda: jk.CosineDecayRestarts(0.1, 10, t_mul=0.5), r"t_mul must be >= 1.*NaN"),
    (lambda: jk.CosineDecayRestarts(0.1, 1, t_mul=1.0001), r"t_mul=1.0001 is so close to 1"),
    (lambda: jk.CosineDecay(0.1, decay_steps=10, name=BAD(3)), r"name must be a string"),
])
def test_validation_names_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_from_keras_refuses_custom_schedules():
    class Mine(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

    with pytest.raises(TypeError, match="no jaxsched counterpart.*Mine"):
        from_keras(Mine())


# ----------------------------------------------------------------------------------------------------------
# as_keras


def test_keras_is_imported_only_when_as_keras_is_called():
    code = ("import sys, jaxsched, jaxsched.keras as k; assert 'keras' not in sys.modules, 'imported'; "
            "k.as_keras(jaxsched.StepLR(0.1, step_size=2)); assert 'keras' in sys.modules")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)


def test_a_bare_jaxsched_schedule_fails_in_keras_and_as_keras_works():
    """Keras calls a plain callable with no argument: the failure as_keras exists for."""
    s = jaxsched.StepLR(0.1, step_size=2, gamma=0.5)
    with pytest.raises(TypeError):
        opt = keras.optimizers.SGD(learning_rate=s)
        v = keras.Variable(np.zeros(1, np.float32))
        opt.apply_gradients([(np.ones(1, np.float32), v)])
    opt = keras.optimizers.SGD(learning_rate=jk.as_keras(s))
    v = keras.Variable(np.zeros(1, np.float32))
    seen = []
    for _ in range(6):
        before = float(v.numpy()[0])
        opt.apply_gradients([(np.ones(1, np.float32), v)])
        seen.append(before - float(v.numpy()[0]))  # the LR applied by this update (gradient 1)
    np.testing.assert_allclose(seen, [float(s(k)) for k in range(6)], rtol=1e-6)


def test_as_keras_trains_a_model_and_the_optimizer_sees_s_of_step():
    """Keras SGD on a linear model, one batch per train_on_batch: before update k the optimizer reports
    ``learning_rate == s(k)``, and the weights move by exactly ``-s(k) * grad`` (the LR it applied)."""
    s = jaxsched.OneCycleLR(0.05, total_steps=30)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    opt = keras.optimizers.SGD(learning_rate=jk.as_keras(s))
    model.compile(optimizer=opt, loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = x @ np.asarray([[1.0], [-2.0], [0.5]], np.float32)
    losses = []
    for k in range(20):
        assert int(opt.iterations.numpy()) == k
        np.testing.assert_allclose(float(opt.learning_rate), float(s(k)), rtol=1e-6)
        w = np.asarray(model.layers[0].kernel.numpy(), np.float64)
        grad = 2.0 / len(x) * x.T.astype(np.float64) @ (x @ w - y)
        losses.append(float(model.train_on_batch(x, y)))
        applied = (w - np.asarray(model.layers[0].kernel.numpy(), np.float64)) / grad
        np.testing.assert_allclose(applied, float(s(k)), rtol=2e-4)
    assert losses[-1] < 0.5 * losses[0]


def test_as_keras_serialises(tmp_path):
    s = jk.CosineDecay(0.0, decay_steps=10, warmup_target=0.1, warmup_steps=3)
    wrapped = jk.as_keras(s)
    cfg = keras.optimizers.schedules.serialize(wrapped)
    assert cfg["registered_name"] == "jaxsched>Schedule"
    back = keras.optimizers.schedules.deserialize(cfg)
    assert back.schedule == s and from_keras(back) == s
    opt = keras.optimizers.deserialize(keras.optimizers.serialize(keras.optimizers.SGD(learning_rate=wrapped)))
    assert opt.learning_rate is not None and from_keras(opt._learning_rate) == s
    # a whole model with its optimizer, through a .keras file
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=wrapped), loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert from_keras(loaded.optimizer._learning_rate) == s


def test_as_keras_refuses_a_stateful_schedule():
    with pytest.raises(TypeError, match="as_keras: schedule must be a schedule of the step.*ReduceLROnPlateau"):
        jk.as_keras(BAD(jaxsched.ReduceLROnPlateau(0.1)))
    with pytest.raises(TypeError, match="must be a jaxsched schedule"):
        jk.as_keras(BAD(lambda t: 0.1))
