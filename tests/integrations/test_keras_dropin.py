"""``jaxsched.keras.<Name>`` as a drop-in for ``keras.optimizers.schedules.<Name>`` (live Keras 3, JAX backend).

Keras passes the iteration count only to ``LearningRateSchedule`` instances; the jaxsched classes become
subclasses of it once Keras is imported (jaxsched never imports Keras). Checked here: an optimizer step and
``model.fit`` apply Keras' own schedule's LR, a ``.keras`` file round-trips (in this process and in a fresh one
that imports jaxsched before Keras), and the classes stay jaxsched schedules (jit, vmap, optax, equality,
config).
"""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402

import jaxsched  # noqa: E402
from jaxsched import keras as jk  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip("Keras must run on the JAX backend", allow_module_level=True)

LRS = keras.optimizers.schedules.LearningRateSchedule
ENV = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}

#: One configuration per class (keyword arguments as Keras takes them).
CONFIGS = {
    "ExponentialDecay": dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True),
    "PiecewiseConstantDecay": dict(boundaries=[2, 4], values=[0.1, 0.05, 0.01]),
    "PolynomialDecay": dict(initial_learning_rate=0.1, decay_steps=5, end_learning_rate=0.01, power=2.0),
    "InverseTimeDecay": dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5),
    "CosineDecay": dict(initial_learning_rate=0.0, decay_steps=5, warmup_target=0.1, warmup_steps=2),
    "CosineDecayRestarts": dict(initial_learning_rate=0.1, first_decay_steps=3, t_mul=2.0, m_mul=0.5),
}


def test_configs_cover_every_class():
    assert set(CONFIGS) == set(jk.CLASSES)


def test_importing_jaxsched_does_not_import_keras():
    code = ("import sys, jaxsched, jaxsched.keras as k; k.CosineDecay(0.1, 10)(3); "
            "assert 'keras' not in sys.modules, 'keras imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=300)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_optimizer_steps_apply_keras_own_lr(name):
    """SGD on one weight with gradient 1: update ``k`` moves it by the LR, which is Keras' schedule at ``k``."""
    ours = jk.CLASSES[name](**CONFIGS[name])
    theirs = getattr(keras.optimizers.schedules, name)(**CONFIGS[name])
    assert isinstance(ours, LRS)
    opt = keras.optimizers.SGD(learning_rate=ours)
    v = keras.Variable(np.zeros(1, np.float32))
    applied = []
    for _ in range(8):
        before = float(v.numpy()[0])
        opt.apply_gradients([(np.ones(1, np.float32), v)])
        applied.append(before - float(v.numpy()[0]))
    np.testing.assert_allclose(applied, [float(theirs(k)) for k in range(8)], rtol=1e-5, atol=1e-9)


def test_model_fit_follows_the_schedule():
    """Two epochs of ``model.fit`` (3 batches each): the optimizer counted 6 updates and reports Keras' LR."""
    s = jk.CosineDecay(0.05, decay_steps=10, alpha=0.1)
    theirs = keras.optimizers.schedules.CosineDecay(0.05, decay_steps=10, alpha=0.1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=s), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype(np.float32)
    y = x @ np.asarray([[1.0], [-2.0], [0.5]], np.float32)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 6
    np.testing.assert_allclose(float(model.optimizer.learning_rate), float(theirs(6)), rtol=1e-6)
    assert history.history["loss"][1] < history.history["loss"][0]


def _trained_model(s):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=s), loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), batch_size=2, verbose=0)
    return model


def test_save_and_load_a_model(tmp_path):
    s = jk.PiecewiseConstantDecay(boundaries=[1, 3], values=[0.1, 0.05, 0.01])
    path = tmp_path / "m.keras"
    _trained_model(s).save(path)
    loaded = keras.models.load_model(path).optimizer
    assert type(loaded._learning_rate) is jk.PiecewiseConstantDecay and loaded._learning_rate == s
    assert int(loaded.iterations.numpy()) == 2
    np.testing.assert_allclose(float(loaded.learning_rate), float(s(2)), rtol=1e-6)
    cfg = keras.optimizers.schedules.serialize(s)
    assert cfg["registered_name"] == "jaxsched>keras.PiecewiseConstantDecay"
    assert cfg["config"] == {"boundaries": [1, 3], "values": [0.1, 0.05, 0.01], "name": "PiecewiseConstant"}


@pytest.mark.slow
def test_a_fresh_process_that_imports_jaxsched_first_loads_the_model(tmp_path):
    """``import jaxsched`` sorts before ``import keras``: the load must not need a schedule built first (nor
    be spoilt by an availability probe, ``find_spec('keras')``, as transformers makes)."""
    s = jk.CosineDecayRestarts(0.1, first_decay_steps=3)
    path = tmp_path / "m.keras"
    _trained_model(s).save(path)
    code = ("import importlib.util, sys, jaxsched; assert importlib.util.find_spec('keras'); import keras; "
            "opt = keras.models.load_model(sys.argv[1]).optimizer; "
            "print(repr(opt._learning_rate)); print(float(opt.learning_rate))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=ENV, timeout=300, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    text, lr = out.stdout.strip().splitlines()
    assert text == repr(s)
    np.testing.assert_allclose(float(lr), float(s(2)), rtol=1e-6)


@pytest.mark.slow
def test_an_optimizer_on_the_torch_backend_applies_the_lr():
    """Keras on torch (eager): the LR is computed in JAX on the host and given to Keras as a torch tensor."""
    pytest.importorskip("torch")
    code = ("import jaxsched, keras, numpy as np; assert keras.backend.backend() == 'torch'; "
            "s = jaxsched.keras.CosineDecay(0.1, 10); opt = keras.optimizers.SGD(learning_rate=s); "
            "v = keras.Variable(np.zeros(1, np.float32)); applied = []\n"
            "for _ in range(4):\n"
            "    b = float(v.numpy()[0]); opt.apply_gradients([(keras.ops.ones((1,)), v)]); "
            "applied.append(b - float(v.numpy()[0]))\n"
            "print(applied)")
    out = subprocess.run([sys.executable, "-c", code], env={**ENV, "KERAS_BACKEND": "torch"}, timeout=300,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    theirs = keras.optimizers.schedules.CosineDecay(0.1, 10)
    np.testing.assert_allclose(eval(out.stdout.strip()), [float(theirs(k)) for k in range(4)], rtol=1e-5)


def test_it_stays_a_jaxsched_schedule():
    s = jk.CosineDecay(0.0, decay_steps=5, warmup_target=0.1, warmup_steps=2)
    assert isinstance(s, LRS) and isinstance(s, jaxsched.Schedule)
    steps = jnp.arange(9)
    np.testing.assert_allclose(jax.jit(s)(steps), s(steps), rtol=1e-6)
    assert jaxsched.from_config(s.to_config()) == s and hash(jaxsched.from_config(s.to_config())) == hash(s)
    assert jk.CosineDecay.from_config(s.get_config()) == s
    assert jaxsched.from_keras(s) is s  # Keras takes it as its own schedule; from_keras gives it back as it is
    # vmap over a float hyperparameter (a pytree leaf)
    out = jax.vmap(lambda peak: jk.CosineDecay(0.0, decay_steps=5, warmup_target=peak, warmup_steps=2)(steps))(
        jnp.asarray([0.1, 0.2]))
    np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-6)
    # an optax schedule as it stands
    opt = optax.sgd(s)
    params = jnp.zeros(())
    state = opt.init(params)
    moves = []
    for _ in range(4):
        updates, state = opt.update(jnp.ones(()), state, params)
        moves.append(-float(np.asarray(updates)))
    np.testing.assert_allclose(moves, [float(s(k)) for k in range(4)], rtol=1e-6)


def test_register_with_keras_gives_custom_objects():
    objects = jk.register_with_keras()
    assert objects == {f"jaxsched>keras.{n}": c for n, c in jk.CLASSES.items()}


def test_a_call_without_a_step_says_what_to_do():
    s = jk.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    with pytest.raises(TypeError, match=r"ExponentialDecay: called without a step.*register_with_keras"):
        s()
