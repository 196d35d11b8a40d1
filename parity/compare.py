"""Run one catalogue case on torch, on jaxsched (float32 and float64, jitted) and on optax; measure the gaps.

Errors are ``max_k |x_k - torch_k| / max_k |torch_k|`` over the whole trajectory and every parameter group
(momentum rows divide by the largest momentum). NaN anywhere makes the error NaN, a failure.
Each precision runs inside ``jax.enable_x64(...)`` and the output dtype is checked, so a float32 number
really comes from a float32 computation under ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxsched
from jaxsched._base import scan_metrics

from .catalogue import Case, PlateauCase
from .torch_ref import make_optimizer, torch_trajectory

PRECISIONS = ("float32", "float64")
#: Parity target: max |jaxsched - torch| as a fraction of the largest LR.
TOLERANCE = {"float32": 1e-6, "float64": 1e-10}


@dataclasses.dataclass
class Trajectories:
    """Everything measured for one case. Arrays are float64 of shape ``(steps + 1, G)``."""

    torch_lr: np.ndarray
    torch_mom: np.ndarray | None
    lr: dict  # precision -> jaxsched LR
    mom: dict  # precision -> jaxsched momentum (or empty)
    optax_lr: dict  # precision -> optax LR over the compared counts (or empty)
    optax_mom: dict


@dataclasses.dataclass
class Result:
    name: str
    kind: str
    steps: int
    note: str = ""
    known_issue: str = ""
    available: bool = True
    reason: str = ""
    err: dict = dataclasses.field(default_factory=dict)  # precision -> LR error (fraction of largest LR)
    mom_err: dict = dataclasses.field(default_factory=dict)
    optax_err: dict = dataclasses.field(default_factory=dict)
    optax_mom_err: dict = dataclasses.field(default_factory=dict)
    optax_text: str = ""
    optax_exact: bool = True
    traj: Trajectories | None = None

    @property
    def passed(self) -> bool:
        if not self.available:
            return True
        return all(self.err[p] <= TOLERANCE[p] and self.mom_err.get(p, 0.0) <= TOLERANCE[p] for p in PRECISIONS)

    @property
    def status(self) -> str:
        if not self.available:
            return "not available"
        return "pass" if self.passed else "FAIL"

    @property
    def optax_verdict(self) -> str:
        """optax's construction against torch, judged by jaxsched's targets in each precision.

        ``"within target"`` (float32 and x64); ``"within target (float32 only)"`` (under x64, fed the int32
        count its optimizers use, optax stays at float32 precision); ``"over target"`` (float32 already over);
        ``"NaN"`` (a NaN or inf in a trajectory); ``"not expressible"`` (only a nearest construction exists: its
        error is shown, not judged); ``"no construction"`` (no optax case, or optax not run).
        """
        if not self.optax_err:
            return "no construction"
        if not self.optax_exact:
            return "not expressible"
        errs = [(p, e) for d in (self.optax_err, self.optax_mom_err) for p, e in d.items()]
        if any(e != e for _, e in errs):
            return "NaN"
        over = {p for p, e in errs if e > TOLERANCE[p]}
        if "float32" in over:
            return "over target"
        return "within target (float32 only)" if over else "within target"


def rel_error(x: np.ndarray, ref: np.ndarray) -> float:
    """``max |x - ref| / max |ref|``; NaN if ``x`` has a NaN or an inf, or the shapes disagree."""
    arr = np.asarray(x, np.float64)
    if arr.shape != ref.shape:
        if arr.size != ref.size:
            return float("nan")
        arr = arr.reshape(ref.shape)
    if not np.all(np.isfinite(arr)):
        return float("nan")
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(arr - ref)) / scale) if arr.size else 0.0


def _as2d(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return a.reshape(a.shape[0], -1)


def _check_dtype(out, precision: str, what: str):
    if out.dtype != np.dtype(precision):
        raise RuntimeError(f"parity: {what} came out as {out.dtype} under precision={precision}; the report "
                           f"would not measure what it claims.")
    return out


def jaxsched_values(case: Case, precision: str):
    """(lr, momentum or None) of the jaxsched schedule for indices ``0..steps``, jitted, in ``precision``."""
    with jax.enable_x64(precision == "float64"):
        s: Any = case.build()
        e = jnp.arange(case.steps + 1)
        if getattr(s, "cycle_momentum", False):  # one compilation for both
            lr, mom = jax.jit(lambda e: (jax.vmap(s)(e), jax.vmap(s.momentum)(e)))(e)
            mom = _as2d(_check_dtype(mom, precision, f"{case.name} momentum"))
        else:
            lr, mom = jax.jit(jax.vmap(s))(e), None
        return _as2d(_check_dtype(lr, precision, f"{case.name} LR")), mom


def _scan_counts(fns, n: int):
    """``fn(count)`` of each ``fn`` for int32 counts ``0..n-1``, one count per iteration of a jitted scan
    (as in a training loop)."""
    counts = jnp.arange(n, dtype=jnp.int32)
    body = lambda carry, k: (carry, tuple(jnp.asarray(f(k)) for f in fns))  # noqa: E731
    return jax.jit(lambda c: jax.lax.scan(body, None, c)[1])(counts)


def optax_values(case: Case, precision: str):
    """(lr, momentum or None) of the optax expert construction, over the counts an optimizer would use."""
    ox = case.optax
    assert ox is not None, f"{case.name} has no optax construction"
    n = ox.steps if ox.steps is not None else case.steps + 1
    with jax.enable_x64(precision == "float64"):
        fns = (ox.lr(),) if ox.momentum is None else (ox.lr(), ox.momentum())
        out = [_as2d(x) for x in _scan_counts(fns, n)]
    return out[0], (out[1] if len(out) > 1 else None)


# ----------------------------------------------------------------------------------------------------------
# ReduceLROnPlateau: the LR after k calls of step(loss_k)


def torch_plateau(case: PlateauCase) -> np.ndarray:
    import torch

    opt = make_optimizer([case.lr], "sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **case.kwargs)
        out = [opt.param_groups[0]["lr"]]
        for loss in case.losses:
            opt.step()
            sched.step(loss)
            out.append(opt.param_groups[0]["lr"])
    return _as2d(out)


def jaxsched_plateau(case: PlateauCase, precision: str) -> np.ndarray:
    with jax.enable_x64(precision == "float64"):
        p = jaxsched.ReduceLROnPlateau(case.lr, **case.kwargs)
        losses = jnp.asarray(np.asarray(case.losses), jnp.dtype(precision))
        lrs = jax.jit(lambda ls: scan_metrics(p, ls))(losses)
        return _as2d(_check_dtype(lrs, precision, f"{case.name} LR"))


def optax_plateau(case: PlateauCase, precision: str) -> np.ndarray:
    import optax

    kw = case.kwargs
    with jax.enable_x64(precision == "float64"):
        tx = optax.contrib.reduce_on_plateau(factor=kw.get("factor", 0.1), patience=kw.get("patience", 10) + 1,
                                             rtol=kw.get("threshold", 1e-4), cooldown=kw.get("cooldown", 0),
                                             min_scale=kw.get("min_lr", 0.0) / case.lr)
        params = jnp.zeros(1, jnp.dtype(precision))
        losses = jnp.asarray(np.asarray(case.losses), jnp.dtype(precision))

        def run(losses):
            def body(state: Any, loss):
                _, state = tx.update(params, state, params, value=loss)
                return state, case.lr * state.scale

            state0: Any = tx.init(params)
            _, lrs = jax.lax.scan(body, state0, losses)
            return jnp.concatenate([jnp.asarray(case.lr * state0.scale)[None], lrs])

        return _as2d(jax.jit(run)(losses))


# ----------------------------------------------------------------------------------------------------------


def describe(case) -> str:
    """The case's jaxsched construction as text."""
    if isinstance(case, PlateauCase):
        args = ", ".join(f"{k}={v!r}" for k, v in case.kwargs.items())
        return f"ReduceLROnPlateau({case.lr!r}, {args}) fed {case.steps} recorded losses"
    return case.shown or repr(case.build())


def run_case(case, with_optax: bool = True) -> Result:
    """Measure one case; ``with_optax=False`` skips optax (the CI gate does not need it)."""
    res = Result(case.name, case.kind, case.steps, case.note, case.known_issue)
    if case.optax is not None:
        res.optax_text, res.optax_exact = case.optax.text, case.optax.exact
    if isinstance(case, PlateauCase):
        t_lr, t_mom = torch_plateau(case), None
        lr = {p: jaxsched_plateau(case, p) for p in PRECISIONS}
        mom = {}
        olr = {p: optax_plateau(case, p) for p in PRECISIONS} if with_optax and case.optax else {}
        omom = {}
    else:
        s = case.build()
        t_lr, t_mom = torch_trajectory(s, case.steps, case.optimizer)
        lr, mom = {}, {}
        for p in PRECISIONS:
            lr[p], m = jaxsched_values(case, p)
            if m is not None:
                mom[p] = m
        olr, omom = {}, {}
        if with_optax and case.optax is not None:
            for p in PRECISIONS:
                olr[p], m = optax_values(case, p)
                if m is not None:
                    omom[p] = m
    for p in PRECISIONS:
        res.err[p] = rel_error(lr[p], t_lr)
        if p in mom:
            assert t_mom is not None
            res.mom_err[p] = rel_error(mom[p], t_mom)
        if p in olr:
            n = olr[p].shape[0]
            res.optax_err[p] = rel_error(olr[p], t_lr[:n])
        if p in omom:
            assert t_mom is not None
            n = omom[p].shape[0]
            res.optax_mom_err[p] = rel_error(omom[p], t_mom[:n])
    res.traj = Trajectories(t_lr, t_mom, lr, mom, olr, omom)
    return res
