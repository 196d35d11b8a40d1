"""jaxsched.keras against live Keras 3 (JAX backend), whole trajectories, configurations drawn by hypothesis.

For each drawn schedule: Keras' ``schedule(t)`` for ``t = 0..n`` with Keras' floatx set to float64 under x64 (the
reference), against ``s(t)`` under ``jax.jit`` with x64 (1e-10 x max|LR|, ``s`` passed as an argument) and in
float32 (1e-6 x max|LR|, ``s`` closed over: the README's float32 contract, which a schedule with traced float32
hyperparameters is outside of, since they are float32 roundings).

Keras 3.15's JAX backend computes ``cos``, ``tanh``, ``floor`` and ``ceil`` of a float64 tensor in float32
(``keras.src.backend.common.dtypes.result_type`` maps every 64-bit result type to 32 bits "to align with JAX's
default"), so with floatx float64 its CosineDecay is only float32-accurate. The float64 reference therefore runs
Keras' own schedule code with those four backend functions kept in float64 (``parity.frameworks.keras_float64``);
the same trajectories are also compared with unpatched Keras (:func:`test_unpatched_keras`), to 1e-6 of the largest LR.
The reference trajectory is compiled with XLA's algebraic simplifier off (``parity.frameworks.keras_steps``): it
rewrites ``t / decay_steps`` as ``t * (1 / decay_steps)``, which floors one short at exact multiples (step 49 of
``decay_steps=49``), where Keras' code, and Keras called on that step, divide exactly.
``CosineDecayRestarts`` may differ from Keras only exactly at a restart whose float64 cycle index Keras floors
one short (see jaxsched._cycles); every such step is checked against the top of the exact cycle instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, note, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.control import currently_in_test_context  # noqa: E402

from jaxsched import keras as jk  # noqa: E402
from jaxsched._cycles import check_cycles  # noqa: E402
from jaxsched._value import CATALOGUE, REGISTRY  # noqa: E402
from parity.frameworks import keras_float64, keras_steps  # noqa: E402
from tests.parity._cycle_helpers import exact_restarts, traced_trajectory  # noqa: E402
from tests.parity._cycle_helpers import jaxsched_trajectory as trajectory  # noqa: E402

keras = pytest.importorskip("keras")
pytestmark = [
    pytest.mark.slow,  # whole trajectories against Keras' schedules
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="Keras must run on the JAX backend"),
]

TOL32 = 1e-6
TOL64 = 1e-10
STEPS = 256
#: Each example compiles its schedule twice (its step counts are static): a third of the profile's examples
#: per class keeps this file near 60 s on a 2-core CPU with the ci profile (8 per class), 20 with dev.
EXAMPLES = max(8, settings().max_examples // 3)


def keras_object(s):
    """The live Keras schedule with the same arguments."""
    cls = getattr(keras.optimizers.schedules, type(s).__name__)
    args = s.to_config()["args"]
    return cls(**args)


def keras_trajectory(s, n, patched=True):
    ks = keras_object(s)
    with keras_float64(patched):
        out = keras_steps(ks, n)
        assert out.dtype == (jnp.float64 if patched else out.dtype)
        return np.asarray(out, np.float64)


def jaxsched_trajectory(s, n, x64):
    return trajectory(s, n, x64, STEPS)


def check(s, n, allowed=None):
    """Compare; ``allowed(step) -> expected`` gives the exact value at steps where Keras may be a cycle short."""
    if currently_in_test_context():  # also called from plain regression tests
        note(f"schedule: {s!r}  steps: {n}")
    ref = keras_trajectory(s, n)
    scale = float(np.max(np.abs(ref))) or 1.0
    for x64, tol in ((True, TOL64), (False, TOL32)):
        got = jaxsched_trajectory(s, n, x64)
        assert np.all(np.isfinite(got)), f"non-finite values for {s!r}"
        tiny = float(np.finfo(np.float32).tiny) if not x64 else 0.0
        err = np.abs(got - ref)
        bad = np.flatnonzero(err > tol * scale + tiny)
        for t in bad:
            expected = None if allowed is None else allowed(int(t))
            assert expected is not None, (
                f"{'x64' if x64 else 'float32'}: |jaxsched - keras| = {err[t]:.3g} > {tol:g} x {scale:.3g} at step "
                f"{t}: jaxsched {got[t]!r} vs keras {ref[t]!r}\n  schedule: {s!r}"
            )
            assert abs(got[t] - expected) <= tol * scale + tiny, (t, got[t], expected, s)


# ----------------------------------------------------------------------------------------------------------
# strategies


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


lrs = st.one_of(floats(1e-4, 10.0), st.sampled_from([0.1, 1.0]))
steps = st.integers(20, STEPS - 1)


@st.composite
def exponential(draw):
    rate = draw(st.one_of(floats(0.0, 1.0), floats(1.0, 1.01), st.sampled_from([0.0, 0.5, 0.96])))
    return jk.ExponentialDecay(draw(lrs), decay_steps=draw(st.integers(1, 60)), decay_rate=rate,
                               staircase=draw(st.booleans())), draw(steps)


@st.composite
def piecewise(draw):
    n = draw(steps)
    k = draw(st.integers(1, 5))
    boundaries = sorted(draw(st.lists(st.integers(0, n), min_size=k, max_size=k)))
    values = draw(st.lists(lrs, min_size=k + 1, max_size=k + 1))
    return jk.PiecewiseConstantDecay(boundaries=boundaries, values=values), n


@st.composite
def polynomial(draw):
    lr = draw(lrs)
    return jk.PolynomialDecay(lr, decay_steps=draw(st.integers(1, 150)),
                              end_learning_rate=draw(st.one_of(st.just(1e-4), floats(0.0, lr))),
                              power=draw(st.one_of(st.just(1.0), floats(0.0, 4.0))),
                              cycle=draw(st.booleans())), draw(steps)


@st.composite
def inverse_time(draw):
    return jk.InverseTimeDecay(draw(lrs), decay_steps=draw(st.integers(1, 60)), decay_rate=draw(floats(0.0, 5.0)),
                               staircase=draw(st.booleans())), draw(steps)


@st.composite
def cosine(draw):
    lr = draw(lrs)
    target = draw(st.one_of(st.none(), lrs))
    return jk.CosineDecay(lr, decay_steps=draw(st.integers(1, 200)), alpha=draw(floats(0.0, 1.0)),
                          warmup_target=target, warmup_steps=draw(st.integers(0, 60))), draw(steps)


@st.composite
def restarts(draw):
    # not within 1e-3 of 1 (but 1 itself): Keras' 1 - t_mul cancels there, as timm's does (test_timm_parity.py)
    t_mul = draw(st.one_of(st.sampled_from([1.0, 2.0, 3.0, 1.5, 1.1, 1.04]), floats(1.0 + 1e-3, 3.0)))
    first = draw(st.integers(1, 40))
    try:
        check_cycles("CosineDecayRestarts", "t_mul", first, t_mul, None)
    except ValueError as err:  # a documented refusal: 4096 cycles that end before step 2**31 - 1
        assert "is so close to 1" in str(err)
        reject()
    return jk.CosineDecayRestarts(draw(lrs), first_decay_steps=first, t_mul=t_mul,
                                  m_mul=draw(floats(0.1, 1.0)), alpha=draw(floats(0.0, 0.5))), draw(steps)


def restart_tops(s, n):
    tops = exact_restarts(s.first_decay_steps, s.t_mul, n)

    def allowed(t):
        if t not in tops:
            return None
        return s.initial_learning_rate * ((1 - s.alpha) * s.m_mul ** tops[t] + s.alpha)

    return allowed


CASES = {"ExponentialDecay": exponential, "PiecewiseConstantDecay": piecewise, "PolynomialDecay": polynomial,
         "InverseTimeDecay": inverse_time, "CosineDecay": cosine, "CosineDecayRestarts": restarts}


@pytest.mark.parametrize("name", list(CASES))
@given(data=st.data())
@settings(max_examples=EXAMPLES)
def test_parity_with_keras(name, data):
    s, n = data.draw(CASES[name](), label="case")
    check(s, n, restart_tops(s, n) if name == "CosineDecayRestarts" else None)


@pytest.mark.parametrize("name", list(CASES))
@given(data=st.data())
@settings(max_examples=max(3, EXAMPLES // 3))
def test_unpatched_keras(name, data):
    """Against Keras exactly as installed (floatx float64, its float32 cos/floor): x64 within 1e-6 x max|LR|."""
    s, n = data.draw(CASES[name](), label="case")
    note(f"schedule: {s!r}  steps: {n}")
    ref = keras_trajectory(s, n, patched=False)
    got = jaxsched_trajectory(s, n, True)
    allowed = restart_tops(s, n) if name == "CosineDecayRestarts" else (lambda t: None)
    scale = float(np.max(np.abs(ref))) or 1.0
    for t in np.flatnonzero(np.abs(got - ref) > TOL32 * scale):
        assert allowed(int(t)) is not None, (t, got[t], ref[t], s)


def test_keras_cos_is_float32_with_floatx_float64():
    """The reason for the patched reference: Keras' cos returns float32 for a float64 input (fails if fixed)."""
    with keras_float64(patched=False):
        assert keras.ops.cos(jnp.asarray(1.0, jnp.float64)).dtype == jnp.float32
    with keras_float64(patched=True):
        assert keras.ops.cos(jnp.asarray(1.0, jnp.float64)).dtype == jnp.float64


def test_every_keras_schedule_is_covered():
    """Every schedule Keras exports has a jaxsched class, a catalogue entry and a strategy here."""
    exported = {n for n in dir(keras.optimizers.schedules) if n[0].isupper() and n != "LearningRateSchedule"}
    assert exported == set(jk.CLASSES) == set(CASES)
    for name, cls in jk.CLASSES.items():
        assert CATALOGUE[f"keras.optimizers.schedules.{name}"] is cls
        assert REGISTRY[f"keras.{name}"] is cls


def test_keras_restart_index_is_short_where_documented():
    """Keras' float64 floor(log/log) lands one cycle short at t_mul=3, step 121 * first: jaxsched does not."""
    s = jk.CosineDecayRestarts(1.0, first_decay_steps=1, t_mul=3.0)
    ref = keras_trajectory(s, 130)
    got = jaxsched_trajectory(s, 130, True)
    assert ref[121] < 1e-12 and got[121] == pytest.approx(1.0)  # Keras: bottom of cycle 4; exact: top of cycle 5
    mask = np.arange(131) != 121
    np.testing.assert_allclose(got[mask], ref[mask], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cycle", [False, True])
@pytest.mark.parametrize("power", [5.391919736033161e-147, 1e-300, 5e-324])
def test_polynomial_tiny_power_reaches_the_end(power, cycle):
    """A positive power that float32 holds as 0 (or as a subnormal): Keras' float64 ``0 ** power`` is 0, so the LR
    reaches end_learning_rate at decay_steps; float32 must not turn it into ``0 ** 0 = 1`` (found by the thorough
    profile: float32 gave 1.0 against Keras' 1e-4 at step 1 for decay_steps=1)."""
    check(jk.PolynomialDecay(1.0, decay_steps=1, power=power, cycle=cycle), 20)
    check(jk.PolynomialDecay(2.0, decay_steps=7, end_learning_rate=0.5, power=power, cycle=cycle), 40)


@pytest.mark.parametrize("first, t_mul, t", [(31, 2.230159076796215, 31), (20, 1.9531939083047116, 20),
                                             (12, 1.769802291945321, 12), (25, 1.04, 51), (20, 1.1, 42)])
def test_restart_at_an_integer_start_is_exact(first, t_mul, t):
    """A cycle starts at exactly step ``t``; the float64 table start ``first * (t_mul - 1) / (t_mul - 1)`` rounded to
    31.000000000000004 (and ``25 * (1.04**2 - 1) / 0.04`` to 51.00000000000002) and its ceil put step ``t`` at the
    bottom of the previous cycle (drawn by the thorough profile: jaxsched 3.7e-33, Keras and the exact top 1.0).
    The starts are exact rationals of ``t_mul`` as written (1.1 is 11/10: cycle 2 starts at 42, as in Keras)."""
    s = jk.CosineDecayRestarts(1.0, first_decay_steps=first, t_mul=t_mul)
    n = min(t + 2 * first, STEPS - 1)
    check(s, n, restart_tops(s, n))
    with jax.enable_x64(True):
        assert float(s(t)) == pytest.approx(1.0)
        assert float(s(t - 1)) < 0.02


@pytest.mark.parametrize("s, n", [
    (jk.ExponentialDecay(1.0, decay_steps=12, decay_rate=2.4812399021014444e-70), 20),  # drawn by the ci profile
    (jk.ExponentialDecay(1.25, decay_steps=1, decay_rate=1.0086971333590378), 52),  # drawn by the thorough one
])
def test_float32_is_checked_with_the_schedule_closed_over(s, n):
    """The float32 contract is for a schedule closed over (README, "Precision"). Passed to jit as an argument, its
    decay_rate is a float32 rounding: 2.48e-70 is 0 (0.0 at step 1 against Keras' 1.58e-6) and 1.0087's rounding
    error grows 52-fold in ``rate ** 52`` (1.98e-6 of the largest LR). Closed over, log(rate) is taken in float64."""
    check(s, n)
    with pytest.raises(AssertionError, match="float32"):  # what the harness compared before: out of contract
        with jax.enable_x64(False):
            traced = traced_trajectory(s, n, STEPS)
        ref = keras_trajectory(s, n)
        assert np.abs(traced - ref).max() <= TOL32 * np.abs(ref).max(), "float32 with traced hyperparameters"


@pytest.mark.parametrize("make", [
    lambda: jk.InverseTimeDecay(1.0, decay_steps=49, decay_rate=1.0, staircase=True),
    lambda: jk.ExponentialDecay(1.0, decay_steps=49, decay_rate=0.5, staircase=True),
    lambda: jk.InverseTimeDecay(0.3, decay_steps=98, decay_rate=2.0, staircase=True),
])
def test_staircase_floors_exact_multiples(make):
    """``floor(49 / 49) = 1``: the reference must divide as Keras' code does. XLA rewrites a vectorised ``t / 49``
    as ``t * (1 / 49)`` (0.9999999999999999 at t = 49), so a plain ``jax.vmap`` of Keras' schedule held the LR one
    step too long at each multiple (1.0 at step 49 where Keras called on step 49 gives 0.5)."""
    s = make()
    T = s.decay_steps
    with keras_float64():
        eager = [float(keras_object(s)(jnp.asarray(k * T))) for k in (1, 2)]
    ref = keras_trajectory(s, 2 * T + 1)
    assert [ref[T], ref[2 * T]] == eager
    assert ref[T] < ref[T - 1]  # the first decay happens at step T, not T + 1
    check(s, min(2 * T + 5, STEPS - 1))


def test_harness_detects_a_wrong_schedule():
    s = jk.CosineDecay(0.1, decay_steps=50, alpha=0.1)
    wrong = jk.CosineDecay(0.1, decay_steps=50, alpha=0.1 + 1e-8)
    ref = keras_trajectory(s, 60)
    got = jaxsched_trajectory(wrong, 60, True)
    assert np.max(np.abs(got - ref)) > TOL64 * 0.1
    with pytest.raises(AssertionError, match="jaxsched - keras"):
        _check_against(wrong, s, 60)


def _check_against(got_s, ref_s, n):
    ref = keras_trajectory(ref_s, n)
    got = jaxsched_trajectory(got_s, n, True)
    err = np.abs(got - ref)
    assert err.max() <= TOL64 * np.max(np.abs(ref)), f"|jaxsched - keras| = {err.max():.3g}"


def test_framework_report_cases_pass():
    """The cross-framework report (parity/frameworks.py): every case lists its writings, the step-decay case's
    jaxsched mirrors (torch, timm, Keras) meet the contract and all four frameworks agree there."""
    from parity import frameworks

    names = [c.name for c in frameworks.cases()]
    assert len(names) == 6 and any("plateau" in n for n in names)
    assert {w.framework for c in frameworks.cases() for w in c.writings} == {
        "torch", "transformers", "timm", "keras", "optax"}
    results = frameworks.run_case(frameworks.select("step decay")[0])
    assert [r.framework for r in results] == ["torch", "timm", "keras", "optax"]
    assert all(r.available and r.passed for r in results)
    assert all(r.diff_first == 0.0 for r in results)
