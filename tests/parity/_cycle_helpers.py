"""What the Keras and timm parity tests share: jaxsched's side of a trajectory, and where restarts fall exactly."""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _eval(s, steps):
    return s(steps)


def jaxsched_trajectory(s, n: int, x64: bool, steps: int) -> np.ndarray:
    """``s(t)`` for ``t = 0..n`` as float64, evaluated on ``steps`` steps under ``jax.jit``.

    float32 closes over ``s`` (its hyperparameters stay Python floats, as in ``optax.sgd(learning_rate=s)``): the
    README's float32 contract; traced float32 leaves are float32 roundings (README, "Precision"). With x64, passing
    ``s`` as an argument is equivalent and compiles once per structure.
    """
    with jax.enable_x64(x64):
        out = _eval(s, jnp.arange(steps)) if x64 else jax.jit(s)(jnp.arange(steps))
        assert out.dtype == (jnp.float64 if x64 else jnp.float32)
        return np.asarray(out, np.float64)[: n + 1]


def traced_trajectory(s, n: int, steps: int) -> np.ndarray:
    """``s`` passed to ``jax.jit`` as an argument (its leaves traced) in the current precision, ``t = 0..n``."""
    return np.asarray(_eval(s, jnp.arange(steps)), np.float64)[: n + 1]


def exact_restarts(first: int, mul: float, n: int) -> dict[int, int]:
    """``{t: i}`` for every ``t <= n`` at which cycle ``i >= 1`` starts exactly (rational arithmetic, ``mul`` as
    written: ``Fraction(repr(mul))``, as jaxsched._cycles takes it)."""
    out, m, i, start = {}, Fraction(repr(mul)), 1, Fraction(first)
    while start <= n:
        if start.denominator == 1:
            out[int(start)] = i
        start += first * m**i
        i += 1
    return out
