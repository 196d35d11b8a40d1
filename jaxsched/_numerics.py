"""Numerics shared by every schedule: the compute dtypes, steps as integers, and float64 host constants.

Float results are float64 under ``jax_enable_x64`` and float32 otherwise; step positions are integers of the
matching width. Constants derived from hyperparameters (``log(gamma)``, ``gamma ** k``) are computed once on
the host in float64 and rounded once to the compute dtype.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import jax.core  # jax.core.Tracer: a submodule type checkers see only when imported
import jax.numpy as jnp
import numpy as np

Array = jax.Array




def float_dtype():
    """float64 when ``jax_enable_x64`` is on, float32 otherwise."""
    return jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32


def int_dtype():
    return jnp.int64 if jax.config.read("jax_enable_x64") else jnp.int32


def int_max() -> int:
    return int(np.iinfo(int_dtype()).max)


def inc(count: Array) -> Array:
    """``count + 1`` for an integer counter array, saturating at its dtype's largest value instead of wrapping
    around to a negative count (what a schedule's step does beyond the largest step, too)."""
    top = jnp.asarray(jnp.iinfo(count.dtype).max, count.dtype)
    return count + (count < top).astype(count.dtype)


def as_step(step, cls_name: str) -> Array:
    """The step as a non-negative integer array of the canonical int dtype.

    A Python or NumPy integer above the largest representable step raises; an integer array (uint32,
    uint64, int64, NumPy or JAX, traced or not) saturates at it: the value at a step past the largest one is
    the value at the largest one, never that of a wrapped-around step. (A NumPy int64 passed as an argument
    to a function under ``jax.jit`` with x64 off is narrowed by JAX itself before the schedule sees it.)
    """
    if isinstance(step, bool):
        raise TypeError(f"{cls_name}: step must be an integer, got step={step!r}.")
    if isinstance(step, numbers.Integral):
        if step < 0:
            raise ValueError(f"{cls_name}: step must be >= 0, got step={step!r}.")
        if int(step) > int_max():
            hint = "" if jax.config.read("jax_enable_x64") else "; enable jax_enable_x64 for more"
            raise ValueError(
                f"{cls_name}: step must be <= {int_max()} (the largest {np.dtype(int_dtype()).name}{hint}), "
                f"got step={step!r}."
            )
        return jnp.asarray(int(step), int_dtype())
    if isinstance(step, (np.ndarray, np.generic, list, tuple)):
        host_step = np.asarray(step)
        if np.issubdtype(host_step.dtype, np.integer):
            # saturate on the host, before JAX narrows a 64-bit array to int32 (which wraps around)
            return jnp.asarray(np.clip(host_step, 0, int_max()).astype(np.dtype(int_dtype())))
    step = jnp.asarray(step)
    if not jnp.issubdtype(step.dtype, jnp.integer):
        raise TypeError(
            f"{cls_name}: step must be an integer (the number of scheduler.step() calls), "
            f"got an array of dtype {step.dtype}. Cast it with step.astype(int)."
        )
    if jnp.iinfo(step.dtype).max > int_max():  # uint32 (x64 off), uint64: saturate before the cast wraps
        step = jnp.minimum(step, jnp.asarray(int_max(), step.dtype))
    return jnp.maximum(step.astype(int_dtype()), 0)


#: The largest concrete step a closed form that loops over the steps (a step-dependent MultiplicativeLR, a
#: ChainedScheduler replaying its members) evaluates: beyond it ``s(step)`` refuses and points to Running.
LOOP_STEPS_MAX = 10**7


def check_loop_step(cls_name: str, step, why: str) -> None:
    """Refuse a concrete step above :data:`LOOP_STEPS_MAX` for a closed form that runs one loop iteration per
    step (traced steps cannot be checked and are left to the caller)."""
    if isinstance(step, jax.core.Tracer) or isinstance(step, bool):
        return
    if isinstance(step, numbers.Integral):
        top = int(step)
    elif isinstance(step, (np.ndarray, np.generic, jax.Array, list, tuple)):
        a = np.asarray(step)
        if a.size == 0 or not np.issubdtype(a.dtype, np.integer):
            return
        top = int(a.max())
    else:
        return
    if top > LOOP_STEPS_MAX:
        raise ValueError(
            f"{cls_name}: s(step) runs one loop iteration per step ({why}), so step={top} is refused: it must be "
            f"<= {LOOP_STEPS_MAX}. Follow a long run with jaxsched.Running(schedule) (O(1) per step), "
            f"or evaluate smaller steps."
        )


def div(e: Array, n: int) -> Array:
    """``e // n`` for a non-negative integer array ``e`` and a positive int ``n`` (one integer division;
    ``jnp.floor_divide`` adds sign corrections that steps, clamped to >= 0, never need)."""
    return jax.lax.div(e, jnp.asarray(n, e.dtype))


def mod(e: Array, n: int) -> Array:
    """``e % n`` for a non-negative integer array ``e`` and a positive int ``n``."""
    return jax.lax.rem(e, jnp.asarray(n, e.dtype))


def map_steps(fn: Callable[[Array], Array], e: Array) -> Array:
    """``fn`` on a scalar step, mapped over an array of steps: output shape ``e.shape + fn's shape``."""
    if e.ndim == 0:
        return fn(e)
    flat = jax.vmap(fn)(e.reshape(-1))
    return flat.reshape(e.shape + flat.shape[1:])


def arr(x, dtype) -> Array:
    """A hyperparameter (float, tuple of floats, or a traced leaf) as an array of ``dtype``."""
    if isinstance(x, tuple):
        return jnp.asarray(np.asarray(x, np.float64), dtype) if all(_is_num(v) for v in x) else jnp.stack(
            [jnp.asarray(v).astype(dtype) for v in x]
        )
    if _is_num(x):
        return jnp.asarray(np.float64(x), dtype)
    return jnp.asarray(x).astype(dtype)


def _is_num(x) -> bool:
    return isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool)


def is_concrete(x) -> bool:
    """True for Python numbers and tuples of them: values we can do float64 arithmetic on at trace time."""
    if isinstance(x, tuple):
        return all(_is_num(v) for v in x)
    return _is_num(x)


def host(fn: Callable, jfn: Callable, *xs, dtype):
    """``fn`` in float64 on the host when every input is a concrete number, else ``jfn`` in ``dtype``.

    Derived constants such as ``log(gamma)`` are computed once in float64 and rounded once to the compute
    dtype; in float32 this keeps e.g. ``gamma ** e`` accurate for ``gamma`` close to 1 (rounding ``gamma``
    itself to float32 first would cost up to 1e-4 of the LR).
    """
    if all(is_concrete(x) for x in xs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = fn(*[np.asarray(x, np.float64) for x in xs])
        return jnp.asarray(out, dtype)
    return jfn(*[arr(x, dtype) for x in xs])


def int_pow(base, k: Array, dtype) -> Array:
    """``base ** k`` for a float hyperparameter ``base`` and an integer array ``k >= 0``, NaN-free.

    Computed as ``sign * exp(k * log|base|)`` with ``log|base|`` in float64 when ``base`` is concrete;
    ``base ** 0 == 1`` (also for base 0), ``0 ** k == 0`` for ``k > 0``, negative bases alternate sign.
    """
    if _is_num(base) and base > 0:
        # The common case, decided at trace time: exp(k * log(base)) is already 1 at k = 0 and never 0 or
        # negative, so the selects below would return it unchanged; skipping them keeps the traced program
        # (and so the compile time) small.
        return exp_k_log(k, float(np.log(np.float64(base))), dtype)
    if isinstance(base, tuple) and base and is_concrete(base):  # one per group, each as above
        return jnp.stack([int_pow(b, k, dtype) for b in base], axis=-1)
    if not isinstance(base, tuple) and _is_num(base) and base != 0:
        # a negative base: |base| ** k with its sign (exp_k_log keeps a growing power exact)
        mag = exp_k_log(k, float(np.log(abs(float(base)))), dtype)
        return jnp.where((k % 2) == 1, -mag, mag)
    log_abs = host(lambda b: np.log(np.abs(b)), lambda b: jnp.log(jnp.abs(b)), base, dtype=dtype)
    b = arr(base, dtype)
    kf = k.astype(dtype)
    zero_k = k == 0
    mag = jnp.exp(jnp.where(zero_k, jnp.zeros_like(log_abs), kf * jnp.where(b == 0, 0.0, log_abs)))
    mag = jnp.where((b == 0) & ~zero_k, 0.0, mag)
    odd = (k % 2) == 1
    return jnp.where((b < 0) & odd, -mag, mag)


# ------------------------------------------------------------------------------------------------------------
# float32 arithmetic that keeps what one float32 would lose: a growing exponential with its rounding kept
# (a hi/lo split of k * log(base)), and torch's float64 cycle decisions of CyclicLR, emulated exactly.


def _split8(x: float) -> tuple[float, float]:
    """``x`` as ``hi + lo``: ``hi`` keeps 8 significant bits (so ``k * hi`` is exact in float32 for 16-bit
    integers ``k``), ``lo`` the float64 remainder."""
    if x == 0.0 or not np.isfinite(x):
        return x, 0.0
    m, ex = np.frexp(x)
    hi = float(np.ldexp(np.trunc(m * 256.0) / 256.0, ex))
    return hi, x - hi


def _two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """Knuth's TwoSum: ``s = fl(a + b)`` and the exact rounding error ``t`` (``a + b == s + t``).

    XLA does not reassociate floating-point additions, so the error term survives compilation.
    """
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def exp_k_log(k: Array, log_b: float, dtype) -> Array:
    """``exp(k * log_b)`` for an integer array ``k >= 0`` and a float64 host constant ``log_b``.

    In float32 the product ``k * log_b`` is the exponent of the result, so its rounding (half an ulp of
    ``|k log_b|``) is a relative error of the result: 1.2e-6 for a 1e9-fold LR range test ramp. When the
    result grows (``log_b > 0``: the largest LR is the last one) the product is carried as ``hi + lo``:
    ``log_b`` split into an 8-bit head and a remainder, ``k`` into 16-bit halves, so the head products are
    exact, and TwoSum keeps the rounding of their sum; then ``exp(hi) * (1 + lo)``. Decays (``log_b <= 0``)
    keep the single product: their error is relative to a result that is at most the initial LR, and is at
    most ``6e-8 * |x log x|`` < 2.2e-8 of it. float64 computes the single product (error 1e-16 relative).
    """
    if dtype != jnp.float32 or not log_b > 0.0:
        return jnp.exp(k.astype(dtype) * jnp.asarray(log_b, dtype))
    head, rest = _split8(log_b)
    u = k.astype(jnp.int32)
    k_hi = jax.lax.shift_right_logical(u, jnp.asarray(16, jnp.int32)).astype(dtype) * 65536.0
    k_lo = (u & 0xFFFF).astype(dtype)
    h = jnp.asarray(head, dtype)
    r = jnp.asarray(rest, dtype)
    s, t = _two_sum(k_hi * h, k_lo * h)  # both products exact (<= 24 significant bits)
    s2, t2 = _two_sum(s, k_hi * r + k_lo * r)
    return jnp.exp(s2) * (1.0 + (t + t2))


_U32 = jnp.uint32
_M16 = 0xFFFF


def _mul32(a: Array, b: int) -> tuple[Array, Array]:
    """``a * b`` for a uint32 array ``a`` and a Python int ``0 <= b < 2**32``: the (low, high) uint32 words."""
    b0, b1 = b & _M16, b >> 16
    a0, a1 = a & _U32(_M16), a >> _U32(16)
    ll, lh, hl, hh = a0 * _U32(b0), a0 * _U32(b1), a1 * _U32(b0), a1 * _U32(b1)  # each < 2**32: exact
    mid = (ll >> _U32(16)) + (lh & _U32(_M16)) + (hl & _U32(_M16))
    return (ll & _U32(_M16)) | (mid << _U32(16)), hh + (lh >> _U32(16)) + (hl >> _U32(16)) + (mid >> _U32(16))


def _add_carry(a: Array, b: Array) -> tuple[Array, Array]:
    s = a + b
    return s, (s < a).astype(_U32)


def cyclic_position(e: Array, up: float, total: float, dtype) -> tuple[Array, Array]:
    """torch's CyclicLR ``(cycle, scale_factor)`` at integer steps ``e >= 0``, decided as torch decides them.

    torch computes, in float64, ``cycle = floor(1 + e / total)``, ``x = 1 + e / total - cycle`` and
    ``x / ratio`` if ``x <= ratio`` else ``(x - 1) / (ratio - 1)`` with ``ratio = up / total``. When
    ``e / total`` lies within half a float64 ulp below an integer, torch rounds it up to that integer: a new
    cycle starts (``x = 0``) where exact arithmetic would still be at the end of the previous one
    (``x = 1 - 1e-16``). With ``step_size_down=0`` that is the whole amplitude (``max_lr`` vs ``base_lr``).

    * float64: torch's expression itself (the division by an array: XLA rewrites a division by a constant
      or a broadcast scalar into a multiplication by its rounded reciprocal, which decides differently).
    * float32: ``e / total`` as 64-bit fixed point in uint32 words: ``e * floor(2**96 / total)`` gives the
      integer part ``n`` and the fraction ``f`` to within 2**-64; torch rounds ``e / total`` up to ``n + 1``
      exactly when ``1 - f`` is at most half a float64 ulp at ``n`` (three halves where ``n + 1`` is a power
      of two, from the second rounding of ``1 + q``). Exact up to the float64 ties that need ``1 - f``
      within 2**-64 of that bound. The cycle number saturates at 2**31 - 1 (only ``total < 1`` reaches it).
    """
    ratio = up / total
    if dtype != jnp.float32:
        ef = e.astype(dtype)
        # ef * 0.0 is never simplified away (it is NaN for inf), so this stays a true division
        q = ef / (ef * 0.0 + total)
        y = 1.0 + q
        cyc = jnp.floor(y)
        x = y - cyc
        rise = x / ratio
        fall = (x - 1.0) / (ratio - 1.0) if ratio != 1.0 else rise
        return cyc.astype(e.dtype), jnp.where(x <= ratio, rise, fall)
    from fractions import Fraction

    W = int(Fraction(2**96) // Fraction(total))
    w = [(W >> (32 * i)) & 0xFFFFFFFF for i in range(4)]
    eu = e.astype(_U32)
    p = [_mul32(eu, wi) for wi in w]
    f_lo, c1 = _add_carry(p[0][1], p[1][0])  # fraction bits 2**-64 .. 2**-33
    f_hi, c2 = _add_carry(p[1][1], p[2][0])  # fraction bits 2**-32 .. 2**-1
    f_hi, c3 = _add_carry(f_hi, c1)
    n, c4 = _add_carry(p[2][1], p[3][0])  # the integer part: n (low word) ...
    n, c5 = _add_carry(n, c2 + c3)
    n_hi = p[3][1] + c4 + c5  # ... and its high word (not 0 only for total < 1)
    big = n_hi > 0
    f = f_hi.astype(dtype) * 2.0**-32 + f_lo.astype(dtype) * 2.0**-64
    g_lo = ~f_lo + _U32(1)  # 1 - f, as the two's complement of the fraction words
    g_hi = ~f_hi + (g_lo == 0).astype(_U32)
    g = jnp.where((f_lo == 0) & (f_hi == 0), 1.0, g_hi.astype(dtype) * 2.0**-32 + g_lo.astype(dtype) * 2.0**-64)
    k = jnp.where(big, 63 - jax.lax.clz(n_hi).astype(jnp.int32), 31 - jax.lax.clz(n).astype(jnp.int32))  # log2 n
    pow2 = jnp.where(big, (n == _U32(0xFFFFFFFF)) & ((n_hi & (n_hi + _U32(1))) == 0), (n & (n + _U32(1))) == 0)
    rounds_up = g <= jnp.ldexp(jnp.where(pow2, 3.0, 1.0).astype(dtype), k - 53)
    # torch's x = fl(1 + e / total) - cycle keeps 52 - log2(n) fraction bits: from n >= 2**21 on that is
    # coarser than 2**-31 (and visible in float32 once n >= 2**33, cycles shorter than a quarter step):
    # round the fraction alike (to nearest, in units of 2**sh of its high word)
    sh = jnp.clip(k - 20, 0, 31).astype(_U32)
    half = jnp.where(sh > 0, jax.lax.shift_left(_U32(1), jnp.maximum(sh, _U32(1)) - _U32(1)), _U32(0))
    fq = jax.lax.shift_left(jax.lax.shift_right_logical(f_hi + half, sh), sh)
    coarse = sh > 0
    f = jnp.where(coarse, fq.astype(dtype) * 2.0**-32, f)
    g = jnp.where(coarse, jnp.where(fq == 0, 1.0, (~fq + _U32(1)).astype(dtype) * 2.0**-32), g)
    d = 1.0 - ratio  # x > ratio  <=>  1 - x < 1 - ratio; the fall is (1 - x) / (1 - ratio)
    pos = jnp.where(g >= d, f / ratio, g / (d if d else 1.0))
    pos = jnp.where(rounds_up, 0.0, pos)
    # the cycle number saturates just below 2**31 (total < 1 and steps past 2**31 * total): triangular2's
    # amplitude 2 ** (1 - cycle) is 0 there in float32 either way
    n = jnp.where(big, _U32(2**31 - 3), jnp.minimum(n, _U32(2**31 - 3)))
    return n.astype(e.dtype) + 1 + rounds_up.astype(e.dtype), pos.astype(dtype)


def cos_blend(b: Array, eta: Array, m: Array, T, dtype) -> Array:
    """``eta + (b - eta) * (1 + cos(pi m / T)) / 2`` for integers ``0 <= m <= T``, written as
    ``b * cos(pi m / 2T) ** 2 + eta * sin(pi m / 2T) ** 2``.

    The usual form rounds at the scale of ``max(|b|, |eta|)``: with ``eta_min`` far above the initial LR
    (``CosineAnnealingWarmRestarts(2e-5, eta_min=0.01)``) that is 1e-9, up to 5e-5 of the LRs of a short
    run. Here each term is accurate relative to itself: the smaller of the two squares is a sine of a small
    exact argument (``min(m, T - m)``, so one sine per step), the other is one minus it (at least 1/2).
    ``m = 0`` gives ``b`` and ``m = T`` gives ``eta`` exactly. ``T`` is a Python int or an integer array.
    """
    rest = T - m
    near = m <= rest  # the sine is the smaller square
    t = jnp.minimum(m, rest).astype(dtype)
    y = jnp.sin((jnp.pi / 2) * (t / jnp.asarray(T).astype(dtype)))
    y = y * y
    z = 1.0 - y
    return b * jnp.where(near, z, y) + eta * jnp.where(near, y, z)
