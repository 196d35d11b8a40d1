"""Whole trajectories against live torch, for configurations drawn over each scheduler's valid range.

For every drawn schedule: torch's LRs after ``0..steps`` calls of ``scheduler.step()`` (SGD, and Adam too when
momentum is cycled) against ``s(k)`` under ``jax.jit`` in float32 (tolerance 1e-6 x max|LR|) and with x64
(1e-10 x max|LR|), the cycled momentum / Adam ``betas[0]`` likewise, and :class:`jaxsched.Running` with x64.
A failure prints the schedule as a constructor call (see ``tests/strategies.py``).

x64 is switched with the ``jax.enable_x64`` context manager (``jax.experimental.enable_x64`` no longer exists in
jax 0.10); the jit cache is keyed on it, so the same function compiles once per precision.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import jaxsched
from jaxsched._value import CATALOGUE
from parity.torch_ref import build, initial_lrs, make_optimizer
from tests.references import torch_trajectory
from tests.strategies import CASES, examples, has_callable, pasteable

TOL32 = 1e-6
TOL64 = 1e-10


def _bucket(n):
    """Trajectories are evaluated on a few fixed lengths (and sliced), so that compiled code is reused."""
    return next(b for b in (64, 128, 256, 512, 1024) if b > n)


@jax.jit
def _eval_arg(s, steps):
    """``s(steps)`` with ``s`` a pytree argument: equal structures share one compilation."""
    return s(steps)


@jax.jit
def _eval_momentum_arg(s, steps):
    return s.momentum(steps)


def _evaluate(s, n, momentum=False, as_argument=False):
    """``s(0..n)`` (or ``s.momentum``) under jit, as a float64 array of shape (n + 1, G).

    ``as_argument=False`` closes over ``s`` (float hyperparameters stay Python floats, as in
    ``optax.sgd(learning_rate=s)``); with x64 passing ``s`` as an argument is equivalent and compiles less.
    """
    steps = jnp.arange(_bucket(n))
    if as_argument:
        out = (_eval_momentum_arg if momentum else _eval_arg)(s, steps)
    else:
        out = jax.jit(s.momentum if momentum else s)(steps)
    return np.asarray(out, np.float64)[: n + 1].reshape(n + 1, -1)


@functools.partial(jax.jit, static_argnums=1)
def _scan_running(s, length):
    r = jaxsched.Running(s)

    def body(state, _):
        return r.update(state), r(state)

    return jax.lax.scan(body, r.init(), None, length=length)[1]


def _running(s, n):
    return np.asarray(_scan_running(s, _bucket(n)), np.float64)[: n + 1].reshape(n + 1, -1)


def assert_close(got, ref, tol, what, s, atol=0.0):
    got = np.broadcast_to(got, ref.shape)
    assert np.all(np.isfinite(got)), f"{what}: non-finite values at steps {np.argwhere(~np.isfinite(got))[:5, 0]} " \
                                     f"for {pasteable(s)}"
    err = np.abs(got - ref)
    scale = np.max(np.abs(ref))
    worst = int(np.argmax(err.max(axis=1)))
    assert err.max() <= tol * scale + atol, (
        f"{what}: max|jaxsched - torch| = {err.max():.3g} > {tol:g} x max|LR| ({scale:.3g}) at step {worst}: "
        f"jaxsched {got[worst].tolist()} vs torch {ref[worst].tolist()}\n  schedule: {pasteable(s)}"
    )


def check_against_torch(s, n):
    note(f"schedule: {pasteable(s)}  steps: {n}")
    cycled = bool(getattr(s, "cycle_momentum", False))
    with jax.enable_x64(True):  # torch's lambdas are then evaluated in float64, as torch would with floats
        ref, ref_mom = torch_trajectory(s, n, "sgd")
        if cycled:
            ref_adam, ref_beta = torch_trajectory(s, n, "adam")
            np.testing.assert_array_equal(ref_adam, ref)

        assert_close(_evaluate(s, n, as_argument=True), ref, TOL64, "x64", s)
        assert_close(_running(s, n), ref, TOL64, "Running x64", s)
        if cycled:
            mom64 = _evaluate(s, n, momentum=True, as_argument=True)
            assert_close(mom64, ref_mom, TOL64, "momentum x64", s)
            assert_close(mom64, ref_beta, TOL64, "Adam betas[0] x64", s)

    # float32 cannot hold values below its smallest normal number (e.g. eta_min=1e-300): that much is allowed.
    # The scale is the largest LR the schedule reaches, eta_min included (a short window can stop before it).
    tiny = float(np.finfo(np.float32).tiny) + TOL32 * max(0.0, lr_magnitude(s) - np.max(np.abs(ref)))
    assert jax.jit(s)(0).dtype == jnp.float32
    if has_callable(s):
        # a user callable is user code: in float32 JAX evaluates it in float32 (0.99999 ** e rounds 0.99999
        # first). The float32 reference runs torch on the same callables as JAX evaluates them in float32.
        ref, _ = torch_trajectory(s, n, "sgd")
    assert_close(_evaluate(s, n), ref, float32_tolerance(s), "float32", s, atol=tiny)
    if cycled:
        assert_close(_evaluate(s, n, momentum=True), ref_mom, TOL32, "momentum float32", s, atol=tiny)


def lr_magnitude(s) -> float:
    """The largest LR-valued hyperparameter (lr, eta_min, swa_lr, base_lr, max_lr) of ``s`` or its members."""
    members = getattr(s, "schedulers", (s,))
    vals = [np.max(np.abs(np.asarray(getattr(m, k), np.float64))) for m in members
            for k in ("lr", "eta_min", "swa_lr", "base_lr", "max_lr") if hasattr(m, k)]
    return float(max(vals))


def float32_tolerance(s) -> float:
    """1e-6, except for a ChainedScheduler without a closed form: its ``s(e)`` replays torch's recursion (the
    Running form), and a float32 recursion accumulates rounding (documented in the README). Measured after the
    SWALR fix: at most 1.02e-6 over ~200 hypothesis examples (a LambdaLR member whose own float32 ``0.99999 ** e``
    rounds); bounded at 1e-5 here, which still catches any semantic error."""
    if isinstance(s, jaxsched.ChainedScheduler) and not s.closed_form:
        return 1e-5
    return TOL32


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
@given(data=st.data())
def test_parity_with_torch(name, data):
    s, n = data.draw(CASES[name](), label="case")
    assert type(s).__name__ == name
    check_against_torch(s, n)


def _torch_step_schedules() -> dict[str, type]:
    """Every step schedule in the catalogue that mirrors a torch scheduler, by its name."""
    return {cls.__name__: cls for path, cls in CATALOGUE.items()
            if path.startswith("torch.") and issubclass(cls, jaxsched.Schedule)}


def test_every_torch_scheduler_in_the_catalogue_has_a_strategy():
    """The parity run covers the catalogue: a class that declares a torch counterpart needs a strategy here."""
    mirrored = _torch_step_schedules()
    assert set(CASES) == set(mirrored), (
        f"strategies without a catalogued class: {sorted(set(CASES) - set(mirrored))}; catalogued torch "
        f"schedulers without a strategy in tests/strategies.py CASES: {sorted(set(mirrored) - set(CASES))}"
    )
    assert len(mirrored) >= 15  # torch 2.13's LR schedulers other than ReduceLROnPlateau (a StatefulSchedule)


def test_the_torch_runner_builds_the_catalogued_class():
    """parity.torch_ref builds exactly the torch class each jaxsched class names in its ``mirrors=`` entry."""
    for path, cls in CATALOGUE.items():
        if path.startswith("torch.") and issubclass(cls, jaxsched.Schedule):
            s = next(ex for _, ex in examples() if type(ex) is cls)
            opt = make_optimizer(initial_lrs(s))
            built = build(s, opt)
            assert f"{type(built).__module__}.{type(built).__qualname__}" == path


def test_harness_detects_a_wrong_schedule():
    """The comparison can fail: a schedule compared to a different torch trajectory is caught."""
    s = jaxsched.StepLR(0.1, step_size=5, gamma=0.5)
    with jax.enable_x64(True):
        ref, _ = torch_trajectory(jaxsched.StepLR(0.1, step_size=5, gamma=0.5 + 1e-9), 20)
        with pytest.raises(AssertionError, match="StepLR"):
            assert_close(_evaluate(s, 20, as_argument=True), ref, TOL64, "x64", s)
