"""The value base (jaxsched._value) and the two schedule kinds (jaxsched._base): declared fields, registry,
catalogue, abstract hooks, and validation that never re-runs inside traced code."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import jaxsched
from jaxsched import _checks as checks
from jaxsched._base import Affine, MultiplicativeSchedule, Schedule, StatefulSchedule
from jaxsched._numerics import arr
from jaxsched._value import CATALOGUE, REGISTRY, leaf, static


def test_a_field_without_leaf_or_static_is_refused_at_class_creation():
    with pytest.raises(TypeError, match=r"_Bad\.gamma: declare the field with jaxsched's leaf"):
        class _Bad(MultiplicativeSchedule):  # noqa: F841 - the class statement itself must raise
            lr: float = leaf()
            gamma: float = 0.5

            def _factor(self, e, dtype):
                return arr(self.gamma, dtype) ** e


def test_subclassing_alone_gives_dataclass_pytree_registry_and_checks():
    class HalfLR(MultiplicativeSchedule, mirrors="example.HalfLR"):
        lr: float = leaf(check=checks.lr)
        every: int = static(default=2, check=checks.integer(1, "a positive integer"))

        def _factor(self, e, dtype):
            return jnp.exp2(-(e // self.every).astype(dtype))

    try:
        s = HalfLR(0.1, every=3)
        assert REGISTRY["HalfLR"] is HalfLR and CATALOGUE["example.HalfLR"] is HalfLR
        assert repr(s) == "HalfLR(0.1, every=3)"
        assert s == HalfLR(0.1, every=3) and hash(s) == hash(HalfLR(0.1, every=3))
        assert [round(float(s(k)), 6) for k in (0, 2, 3, 6)] == [0.1, 0.1, 0.05, 0.025]
        assert jax.tree.leaves(s) == [0.1]  # the float is a leaf, the int is static
        assert jaxsched.from_config(s.to_config()) == s
        with pytest.raises(ValueError, match=r"HalfLR: every must be a positive integer, got every=0"):
            HalfLR(0.1, every=0)
        with pytest.raises(ValueError, match=r"HalfLR: lr must be >= 0"):
            HalfLR(-0.1)
        # vmap over the leaf, one compiled program
        lrs = jax.vmap(lambda x: jax.tree.map(lambda _: x, s)(3))(jnp.asarray([0.1, 0.2]))
        assert jnp.allclose(lrs, jnp.asarray([0.05, 0.1]))
    finally:
        REGISTRY.pop("HalfLR", None)
        CATALOGUE.pop("example.HalfLR", None)


def test_unflatten_never_reruns_validation():
    """A traced leaf inside jit never meets the checks (lr < 0 would raise on a concrete value)."""
    s = jaxsched.StepLR(0.1, step_size=2)
    calls = []

    @jax.jit
    def f(lr):
        t = jax.tree.map(lambda _: lr, s)
        calls.append(type(t.lr))
        return t(4)

    # every leaf (lr and gamma) becomes the traced value: -0.2 * (-0.2) ** 2; a negative lr is refused eagerly
    assert jnp.isclose(f(-0.2), -0.008)
    assert calls and issubclass(calls[0], jax.core.Tracer)


def test_the_hooks_are_abstract():
    class _NoClosedForm(Schedule):
        lr: float = leaf()

    class _NoFactor(MultiplicativeSchedule):
        lr: float = leaf()

    class _NoUpdate(StatefulSchedule):
        lr: float = leaf()

        def init(self):
            return None

        def __call__(self, state, **extra_args):
            return jnp.zeros(())

    for cls in (_NoClosedForm, _NoFactor, _NoUpdate):
        with pytest.raises(TypeError, match="abstract"):
            cls(0.1)


def test_the_classes_declare_their_kind():
    multiplicative = {"StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
                      "MultiplicativeLR"}
    for name, cls in jaxsched.SCHEDULES.items():
        assert issubclass(cls, MultiplicativeSchedule) == (name in multiplicative), name
    for cls in (jaxsched.ReduceLROnPlateau, jaxsched.Running, jaxsched.transformers.GreedyLR,
                jaxsched.optim.Accumulate):
        assert issubclass(cls, StatefulSchedule) and not issubclass(cls, Schedule)
    assert jaxsched.Running.metric_driven is False and jaxsched.ReduceLROnPlateau.metric_driven is True


def test_affine_composition_is_torch_order():
    a, b = Affine(0.5, 1.0), Affine(2.0, 3.0)
    lr = 4.0
    assert a.then(b).apply(lr) == b.apply(a.apply(lr)) == 2.0 * (0.5 * 4.0 + 1.0) + 3.0


def test_greedy_lr_in_optim_grouped_runs():
    """Issue 10: grouped() with GreedyLR built and then raised at the first update (listed by class name)."""
    import optax

    g = jaxsched.transformers.GreedyLR((0.1, 0.01), patience=0, factor=0.5, min_lr=(0.001, 0.001))
    params = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    opt = jaxsched.optim.grouped(optax.sgd, g, {"a": 0, "b": 1})
    st = opt.init(params)
    for loss in (1.0, 2.0, 3.0):
        updates, st = opt.update({"a": jnp.ones(1), "b": jnp.ones(1)}, st, params, value=loss)
    state = g.init()
    for loss in (1.0, 2.0, 3.0):
        want_before = g(state)
        state = g.update(state, value=loss)
    assert jnp.allclose(-updates["a"], want_before[0]) and jnp.allclose(-updates["b"], want_before[1])
