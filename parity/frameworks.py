"""The parity report across frameworks: common recipes as torch, transformers, timm, Keras and optax write them.

Each :class:`FrameworkCase` is one recipe (warm-up then cosine, step decay, exponential, restarts, polynomial,
plateau) and each :class:`Writing` is how one framework spells it, with the live library's trajectory as the
reference and, where jaxsched mirrors that framework, the jaxsched schedule beside it (float32 and float64 under
``jax.jit``, errors as a fraction of the largest LR, the same contract as the torch report: 1e-6 / 1e-10).
The differences *between* frameworks (Keras' cosine clamps where torch's is periodic, timm counts its warm-up
from ``warmup_lr_init`` and steps per epoch by default, transformers' warm-up starts at 0, ...) are measured
against the first writing of the case and shown in the table.

    python -m parity.frameworks list
    python -m parity.frameworks check            # exit 1 if a jaxsched mirror misses its tolerance
    python -m parity.frameworks report --out DIR # frameworks.md and one PNG per case

Index ``k`` is the LR the ``k``-th update uses: torch and transformers after ``k`` ``scheduler.step()`` calls,
timm after ``step(k)`` / ``step_update(k)``, Keras ``schedule(k)``, optax ``schedule(k)``. Libraries that are
not installed are reported as unavailable, not failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxsched
from jaxsched import keras as jk
from jaxsched import timm as jt
from jaxsched import transformers as jtr

TOLERANCE = {"float32": 1e-6, "float64": 1e-10}
LR = 0.1


@dataclasses.dataclass(frozen=True)
class Writing:
    """One framework's spelling of a recipe.

    ``reference()`` runs the live library (float64 array of shape ``(steps + 1,)``, or raises ImportError);
    ``mirror()`` is the jaxsched schedule that reproduces it (None where jaxsched has no mirror: optax is JAX).
    ``metrics`` (plateau recipes): the metric fed to each step.
    """

    framework: str
    code: str
    reference: Callable[[int], np.ndarray]
    mirror: Callable[[], Any] | None = None
    #: ``(first cycle, multiplier)`` of a library that finds the cycle with float64 ``floor(log(...))``: at an
    #: exact restart it can be one cycle short; those steps are reported apart, not as jaxsched errors.
    restarts: tuple[int, float] | None = None


@dataclasses.dataclass(frozen=True)
class FrameworkCase:
    name: str
    steps: int
    note: str
    writings: tuple[Writing, ...]
    metrics: tuple[float, ...] = ()
    kind: str = "framework"


@dataclasses.dataclass
class WritingResult:
    framework: str
    code: str
    available: bool = True
    reason: str = ""
    ref: np.ndarray | None = None
    mirror: str = ""
    err: dict = dataclasses.field(default_factory=dict)  # precision -> error of the jaxsched mirror
    diff_first: float = float("nan")  # max |this - first writing| / max |first writing|
    short_at: list = dataclasses.field(default_factory=list)  # exact restarts where the library is a cycle short

    @property
    def passed(self) -> bool:
        return all(self.err[p] <= TOLERANCE[p] for p in self.err)


# ----------------------------------------------------------------------------------------------------------
# the live libraries


def _torch_optimizer(lr=LR):
    import torch

    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _run_torch_like(make, n: int, step: Callable[[Any, int], None] | None = None) -> np.ndarray:
    """Build a torch-optimizer scheduler with ``make(opt)``, record the LR for ``k = 0..n``."""
    opt = _torch_optimizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        out = []
        for k in range(n + 1):
            if step is None:
                if k:
                    sched.step()
            else:
                step(sched, k)
            out.append(float(opt.param_groups[0]["lr"]))
    return np.asarray(out, np.float64)


def torch_ref(build: Callable[[Any], Any]) -> Callable[[int], np.ndarray]:
    return lambda n: _run_torch_like(build, n)


def transformers_ref(name: str, **kw) -> Callable[[int], np.ndarray]:
    def run(n):
        import transformers

        return _run_torch_like(lambda opt: transformers.get_scheduler(name, opt, **kw), n)
    return run


def _timm():
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests._timm_loader import load_timm_scheduler

    ts = load_timm_scheduler()
    if ts is None:
        raise ImportError("timm is not installed")
    return ts


def timm_ref(cls: str, per_update: bool = False, **kw) -> Callable[[int], np.ndarray]:
    def run(n):
        ts = _timm()
        make = lambda opt: getattr(ts, cls)(opt, **kw)  # noqa: E731
        step = (lambda s, k: s.step_update(k)) if per_update else (lambda s, k: s.step(k))
        return _run_torch_like(make, n, step)
    return run


@contextlib.contextmanager
def keras_float64(patched: bool = True):
    """Keras' floatx float64 under x64. Keras 3.15's JAX backend computes cos, tanh, floor and ceil of a float64
    tensor in float32 (``dtypes.result_type`` maps 64-bit result types to 32 bits); ``patched`` keeps them in
    float64 for the reference, Keras' schedule code unchanged."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras.src.backend.jax import numpy as backend_numpy

    def keep64(fn):
        def op(x):
            x = jnp.asarray(x)
            if jnp.issubdtype(x.dtype, jnp.integer):
                x = x.astype(keras.config.floatx())
            return fn(x)
        return op

    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    ops = {"cos": jnp.cos, "tanh": jnp.tanh, "floor": jnp.floor, "ceil": jnp.ceil} if patched else {}
    saved = {k: getattr(backend_numpy, k) for k in ops}
    try:
        for k, fn in ops.items():
            setattr(backend_numpy, k, keep64(fn))
        with jax.enable_x64(True):
            yield keras
    finally:
        for k, fn in saved.items():
            setattr(backend_numpy, k, fn)
        keras.config.set_floatx(old)


def keras_steps(schedule: Callable, n: int) -> jax.Array:
    """A Keras schedule at steps ``0..n``, vectorised, with Keras' arithmetic as written (run inside
    :func:`keras_float64` for the float64 reference).

    XLA's algebraic simplifier (``algsimp``) rewrites a division by a constant or a broadcast scalar, ``t / T``,
    into ``t * (1 / T)``, and ``49 * (1 / 49) = 0.9999999999999999``: a vectorised, compiled trajectory then floors
    ``t / decay_steps`` one short at exact multiples (``InverseTimeDecay(decay_steps=49, staircase=True)`` would
    hold ``initial_learning_rate`` at step 49). Keras' own code divides, and Keras called on a step eagerly gives
    the floored quotient, so the reference is compiled with that pass off (a step at a time, eagerly, is 50x slower).
    """
    steps = jnp.arange(n + 1)
    compiled = jax.jit(jax.vmap(schedule)).lower(steps).compile(
        compiler_options={"xla_disable_hlo_passes": "algsimp"})
    return compiled(steps)


def keras_ref(cls: str, **kw) -> Callable[[int], np.ndarray]:
    def run(n):
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        if keras.backend.backend() != "jax":
            raise ImportError(f"Keras runs on the {keras.backend.backend()} backend, not JAX")
        with keras_float64() as k:
            s = getattr(k.optimizers.schedules, cls)(**kw)
            return np.asarray(keras_steps(s, n), np.float64)
    return run


def optax_ref(make: Callable[[], Callable]) -> Callable[[int], np.ndarray]:
    def run(n):
        with jax.enable_x64(True):
            return np.asarray(jax.vmap(make())(jnp.arange(n + 1)), np.float64)
    return run


# ----------------------------------------------------------------------------------------------------------
# the recipes


def _plateau_losses(n: int = 60) -> tuple[float, ...]:
    k = np.arange(n)
    loss = 0.4 + 1.5 * np.exp(-k / 8.0)
    loss[20:] = np.maximum(loss[20:], loss[19])  # a plateau from epoch 20
    loss[40:] -= 0.05
    loss[45:] = loss[44]
    return tuple(float(round(x, 6)) for x in loss)


def _cases() -> list[FrameworkCase]:
    import optax

    N, W = 100, 10
    cases = [
        FrameworkCase(
            "warm-up then cosine (10 + 90 steps)", N,
            "torch's LinearLR starts at start_factor * lr and its cosine is periodic (it would rise after T_max); "
            "transformers' and optax's warm-ups start at 0; timm starts at warmup_lr_init and counts in epochs "
            "(step(epoch)) unless t_in_epochs=False; Keras' CosineDecay holds its floor after decay_steps.",
            (
                Writing("torch", "SequentialLR([LinearLR(opt, 0.01, total_iters=10), CosineAnnealingLR(opt, 90)], "
                                 "milestones=[10])",
                        lambda n: _torch_from_jaxsched(_torch_warm_cos(), n), _torch_warm_cos),
                Writing("transformers", "get_cosine_schedule_with_warmup(opt, 10, 100)",
                        transformers_ref("cosine", num_warmup_steps=W, num_training_steps=N),
                        lambda: jtr.CosineScheduleWithWarmup(LR, num_warmup_steps=W, num_training_steps=N)),
                Writing("timm", "CosineLRScheduler(opt, t_initial=90, warmup_t=10, warmup_lr_init=1e-3, "
                                "warmup_prefix=True); step(epoch)",
                        timm_ref("CosineLRScheduler", t_initial=N - W, warmup_t=W, warmup_lr_init=1e-3,
                                 warmup_prefix=True),
                        lambda: jt.CosineLRScheduler(LR, t_initial=N - W, warmup_t=W, warmup_lr_init=1e-3,
                                                     warmup_prefix=True)),
                Writing("keras", "CosineDecay(1e-3, decay_steps=90, warmup_target=0.1, warmup_steps=10)",
                        keras_ref("CosineDecay", initial_learning_rate=1e-3, decay_steps=N - W, warmup_target=LR,
                                  warmup_steps=W),
                        lambda: jk.CosineDecay(1e-3, decay_steps=N - W, warmup_target=LR, warmup_steps=W)),
                Writing("optax", "warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)",
                        optax_ref(lambda: optax.warmup_cosine_decay_schedule(0.0, LR, W, N))),
            )),
        FrameworkCase(
            "step decay (x0.1 every 30 steps)", N,
            "The same values everywhere; Keras writes it as a staircase ExponentialDecay.",
            (
                Writing("torch", "StepLR(opt, step_size=30, gamma=0.1)",
                        lambda n: _torch_from_jaxsched(jaxsched.StepLR(LR, step_size=30, gamma=0.1), n),
                        lambda: jaxsched.StepLR(LR, step_size=30, gamma=0.1)),
                Writing("timm", "StepLRScheduler(opt, decay_t=30, decay_rate=0.1)",
                        timm_ref("StepLRScheduler", decay_t=30, decay_rate=0.1),
                        lambda: jt.StepLRScheduler(LR, decay_t=30, decay_rate=0.1)),
                Writing("keras", "ExponentialDecay(0.1, 30, 0.1, staircase=True)",
                        keras_ref("ExponentialDecay", initial_learning_rate=LR, decay_steps=30, decay_rate=0.1,
                                  staircase=True),
                        lambda: jk.ExponentialDecay(LR, decay_steps=30, decay_rate=0.1, staircase=True)),
                Writing("optax", "exponential_decay(0.1, 30, 0.1, staircase=True)",
                        optax_ref(lambda: optax.exponential_decay(LR, 30, 0.1, staircase=True))),
            )),
        FrameworkCase(
            "exponential (x0.95 per step)", N, "The same values everywhere (timm: a StepLRScheduler with decay_t=1).",
            (
                Writing("torch", "ExponentialLR(opt, gamma=0.95)",
                        lambda n: _torch_from_jaxsched(jaxsched.ExponentialLR(LR, gamma=0.95), n),
                        lambda: jaxsched.ExponentialLR(LR, gamma=0.95)),
                Writing("timm", "StepLRScheduler(opt, decay_t=1, decay_rate=0.95)",
                        timm_ref("StepLRScheduler", decay_t=1, decay_rate=0.95),
                        lambda: jt.StepLRScheduler(LR, decay_t=1, decay_rate=0.95)),
                Writing("keras", "ExponentialDecay(0.1, 1, 0.95)",
                        keras_ref("ExponentialDecay", initial_learning_rate=LR, decay_steps=1, decay_rate=0.95),
                        lambda: jk.ExponentialDecay(LR, decay_steps=1, decay_rate=0.95)),
                Writing("optax", "exponential_decay(0.1, 1, 0.95)",
                        optax_ref(lambda: optax.exponential_decay(LR, 1, 0.95))),
            )),
        FrameworkCase(
            "restarts (cycles of 10, 20, 40, ...)", 150,
            "timm's cycle limit must be raised (default 1); optax needs one sgdr segment per cycle, and its sgdr "
            "restarts one step later than torch's. Keras and timm find the cycle with floor(log(1 + t/T (m - 1)) / "
            "log m): in float64, XLA's log puts step 70 (the start of the 4th cycle) one cycle short (log 8 / log 2 "
            "= 2.9999999999999996), so Keras' formula gives the bottom of cycle 3 there (Keras as installed rounds "
            "that quotient to float32 in its floor and happens to land right; timm's math.log does too); jaxsched "
            "places every step exactly.",
            (
                Writing("torch", "CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2)",
                        lambda n: _torch_from_jaxsched(jaxsched.CosineAnnealingWarmRestarts(LR, T_0=10, T_mult=2), n),
                        lambda: jaxsched.CosineAnnealingWarmRestarts(LR, T_0=10, T_mult=2)),
                Writing("timm", "CosineLRScheduler(opt, t_initial=10, cycle_mul=2, cycle_limit=10)",
                        timm_ref("CosineLRScheduler", t_initial=10, cycle_mul=2.0, cycle_limit=10),
                        lambda: jt.CosineLRScheduler(LR, t_initial=10, cycle_mul=2.0, cycle_limit=10),
                        restarts=(10, 2.0)),
                Writing("keras", "CosineDecayRestarts(0.1, 10, t_mul=2.0)",
                        keras_ref("CosineDecayRestarts", initial_learning_rate=LR, first_decay_steps=10, t_mul=2.0),
                        lambda: jk.CosineDecayRestarts(LR, first_decay_steps=10, t_mul=2.0), restarts=(10, 2.0)),
                Writing("optax", "sgdr_schedule([10, 20, 40, 80] cycles)",
                        optax_ref(lambda: optax.sgdr_schedule([
                            dict(init_value=LR, peak_value=LR, warmup_steps=0, decay_steps=10 * 2 ** i, end_value=0.0)
                            for i in range(4)]))),
            )),
        FrameworkCase(
            "polynomial (power 2 over 100 steps)", 120,
            "Keras' PolynomialDecay ends at end_learning_rate (default 1e-4, set to 0 here); transformers' "
            "polynomial decays to lr_end (default 1e-7); timm's default power is 0.5.",
            (
                Writing("torch", "PolynomialLR(opt, total_iters=100, power=2.0)",
                        lambda n: _torch_from_jaxsched(jaxsched.PolynomialLR(LR, total_iters=N, power=2.0), n),
                        lambda: jaxsched.PolynomialLR(LR, total_iters=N, power=2.0)),
                Writing("transformers", "get_polynomial_decay_schedule_with_warmup(opt, 0, 100, lr_end=1e-7, power=2)",
                        transformers_ref("polynomial", num_warmup_steps=0, num_training_steps=N,
                                         scheduler_specific_kwargs={"power": 2.0}),
                        lambda: jtr.PolynomialDecayScheduleWithWarmup(LR, num_warmup_steps=0, num_training_steps=N,
                                                                      power=2.0)),
                Writing("timm", "PolyLRScheduler(opt, t_initial=100, power=2.0)",
                        timm_ref("PolyLRScheduler", t_initial=N, power=2.0),
                        lambda: jt.PolyLRScheduler(LR, t_initial=N, power=2.0)),
                Writing("keras", "PolynomialDecay(0.1, 100, end_learning_rate=0.0, power=2.0)",
                        keras_ref("PolynomialDecay", initial_learning_rate=LR, decay_steps=N, end_learning_rate=0.0,
                                  power=2.0),
                        lambda: jk.PolynomialDecay(LR, decay_steps=N, end_learning_rate=0.0, power=2.0)),
                Writing("optax", "polynomial_schedule(0.1, 0.0, 2, 100)",
                        optax_ref(lambda: optax.polynomial_schedule(LR, 0.0, 2, N))),
            )),
    ]
    losses = _plateau_losses()
    cases.append(FrameworkCase(
        "plateau (patience 5, x0.5, loss curve with plateaus)", len(losses),
        "timm's PlateauLRScheduler is torch's ReduceLROnPlateau behind a warm-up, with mode 'max' by default (set "
        "'min' here); Keras has a ReduceLROnPlateau callback but no schedule; optax.contrib.reduce_on_plateau "
        "decides one epoch earlier than torch (not shown).",
        (
            Writing("torch", "ReduceLROnPlateau(opt, patience=5, factor=0.5); step(loss)",
                    _plateau_ref("torch", losses),
                    lambda: jaxsched.ReduceLROnPlateau(LR, patience=5, factor=0.5)),
            Writing("timm", "PlateauLRScheduler(opt, decay_rate=0.5, patience_t=5, mode='min'); step(epoch, loss)",
                    _plateau_ref("timm", losses),
                    lambda: jt.PlateauLRScheduler(LR, decay_rate=0.5, patience_t=5, mode="min")),
        ), metrics=losses))
    return cases


def _torch_warm_cos():
    return jaxsched.SequentialLR([jaxsched.LinearLR(LR, start_factor=0.01, total_iters=10),
                                  jaxsched.CosineAnnealingLR(LR, T_max=90)], milestones=[10])


def _torch_from_jaxsched(s, n: int) -> np.ndarray:
    from .torch_ref import torch_trajectory

    return np.asarray(torch_trajectory(s, n)[0], np.float64)[:, 0]


def _plateau_ref(which: str, losses) -> Callable[[int], np.ndarray]:
    """Index k: the LR after k metric steps (k = 0: after construction)."""
    def run(n):
        import torch

        opt = _torch_optimizer()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if which == "torch":
                sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=5, factor=0.5)
                step = lambda k, m: sched.step(m)  # noqa: E731
            else:
                sched = _timm().PlateauLRScheduler(opt, decay_rate=0.5, patience_t=5, mode="min")
                step = lambda k, m: sched.step(k, m)  # noqa: E731
            out = [float(opt.param_groups[0]["lr"])]
            for k, m in enumerate(losses[:n], start=1):
                step(k, m)
                out.append(float(opt.param_groups[0]["lr"]))
        return np.asarray(out, np.float64)
    return run


# ----------------------------------------------------------------------------------------------------------
# running


def _mirror_values(s, case: FrameworkCase, precision: str) -> np.ndarray:
    x64 = precision == "float64"
    with jax.enable_x64(x64):
        want = jnp.float64 if x64 else jnp.float32
        if isinstance(s, jaxsched.Schedule):
            out = jax.jit(s)(jnp.arange(case.steps + 1))
        else:  # a stateful (metric-driven) schedule fed the case's metrics
            def body(state, m):
                state = s.update(state, value=m)
                return state, s(state)
            st0 = s.init()
            _, rest = jax.jit(lambda ms: jax.lax.scan(body, st0, ms))(jnp.asarray(case.metrics, want))
            out = jnp.concatenate([jnp.reshape(s(st0), (1,)), rest.reshape(-1)])
        assert out.dtype == want, (out.dtype, want)
        return np.asarray(out, np.float64).reshape(-1)


def exact_restarts(first: int, mul: float, n: int) -> set[int]:
    """The steps ``<= n`` at which a cycle starts exactly (rational arithmetic)."""
    from fractions import Fraction

    out, m, i, start = set(), Fraction(mul), 1, Fraction(first)
    while start <= n:
        if start.denominator == 1:
            out.add(int(start))
        start += first * m**i
        i += 1
    return out


def run_case(case: FrameworkCase) -> list[WritingResult]:
    results = []
    first = None
    for w in case.writings:
        r = WritingResult(w.framework, w.code)
        try:
            r.ref = np.asarray(w.reference(case.steps), np.float64).reshape(-1)
        except ImportError as err:
            r.available, r.reason = False, f"{w.framework} unavailable: {err}"
            results.append(r)
            continue
        if first is None:
            first = r.ref
        r.diff_first = float(np.max(np.abs(r.ref - first)) / np.max(np.abs(first)))
        if w.mirror is not None:
            s = w.mirror()
            r.mirror = repr(s)
            scale = float(np.max(np.abs(r.ref))) or 1.0
            starts = exact_restarts(*w.restarts, case.steps) if w.restarts else set()
            for p in TOLERANCE:
                dev = np.abs(_mirror_values(s, case, p) - r.ref) / scale
                short = [k for k in np.flatnonzero(dev > TOLERANCE[p]).tolist() if k in starts]
                r.short_at = sorted(set(r.short_at) | set(short))
                dev[short] = 0.0
                r.err[p] = float(np.max(dev))
        results.append(r)
    return results


CASES: list[FrameworkCase] = []


def cases() -> list[FrameworkCase]:
    if not CASES:
        CASES.extend(_cases())
    return CASES


def matching(only: str | None = None) -> list[FrameworkCase]:
    """The cases whose name or one of whose frameworks contains ``only`` (case-insensitive); may be empty."""
    def hit(c: FrameworkCase) -> bool:
        text = " ".join([c.name, *(w.framework for w in c.writings)]).lower()
        return not only or only.lower() in text
    return [c for c in cases() if hit(c)]


def select(only: str | None = None) -> list[FrameworkCase]:
    """:func:`matching`, refusing a filter that matches nothing."""
    chosen = matching(only)
    if not chosen:
        raise SystemExit(f"parity.frameworks: no case name contains {only!r}.")
    return chosen


def markdown(all_results: list[tuple[FrameworkCase, list[WritingResult]]], pngs: dict[str, str]) -> str:
    lines = ["# Parity across frameworks", "",
             "Each recipe as each framework writes it: the live library's trajectory, the jaxsched mirror's error "
             "(max |jaxsched - library| / max |library|, float32 and float64 under jit; targets 1e-6 / 1e-10) and how "
             "far the framework's values are from the first writing (the differences between frameworks).", ""]
    for case, results in all_results:
        lines += [f"## {case.name}", "", case.note, ""]
        if case.name in pngs:
            lines += [f"![{case.name}]({pngs[case.name]})", ""]
        lines += ["| framework | as written there | jaxsched mirror | error float32 | error float64 | "
                  f"differs from {results[0].framework} by |", "|---|---|---|---|---|---|"]
        for r in results:
            if not r.available:
                lines.append(f"| {r.framework} | `{r.code}` | | | | {r.reason} |")
                continue
            e32 = f"{r.err['float32']:.2g}" if "float32" in r.err else "-"
            e64 = f"{r.err['float64']:.2g}" if "float64" in r.err else "-"
            verdict = "" if not r.err else (" (pass)" if r.passed else " (FAIL)")
            if r.short_at:
                verdict += (f"; {r.framework} is one cycle short at the exact restart(s) {r.short_at} (float64 "
                            f"floor(log(...))), where jaxsched gives the top of the new cycle")
            lines.append(f"| {r.framework} | `{r.code}` | `{r.mirror or 'none (optax is JAX)'}`{verdict} | {e32} | "
                         f"{e64} | {r.diff_first:.3g} of max LR |")
        lines.append("")
    return "\n".join(lines)


def _plot(case: FrameworkCase, results: list[WritingResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    for r in results:
        if r.ref is not None:
            ax.plot(np.arange(len(r.ref)), r.ref, label=r.framework, lw=1.4)
    ax.set_xlabel("update k")
    ax.set_ylabel("LR")
    ax.set_title(case.name, fontsize=10)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity.frameworks", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "check", "report"):
        p = sub.add_parser(name)
        p.add_argument("--only", help="only cases whose name contains this text")
        if name == "report":
            p.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    chosen = select(args.only)
    if args.command == "list":
        for c in chosen:
            print(f"{c.kind:9}  {c.steps:5}  {c.name}  [{', '.join(w.framework for w in c.writings)}]")
        return 0
    all_results = [(c, run_case(c)) for c in chosen]
    failed = [(c.name, r.framework) for c, rs in all_results for r in rs if r.available and not r.passed]
    for c, rs in all_results:
        for r in rs:
            errs = " ".join(f"{p}={r.err[p]:.2g}" for p in r.err) if r.available else r.reason
            short = f"  (one cycle short at {r.short_at})" if r.short_at else ""
            print(f"{c.name[:40]:40}  {r.framework:12}  {errs:32}  differs from {rs[0].framework} by "
                  f"{r.diff_first:.3g}{short}")
    if args.command == "report":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pngs = {}
        for i, (c, rs) in enumerate(all_results):
            png = f"frameworks_{i}.png"
            _plot(c, rs, out / png)
            pngs[c.name] = png
        (out / "frameworks.md").write_text(markdown(all_results, pngs))
        print(f"wrote {out / 'frameworks.md'}")
    if failed:
        print(f"FAILED: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
