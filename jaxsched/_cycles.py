"""The maths shared by the Keras and timm catalogues: restart cycles located exactly, and two small shapes.

Keras' ``CosineDecayRestarts`` and timm's cosine/tanh/poly schedulers find the cycle ``i`` that holds step ``t``
with ``floor(log(1 + t / T * (mul - 1)) / log(mul))``. In floating point that floor can land one cycle short
exactly at a restart (``log(243) / log(3) = 4.999...``: Keras and timm, in float64, then return the end of cycle
4, the bottom of the cosine, instead of the top of cycle 5). jaxsched locates the cycle exactly instead: the
cycle starts ``T * (mul**i - 1) / (mul - 1)`` are tabulated once on the host in exact rational arithmetic, for
``mul`` as written (its ``repr``: ``1.1`` is 11/10; ``ceil``-ed to integers, so ``t >= start`` is an exact integer
comparison, and a start that is an exact integer is never rounded past it), and the position inside the cycle is
``t - start``, split into an exact integer part and a float64 offset, so float32 keeps its precision at large
steps. The two differ only at those restarts, and for a multiplier within about ``1e-3`` of 1, where the
frameworks' ``1 - mul`` cancels (their error exceeds 1e-10 of the LR from ``1 + 1e-6`` for a cosine, from
``1 + 1e-4`` for timm's poly with a small power near a cycle's end; at ``1.0000000000000002``
timm's cycle index jumps mid-cycle). The parity tests check that every difference at a drawn multiplier (1, or
at least ``1 + 1e-3``) is such a restart, and pin the behaviour next to 1 apart (README, deliberate differences).

Cost (``python -m benchmarks.schedules_frameworks``, 1M float32 steps, 2-core x86_64 CPU, shared and noisy,
2026-11-30, three runs): multipliers 1 (an integer division) and 2 (a count of leading zeros) need no table
lookup and stay within the cost benchmark's 2x of a bare cosine (Keras' CosineDecayRestarts 1.0-1.4x, timm's
CosineLRScheduler with ``cycle_mul=2`` 1.3-1.6x). Integer multipliers from 3 (:func:`_integer_cycle`: the log
estimate corrected by two exact integer comparisons, no table) measured 1.8x and 4.5x for ``t_mul=3``; a
fractional multiplier reads the float64 table with gathers, which XLA runs slowly on CPU: 5.5-9.8x for
``t_mul=1.5``. Both miss the target; exactness at the restarts was kept over speed.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
from jax import lax

from ._numerics import Array, div, int_dtype, int_max, int_pow, is_concrete, mod

#: At most this many cycles are tabulated for a cycle multiplier above 1.
MAX_CYCLES = 4096
#: Steps up to here are placed exactly in their cycle (the table runs at least this far, or to the cycle limit).
HORIZON = 2**31 - 1
_TABLE_END = 2.0**53


@functools.lru_cache(maxsize=64)
def _table(first: int, mul: float, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cycle ``i``'s start ``ceil``-ed, the offset ``ceil(start) - start``, the fraction ``start - floor(start)``
    and its length, for ``i = 0..n-1``.

    ``n`` is ``limit + 1`` (the cycle after the last one counted marks "past the limit") or, without a limit,
    enough cycles to pass ``2**53``, at most :data:`MAX_CYCLES`.
    """
    # Exact, for mul as written: P / Q = Fraction(repr(mul)) (1.1 is 11/10, not the double 1.1000000000000000888),
    # so start_i = first * (P**i - Q**i) / (Q**(i - 1) * (P - Q)), an integer quotient and remainder. The float64
    # quotient ``first * (mul**i - 1) / (mul - 1)`` could round above an exact integer start (20.000000000000004
    # for first=20, mul=1.9531939083047116; 51.00000000000002 for first=25, mul=1.04), whose ceil then placed that
    # restart at the bottom of the previous cycle; the double's own value would put cycle 2 of first=20, mul=1.1
    # 1.8e-15 after step 42, where timm and Keras (and the number as written) restart at 42.
    P, Q = Fraction(repr(float(mul))).as_integer_ratio()
    D = P - Q
    ceils, offsets, fracs, lengths = [0.0], [0.0], [0.0], [float(first)]
    p_i, q_i, q_prev = P, Q, 1  # P**i, Q**i, Q**(i - 1) for the next cycle i
    while True:
        if limit is not None and len(ceils) > limit:
            break
        if ceils[-1] >= _TABLE_END or len(ceils) >= MAX_CYCLES:
            break
        num, den = first * (p_i - q_i), q_prev * D
        whole, rest = divmod(num, den)
        ceils.append(float(whole + (rest > 0)))  # ceil(start_i), exactly
        offsets.append((den - rest) / den if rest else 0.0)  # ceil(start_i) - start_i, correctly rounded
        fracs.append(rest / den)  # start_i - floor(start_i), correctly rounded (1 - offset would lose it)
        lengths.append(first * p_i / q_i)  # first * mul**i, correctly rounded
        p_i, q_i, q_prev = p_i * P, q_i * Q, q_i
    return tuple(np.asarray(a, np.float64) for a in (ceils, offsets, fracs, lengths))  # type: ignore[return-value]


def check_cycles(cls: str, name: str, first: int, mul: float, limit: int | None) -> None:
    """Refuse a multiplier so close to 1 that :data:`MAX_CYCLES` cycles end before step :data:`HORIZON`."""
    if mul == 1.0:
        return
    starts = _table(first, mul, limit)[0]
    if (limit is None or len(starts) <= limit) and len(starts) >= MAX_CYCLES and starts[-1] < HORIZON:
        raise ValueError(
            f"{cls}: {name}={mul!r} is so close to 1 that {MAX_CYCLES} cycles of the first length {first} end at "
            f"step {int(starts[-1])}, before step {HORIZON}; jaxsched tabulates at most {MAX_CYCLES} cycle starts "
            f"to place each step exactly. Use {name}=1.0 (equal cycles) or a larger multiplier."
        )


def _representable(first: int, mul: float, limit: int | None) -> tuple[np.ndarray, ...]:
    """:func:`_table` cut to the cycles that start at a representable step: the one cut for :func:`cycle` and
    :func:`cycle_left`, whose indices must agree. Compared below the largest step + 1, since ``float(2**63 - 1)``
    is ``2**63``, whose int64 cast wraps."""
    table = _table(first, mul, limit)
    keep = table[0] < float(int_max()) + 1.0
    return tuple(a[keep] for a in table)


def cycle(e: Array, first: int, mul: float, limit: int | None, dtype) -> tuple[Array, Array, Array]:
    """The cycle ``i`` holding step ``e``, the position ``t_curr`` in it and its length ``t_i`` (float).

    ``mul`` is a concrete float >= 1. With ``limit``, ``i`` is clamped at ``limit`` (every cycle from the limit
    on is "past the limit", whatever its position).
    """
    if mul == 1.0:
        i = div(e, first)
        if limit is not None:
            i = jnp.minimum(i, jnp.asarray(min(limit, int_max()), e.dtype))
        return i, mod(e, first).astype(dtype), jnp.asarray(float(first), dtype)
    top = int_max()
    if mul == 2.0:
        # Cycle n starts at first * (2**n - 1): n = floor(log2(e // first + 1)), a count of leading zeros (no
        # log, no table lookup), as jaxsched.CosineAnnealingWarmRestarts does for T_mult=2.
        u = jnp.uint64 if e.dtype == jnp.int64 else jnp.uint32
        q = div(e, first).astype(u) + 1
        n = ((jnp.iinfo(u).bits - 1) - lax.clz(q)).astype(e.dtype)
        ones = jnp.ones_like(q)
        start = (first * (jnp.left_shift(ones, n.astype(u)) - 1)).astype(e.dtype)
        length = first * jnp.left_shift(ones, n.astype(u)).astype(dtype)
        if limit is not None:
            n = jnp.minimum(n, jnp.asarray(min(limit, top), e.dtype))
        return n, (e - start).astype(dtype), length
    if float(mul).is_integer():
        i, t_curr, t_i = _integer_cycle(e, first, int(mul), dtype)
        if limit is not None:
            i = jnp.minimum(i, jnp.asarray(min(limit, top), e.dtype))
        return i, t_curr, t_i
    ceil, off, _, lengths = _representable(first, mul, limit)
    # a sentinel so that est + 1 is always a valid index (never compared: est < last guards it)
    starts = jnp.asarray(np.append(ceil.astype(np.int64), np.int64(top)), int_dtype())  # top: not via float64
    last = len(ceil) - 1
    # estimate with the log formula (can be one cycle off), then correct with two exact integer comparisons
    ftype = jnp.float64 if e.dtype == jnp.int64 else jnp.float32
    x = e.astype(ftype) * ((mul - 1.0) / first)
    est = jnp.clip(jnp.floor(jnp.log1p(x) * (1.0 / math.log(mul))).astype(e.dtype), 0, last)
    est = jnp.clip(est - (e < starts[est]).astype(e.dtype), 0, last)
    i = est + ((est < last) & (e >= starts[est + 1])).astype(e.dtype)
    t_curr = (e - starts[i]).astype(dtype) + jnp.asarray(off, dtype)[i]
    return i, t_curr, jnp.asarray(lengths, dtype)[i]


def cycle_left(e: Array, i: Array, t_curr: Array, t_i: Array, first: int, mul: float, limit: int | None,
               dtype) -> Array:
    """``t_i - t_curr``, what is left of cycle ``i`` at step ``e`` (``i, t_curr, t_i`` from :func:`cycle`), without
    the cancellation of that difference near the cycle's end.

    With a fractional multiplier the next cycle starts between two steps; a step just before it (``1e-5`` of a
    cycle, for ``mul=1.00001``) would keep only the absolute precision of ``t_i`` and ``t_curr`` in float32, which a
    power below 1 (timm's PolyLRScheduler) turns into a large relative error. Here it is ``(floor(next start) -
    e) + frac(next start)``, two non-negative terms from the exact table. Integer multipliers leave whole steps
    (``t_i - t_curr`` is exact).
    """
    if float(mul).is_integer():
        return t_i - t_curr
    ceil, _, frac, _ = _representable(first, mul, limit)
    floors = jnp.asarray((ceil - (frac > 0)).astype(np.int64), int_dtype())
    last = len(ceil) - 1
    j = jnp.minimum(i + 1, last)
    exact = (floors[j] - e).astype(dtype) + jnp.asarray(frac, dtype)[j]
    return jnp.where(i < last, exact, t_i - t_curr)  # past the table: the next start is not tabulated


def _integer_cycle(e: Array, first: int, m: int, dtype) -> tuple[Array, Array, Array]:
    """:func:`cycle` for an integer multiplier ``m >= 3``, exact and without table lookups.

    Cycle ``n`` starts at ``first * G(n)`` with ``G(n) = 1 + m + ... + m**(n-1)``. The log formula's estimate of
    ``n`` is corrected by one exact integer comparison each way; ``G(n)`` is formed from the bits of ``n`` with
    ``G(a + b) = G(a) + G(b) + (m - 1) G(a) G(b)``, whose terms never exceed the result (no overflow where the
    start is a representable step; discarded branches may wrap).
    """
    top = int_max()
    n_max = 0  # the last cycle that starts at a representable step
    while first * ((m ** (n_max + 1) - 1) // (m - 1)) <= top:
        n_max += 1
    ftype = jnp.float64 if e.dtype == jnp.int64 else jnp.float32
    est = jnp.floor(jnp.log1p(e.astype(ftype) * ((m - 1) / first)) * (1.0 / math.log(m)))
    est = jnp.clip(est.astype(e.dtype), 0, n_max)
    g = jnp.zeros_like(e)
    bit = 0
    while (1 << bit) <= n_max:
        gb = jnp.asarray((m ** (1 << bit) - 1) // (m - 1), e.dtype)
        g = jnp.where((est >> bit) & 1 == 1, g + gb + (m - 1) * g * gb, g)
        bit += 1
    late = e < first * g  # the estimate is one cycle late
    est = jnp.where(late, est - 1, est)
    g = jnp.where(late, div(g - 1, m), g)
    g_next = m * g + 1
    early = (est < n_max) & (e >= first * g_next)  # one cycle early
    est = jnp.where(early, est + 1, est)
    g = jnp.where(early, g_next, g)
    length = (g.astype(dtype) * (m - 1) + 1.0) * first  # first * m ** est
    return est, (e - first * g).astype(dtype), length


def power_of(base, k: Array, dtype) -> Array:
    """``base ** k`` for an integer array ``k >= 0``; no transcendental at all when ``base`` is a concrete 1."""
    if is_concrete(base) and float(base) == 1.0:
        return jnp.ones(k.shape, dtype)
    return int_pow(base, k, dtype)


def cos_half(x: Array) -> Array:
    """``(1 + cos(pi x)) / 2`` as ``cos(pi x / 2) ** 2``: one transcendental, no cancellation near the bottom."""
    c = jnp.cos((jnp.pi / 2) * x)
    return c * c
