"""What the Keras and timm catalogues cost: a 1M-step trajectory of each schedule against a bare cosine.

Run from the repository root::

    python -m benchmarks.schedules_frameworks                 # about 30 s on a 2-core CPU
    python -m benchmarks.schedules_frameworks --quick         # seconds: every code path, tiny sizes

Each schedule's whole trajectory ``s(0..N-1)`` (``N = 1,000,000``, float32) is one jitted call; the calls are
timed round-robin with the baselines of ``benchmarks.schedules`` (a bare ``jnp.cos`` over the steps, and the
floor: writing ``N`` float32 values), and each ratio is the best round of the schedule over the best round of
its baseline (interference on a shared machine only adds time). The targets are those of the cost benchmark:
``transcendental`` (one cos/exp/tanh per step): within 1.5x the bare cosine; ``cycles`` (restart table and a
cosine): within 2x the bare cosine; ``piecewise``: within 2x the floor.
``cases(n)`` is the list the main benchmark can take over.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsched import keras as jk
from jaxsched import timm as jt

TARGETS = {"transcendental": ("bare cos", 1.5), "cycles": ("bare cos", 2.0), "piecewise": ("floor", 2.0)}


def cases(n: int) -> list[tuple[str, Any, str]]:
    """``(label, schedule, kind)`` for every step schedule of jaxsched.keras and jaxsched.timm, for ``n`` steps."""
    q, warm = max(n // 10, 1), max(n // 100, 1)
    t0 = max(n // 500, 1)
    return [
        ("keras.ExponentialDecay", jk.ExponentialDecay(0.1, decay_steps=q, decay_rate=0.5), "transcendental"),
        ("keras.PiecewiseConstantDecay", jk.PiecewiseConstantDecay([3 * q, 6 * q, 9 * q], [0.1, 0.01, 1e-3, 1e-4]),
         "piecewise"),
        ("keras.PolynomialDecay(power=2)", jk.PolynomialDecay(0.1, decay_steps=n, power=2.0), "transcendental"),
        ("keras.PolynomialDecay(power=1)", jk.PolynomialDecay(0.1, decay_steps=n), "piecewise"),
        ("keras.InverseTimeDecay", jk.InverseTimeDecay(0.1, decay_steps=q, decay_rate=0.5), "piecewise"),
        ("keras.CosineDecay(warm-up)", jk.CosineDecay(0.0, decay_steps=n - warm, warmup_target=0.1,
                                                      warmup_steps=warm), "transcendental"),
        ("keras.CosineDecayRestarts(t_mul=2)", jk.CosineDecayRestarts(0.1, first_decay_steps=t0), "cycles"),
        ("keras.CosineDecayRestarts(t_mul=3)", jk.CosineDecayRestarts(0.1, first_decay_steps=t0, t_mul=3.0), "cycles"),
        ("keras.CosineDecayRestarts(t_mul=1.5: table lookups)",
         jk.CosineDecayRestarts(0.1, first_decay_steps=t0, t_mul=1.5), "cycles"),
        ("keras.CosineDecayRestarts(t_mul=1, m_mul=0.9)",
         jk.CosineDecayRestarts(0.1, first_decay_steps=q, t_mul=1.0, m_mul=0.9), "cycles"),
        ("timm.CosineLRScheduler(warm-up)", jt.CosineLRScheduler(0.1, t_initial=n, warmup_t=warm,
                                                                 warmup_lr_init=1e-4), "transcendental"),
        ("timm.CosineLRScheduler(cycle_mul=2, 9 cycles)", jt.CosineLRScheduler(
            0.1, t_initial=t0, cycle_mul=2.0, cycle_decay=0.8, cycle_limit=9), "cycles"),
        ("timm.TanhLRScheduler", jt.TanhLRScheduler(0.1, t_initial=n, warmup_t=warm), "transcendental"),
        ("timm.PolyLRScheduler(power=0.5)", jt.PolyLRScheduler(0.1, t_initial=n), "transcendental"),
        ("timm.StepLRScheduler", jt.StepLRScheduler(0.1, decay_t=q, decay_rate=0.5, warmup_t=warm),
         "transcendental"),
        ("timm.WSDLRScheduler(1-sqrt)", jt.WSDLRScheduler(0.1, t_initial=n - warm, decay_t=q, warmup_t=warm),
         "transcendental"),
        ("timm.MultiStepLRScheduler", jt.MultiStepLRScheduler(0.1, decay_t=[3 * q, 6 * q, 9 * q], decay_rate=0.1),
         "transcendental"),
    ]


def _baselines(n: int) -> dict[str, Callable]:
    return {
        "floor": lambda e: jnp.full(e.shape, 0.1, jnp.float32),
        "bare cos": lambda e: jnp.cos(e.astype(jnp.float32) * np.float32(math.pi / n)),
    }


def run(n: int, rounds: int) -> dict:
    steps = jax.block_until_ready(jnp.arange(n, dtype=jnp.int32))
    fns: dict[str, Callable] = dict(_baselines(n))
    kinds = {}
    for label, s, kind in cases(n):
        fns[label] = s
        kinds[label] = kind
    compiled = {k: jax.jit(f).lower(steps).compile() for k, f in fns.items()}
    for k, f in compiled.items():
        out = np.asarray(f(steps))
        if not np.all(np.isfinite(out)):
            raise RuntimeError(f"{k} produced a non-finite value")
    times: dict[str, list[float]] = {k: [] for k in compiled}
    names = list(compiled)
    for r in range(rounds):
        j = r % len(names)
        for k in names[j:] + names[:j]:
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[k](steps))
            times[k].append(time.perf_counter() - t0)
    rows = []
    for label, kind in kinds.items():
        base, target = TARGETS[kind]
        ratio = min(times[label]) / min(times[base])
        rows.append({"schedule": label, "kind": kind, "best_ms": 1e3 * min(times[label]),
                     "vs": base, "ratio": ratio, "target": target, "ok": ratio <= target})
    return {"n_steps": n, "rounds": rounds, "baselines_ms": {b: 1e3 * min(times[b]) for b in _baselines(n)},
            "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 steps, 2 rounds (a smoke test)")
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    n, rounds = (2_000, 2) if args.quick else (args.steps, args.rounds)
    res = run(n, rounds)
    print(f"{n} steps, best of {rounds} rounds; baselines: "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in res["baselines_ms"].items()))
    print(f"{'schedule':48s} {'kind':15s} {'ms':>8s} {'ratio':>7s}  target")
    for r in res["rows"]:
        print(f"{r['schedule']:48s} {r['kind']:15s} {r['best_ms']:8.2f} {r['ratio']:7.2f}  "
              f"<= {r['target']}x {r['vs']} {'ok' if r['ok'] else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if args.quick or all(r["ok"] for r in res["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
