"""Training several runs (schedule, seed) of the CIFAR-10 ResNets at once: the formulations, measured.

    python -m benchmarks.cifar10.run_axis [--runs 4] [--steps 5] [--batch 128] [--widths 32 64 128]

Every formulation takes the same stacked state (a leading run axis of length R on every parameter, BatchNorm
statistic and optimizer slot) and per-run LR and momentum arrays of shape (R,), and does one SGD step of
every run on its own batch (R, B, 32, 32, 3):

* ``sequential``: the one-run step (as :mod:`benchmarks.cifar10.train` compiles it) called R times;
* ``unrolled``: one program holding the one-run step R times over, one per run (the command's default);
* ``vmap``: ``jax.vmap`` of the one-run step over the run axis (XLA batches the convolutions over runs);
* ``grouped``: the runs folded into the channels: run ``r``'s activations are channels ``r*C..(r+1)*C`` of
  one wide network, every convolution is one grouped convolution (``feature_group_count=R``) with the
  runs' kernels side by side, BatchNorm is per channel anyway, and the classifier is one batched matmul.

``step_fns`` returns the four; :func:`benchmark` times them; the test checks that the batched ones give
the sequential result. The training command (:meth:`benchmarks.cifar10.train.Run.train_together`) builds
the same three batched formulations into its epoch programs (``--runs-as``). The benchmark's command line
writes images per second of each formulation.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from . import models, train

stack, unstack = train.stack, train.unstack


def _one_run_step(model, tx):
    """One SGD step of one run: ``(state, x, y, lr, mom) -> (state, loss)``; ``x`` normalised float32."""

    def loss_fn(params, bstats, x, y):
        logits, upd = model.apply({"params": params, "batch_stats": bstats}, x, train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd["batch_stats"]

    def step(state, x, y, lr, mom):
        (loss, bs), g = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], state["batch_stats"], x, y)
        return train.apply_update(tx, state, g, bs, lr, mom), loss

    return step


# ----------------------------------------------------------------------------------------------------------
# the grouped network: the same _ResNet computation on stacked parameters, runs folded into channels


def _fold(x):
    """(R, N, H, W, C) -> (N, H, W, R*C), run-major channels."""
    r, n, h, w, c = x.shape
    return x.transpose(1, 2, 3, 0, 4).reshape(n, h, w, r * c)


def _conv(x, kernel, stride: int):
    """Grouped convolution of folded activations with stacked kernels (R, kh, kw, Cin, Cout)."""
    r, kh, kw, cin, cout = kernel.shape
    k = kernel.transpose(1, 2, 3, 0, 4).reshape(kh, kw, cin, r * cout)
    pad = ((kh // 2, kh // 2), (kw // 2, kw // 2))  # flax padding=1 for 3x3; 1x1 convolutions are unpadded
    return lax.conv_general_dilated(x, k, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=r)


def _bn(x, p, s, new_stats: dict, key: tuple, eps: float = 1e-5, momentum: float = 0.9):
    """Training-mode BatchNorm of folded activations (flax's: fast variance, running stats updated)."""
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=(0, 1, 2)) - jnp.square(mean), 0.0)
    y = (x - mean) * lax.rsqrt(var + eps) * p["scale"].reshape(-1) + p["bias"].reshape(-1)
    r = p["scale"].shape[0]
    new_stats[key] = {"mean": momentum * s["mean"] + (1 - momentum) * mean.reshape(r, -1),
                      "var": momentum * s["var"] + (1 - momentum) * var.reshape(r, -1)}
    return y


def _max_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def grouped_forward(model: models._ResNet, params, bstats, x):
    """Logits (R, N, 10) and the new BatchNorm statistics of every run, computed as one folded network."""
    new: dict = {}
    h = _fold(x)
    h = _conv(h, params["Conv_0"]["kernel"], 1)
    h = jax.nn.relu(_bn(h, params["BatchNorm_0"], bstats["BatchNorm_0"], new, ("BatchNorm_0",)))
    b = 0
    for i, nblocks in enumerate(model.blocks):
        if model.pool:
            h = _max_pool(h)
        for j in range(nblocks):
            stride = 2 if (i > 0 and j == 0 and not model.pool) else 1
            name = f"BasicBlock_{b}"
            p, s = params[name], bstats[name]
            y = _conv(h, p["Conv_0"]["kernel"], stride)
            y = jax.nn.relu(_bn(y, p["BatchNorm_0"], s["BatchNorm_0"], new, (name, "BatchNorm_0")))
            y = _conv(y, p["Conv_1"]["kernel"], 1)
            y = _bn(y, p["BatchNorm_1"], s["BatchNorm_1"], new, (name, "BatchNorm_1"))
            if "Conv_2" in p:
                h = _conv(h, p["Conv_2"]["kernel"], stride)
                h = _bn(h, p["BatchNorm_2"], s["BatchNorm_2"], new, (name, "BatchNorm_2"))
            h = jax.nn.relu(h + y)
            b += 1
    r = params["Dense_0"]["kernel"].shape[0]
    pooled = jnp.mean(h, axis=(1, 2)).reshape(h.shape[0], r, -1)  # (N, R, C)
    logits = jnp.einsum("nrc,rck->rnk", pooled, params["Dense_0"]["kernel"]) + params["Dense_0"]["bias"][:, None]
    stats: dict[str, Any] = {}
    for key, v in new.items():
        d = stats
        for k in key[:-1]:
            d = d.setdefault(k, {})
        d[key[-1]] = v
    return logits, stats


def step_fns(model, tx) -> dict:
    """The four formulations, each ``(stacked_state, x (R,B,32,32,3), y (R,B), lrs (R,), moms (R,)) ->
    (stacked_state, losses (R,))``, jitted."""
    if model.dtype != jnp.float32:
        raise ValueError(f"the grouped formulation is written for float32 models, got dtype={model.dtype!r}.")
    one = jax.jit(_one_run_step(model, tx))

    def sequential(state, x, y, lrs, moms):
        outs = [one(unstack(state, r), x[r], y[r], lrs[r], moms[r]) for r in range(x.shape[0])]
        return stack([o[0] for o in outs]), jnp.stack([o[1] for o in outs])

    vmapped = jax.jit(jax.vmap(_one_run_step(model, tx)))
    one_step = _one_run_step(model, tx)

    @jax.jit
    def unrolled(state, x, y, lrs, moms):
        outs = [one_step(unstack(state, r), x[r], y[r], lrs[r], moms[r]) for r in range(x.shape[0])]
        return stack([o[0] for o in outs]), jnp.stack([o[1] for o in outs])

    def grouped_loss(params, bstats, x, y):
        logits, stats = grouped_forward(model, params, bstats, x)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(axis=1)
        return jnp.sum(losses), (losses, stats)

    @jax.jit
    def grouped(state, x, y, lrs, moms):
        (_, (losses, bs)), g = jax.value_and_grad(grouped_loss, has_aux=True)(state["params"], state["batch_stats"],
                                                                              x, y)
        new = jax.vmap(lambda st, gr, b, lr, mom: train.apply_update(tx, st, gr, b, lr, mom))(state, g, bs, lrs,
                                                                                            moms)
        return new, losses

    return {"sequential": sequential, "unrolled": unrolled, "vmap": vmapped, "grouped": grouped}


def make_inputs(runs: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(runs, batch, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=(runs, batch)).astype(np.int32)
    lrs = np.geomspace(0.01, 0.1, runs).astype(np.float32)
    moms = np.full(runs, 0.9, np.float32)
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(lrs), jnp.asarray(moms)


def init_stacked(model, tx, runs: int):
    return stack([train.init_state(model, tx, seed) for seed in range(runs)])


def benchmark(runs: int = 4, steps: int = 5, batch: int = 128, widths=(32, 64, 128)) -> dict:
    """Training images per second of each formulation (R runs x batch images per step), after one
    untimed step that compiles."""
    preset = train.dataclasses.replace(train.PRESETS["cpu"], widths=tuple(widths))
    model = train.build_model(preset, dtype=jnp.float32)
    tx = train.make_tx(preset)
    x, y, lrs, moms = make_inputs(runs, batch)
    out = {}
    for name, fn in step_fns(model, tx).items():
        state = init_stacked(model, tx, runs)
        state, loss = fn(state, x, y, lrs, moms)
        jax.block_until_ready(loss)
        t = time.perf_counter()
        for _ in range(steps):
            state, loss = fn(state, x, y, lrs, moms)
        jax.block_until_ready(loss)
        out[name] = runs * batch * steps / (time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cifar10.run_axis",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    args = ap.parse_args(argv)
    res = benchmark(args.runs, args.steps, args.batch, tuple(args.widths))
    base = res["sequential"]
    print(json.dumps({"backend": jax.default_backend(), "runs": args.runs, "batch": args.batch,
                      "images_per_sec": {k: round(v, 1) for k, v in res.items()},
                      "vs_sequential": {k: round(v / base, 2) for k, v in res.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
