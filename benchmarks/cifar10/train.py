"""Training loop: presets, the article's six schedules, data-parallel epochs as single compiled programs.

The LR (and, for OneCycleLR/CyclicLR, the momentum) of every step of an epoch is computed on the host from
the jaxsched schedule and passed to the compiled epoch as an array, where it is set as an
``optax.inject_hyperparams`` hyperparameter before each update. So one compiled program serves every
schedule, and the optimizer is exactly torch's ``SGD(momentum=0.9, weight_decay=5e-4)`` (optax's
``add_decayed_weights`` then ``sgd``: ``buf = mu * buf + g + wd * p; p -= lr * buf``).

* Per-step schedules (OneCycleLR, CyclicLR, or a spec prefixed ``step:``): LR of global step ``t`` is
  ``s(t)``, as torch's ``scheduler.step()`` after every batch.
* Per-epoch schedules (everything else, or ``epoch:``): LR during epoch ``e`` (0-based) is ``s(e)``, as
  torch's ``scheduler.step()`` after every epoch.
* ReduceLROnPlateau: stepped once per epoch on the test loss; LR during epoch ``e + 1`` is the plateau's LR
  after seeing epoch ``e``'s test loss.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxsched

from . import models
from .data import first_per_class, load_cifar10, source_description

MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32) * 255
STD = np.array([0.2470, 0.2435, 0.2616], np.float32) * 255
ARTICLE = ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau", "OneCycleLR")
PER_STEP = ("OneCycleLR", "CyclicLR")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A benchmark configuration. ``train_per_class``/``test_per_class``: use the first N images of each
    class (None: all). Milestones etc. of the article's schedules are scaled by ``epochs / 100``."""

    name: str
    model: str
    epochs: int
    batch_size: int = 128
    eval_batch_size: int = 500
    train_per_class: int | None = None
    test_per_class: int | None = None
    widths: tuple[int, ...] | None = None
    base_lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0


PRESETS = {
    # seconds on a CPU: tests and CI (a tiny SmallResNet on 160 training images).
    "smoke": Preset("smoke", "small", epochs=3, batch_size=32, eval_batch_size=40, train_per_class=16,
                    test_per_class=8, widths=(8, 16, 32)),
    # all six schedules in about 30-40 minutes on a 2-core CPU (measured 2026-11-29: ~330 training images
    # per second): SmallResNet (0.31M params), 10 epochs on 10,000 training images (1,000 per class),
    # evaluated on 3,000 test images (300 per class).
    "cpu": Preset("cpu", "small", epochs=10, train_per_class=1000, test_per_class=300),
    # the article's setup: ResNet-18, 100 epochs, the whole training and test sets; for a GPU or TPU.
    "full": Preset("full", "resnet18", epochs=100),
    # one datacenter GPU, bfloat16: ResNet-18 on all 50,000/10,000 images, all six schedules in one program
    # (the runs unrolled, see DEFAULT_RUNS_AS), 15 epochs each.
    # Sized by estimate, NOT measured (no GPU was available): at ~12,000 training images/s for ResNet-18 in
    # bfloat16 at batch 128, 6 x 15 x 50,000 images take ~6.3 min plus evaluation and one compile.
    # Dry-run it anywhere with --max-steps 2.
    "gpu": Preset("gpu", "resnet18", epochs=15, eval_batch_size=1000),
}


# ----------------------------------------------------------------------------------------------------------
# schedules


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a schedule drives training: ``kind`` is 'step', 'epoch' or 'plateau'."""

    label: str
    kind: str
    schedule: Any

    def slug(self) -> str:
        """The file name of this plan's log and checkpoint: the label itself when it is a plain name,
        else its first characters made safe plus a hash of the whole label (so labels that share a long
        prefix or differ only in punctuation never share files)."""
        keep = "".join(c if c.isalnum() or c in "._=-" else "_" for c in self.label).strip("_")
        if keep == self.label and 0 < len(keep) <= 80:
            return keep
        return f"{keep[:60] or 'schedule'}-{hashlib.sha1(self.label.encode()).hexdigest()[:10]}"


def article_schedule(name: str, epochs: int, steps_per_epoch: int, lr: float = 0.1) -> Plan:
    """One of the article's six schedules for a run of ``epochs`` epochs (its 100 epochs scaled).

    StepLR x0.1 every 30% of the epochs; MultiStepLR x0.1 at 30/60/90%; ExponentialLR with the total decay
    of 0.95 per epoch over 100 epochs (gamma = 0.95 ** (100 / epochs)); CosineAnnealingLR to 0 over the run;
    ReduceLROnPlateau(mode='min', factor=0.1, patience=10% of the epochs) on test loss; OneCycleLR with
    max_lr = lr stepped per batch.
    """
    k = epochs / 100
    if name == "StepLR":
        return Plan(name, "epoch", jaxsched.StepLR(lr, step_size=max(1, round(30 * k)), gamma=0.1))
    if name == "MultiStepLR":
        ms = sorted({max(1, round(m * k)) for m in (30, 60, 90)})
        return Plan(name, "epoch", jaxsched.MultiStepLR(lr, milestones=ms, gamma=0.1))
    if name == "ExponentialLR":
        return Plan(name, "epoch", jaxsched.ExponentialLR(lr, gamma=float(0.95 ** (1 / k))))
    if name == "CosineAnnealingLR":
        return Plan(name, "epoch", jaxsched.CosineAnnealingLR(lr, T_max=epochs, eta_min=0.0))
    if name == "ReduceLROnPlateau":
        return Plan(name, "plateau", _plateau(lr, mode="min", factor=0.1, patience=max(1, round(10 * k))))
    if name == "OneCycleLR":
        return Plan(name, "step", jaxsched.OneCycleLR(max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch))
    raise ValueError(f"unknown article schedule name={name!r}; expected one of {', '.join(ARTICLE)} or a "
                     "jaxsched spec such as 'StepLR(0.1, step_size=30)'.")


def _plateau(lr, **kw):
    return jaxsched.ReduceLROnPlateau(lr, **kw)


_AUTO = {"total_steps": "T", "epochs": "E", "steps_per_epoch": "S"}


def parse_schedule(text: str, epochs: int, steps_per_epoch: int, lr: float = 0.1) -> Plan:
    """A ``--schedules`` entry: an article name, or a jaxsched spec with placeholders.

    Specs are constructor calls parsed by ``jaxsched.parse_spec`` (never evaluated). Placeholders: the
    bare names ``E`` (epochs of the run), ``S`` (steps per epoch), ``T`` (E * S), and ``auto`` as the value
    of ``total_steps`` (T), ``epochs`` (E), ``steps_per_epoch`` (S) or ``T_max`` (E for a per-epoch
    schedule, T per step). A prefix ``step:`` or ``epoch:`` says how often the schedule is stepped; the
    default is per step for OneCycleLR and CyclicLR, per epoch otherwise. ``ReduceLROnPlateau(...)`` with
    literal keyword arguments is stepped per epoch on test loss.

    >>> p = parse_schedule("OneCycleLR(max_lr=0.4, epochs=E, steps_per_epoch=S)", 10, 62)
    >>> p.kind, p.schedule.epochs, p.schedule.steps_per_epoch
    ('step', 10, 62)
    >>> parse_schedule("epoch:CosineAnnealingLR(0.1, T_max=auto)", 10, 62).schedule.T_max
    10
    """
    text = label = parse_label(text)
    if text in ARTICLE:
        return article_schedule(text, epochs, steps_per_epoch, lr)
    kind = None
    for prefix in ("step:", "epoch:"):
        if text.startswith(prefix):
            kind, text = prefix[:-1], text[len(prefix):].strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"--schedules entry {text!r} is neither an article schedule ({', '.join(ARTICLE)}) nor a "
                         "constructor call such as 'StepLR(0.1, step_size=30)'.") from None
    call = tree.body
    if isinstance(call, ast.Name):  # a bare name that is not one of the article's six
        hint = _did_you_mean(call.id)
        hint = hint or f"; other schedules are written as calls, e.g. {call.id}(0.1, ...)."
        raise ValueError(f"--schedules entry {text!r} is not one of the article's schedules "
                         f"({', '.join(ARTICLE)}){hint}")
    name = call.func.id if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else None
    if name is not None and name not in ARTICLE and not hasattr(jaxsched, name):
        hint = _did_you_mean(name)
        if hint:
            raise ValueError(f"--schedules entry {text!r}: unknown schedule {name!r}{hint}")
    if kind is None:
        kind = "step" if name in PER_STEP else "epoch"
    values = {"E": epochs, "S": steps_per_epoch, "T": epochs * steps_per_epoch}

    class Fill(ast.NodeTransformer):
        def visit_keyword(self, node):
            if isinstance(node.value, ast.Name) and node.value.id == "auto":
                key = "T" if node.arg == "T_max" and kind == "step" else ("E" if node.arg == "T_max" else
                                                                           _AUTO.get(node.arg or ""))
                if key is None:
                    raise ValueError(f"in --schedules entry {text!r}: 'auto' is supported for "
                                     f"{', '.join(list(_AUTO) + ['T_max'])}, not for {node.arg}=auto.")
                node.value = ast.Constant(values[key])
            return self.generic_visit(node)

        def visit_Name(self, node):
            return ast.copy_location(ast.Constant(values[node.id]), node) if node.id in values else node

    filled = ast.unparse(Fill().visit(tree))
    if name == "ReduceLROnPlateau":
        assert isinstance(call, ast.Call)
        args = [ast.literal_eval(a) for a in call.args]
        kw = {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}
        if not args and "lr" not in kw:
            args = [lr]
        return Plan(label, "plateau", _plateau(*args, **kw))
    sched = jaxsched.parse_spec(filled)
    if sched.num_groups not in (None, 1):
        raise ValueError(f"--schedules entry {text!r} has {sched.num_groups} parameter groups; this benchmark "
                         "trains one group.")
    check_length(label, kind, sched, epochs, steps_per_epoch)
    return Plan(label, kind, sched)


def check_length(label: str, kind: str, sched, epochs: int, steps_per_epoch: int) -> None:
    """Refuse a OneCycleLR shorter than the run: torch's ``scheduler.step()`` raises ``ValueError('Tried to
    step N times. The specified number of total steps is M')`` past ``total_steps``, while a closed form
    would quietly hold its last value for the rest of training."""
    if type(sched).__name__ != "OneCycleLR":
        return
    total = getattr(sched, "total_steps", None)
    if total is None:
        total = int(sched.epochs) * int(sched.steps_per_epoch)
    needed = epochs * steps_per_epoch if kind == "step" else epochs
    # torch steps the scheduler after every update, so the last LR used is s(needed - 1) and the
    # scheduler is stepped `needed` times; it raises when that exceeds total_steps
    if needed > int(total):
        unit = f"{epochs} epochs x {steps_per_epoch} steps" if kind == "step" else f"{epochs} epochs"
        raise ValueError(f"--schedules entry {label!r}: OneCycleLR has total_steps={int(total)}, shorter than the "
                         f"run ({unit} = {needed} scheduler steps); torch raises 'Tried to step {int(total) + 1} "
                         f"times' there. Use total_steps=auto (or epochs=E, steps_per_epoch=S).")


def _did_you_mean(name: str) -> str:
    """``"; did you mean 'StepLR'?"`` for a misspelt schedule name, or ``""``."""
    import difflib

    known = sorted(set(ARTICLE) | {n for n in jaxsched.__all__ if n[:1].isupper()})
    lower = {k.lower(): k for k in known}  # case-insensitive: 'Stepl' and 'steplr' are StepLR
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.75)
    return f"; did you mean {lower[close[0]]!r}?" if close else ""


def parse_label(text: str) -> str:
    """The label a ``--schedules`` entry is reported under (the entry itself, stripped)."""
    return text.strip()


def epoch_lrs(plan: Plan, epoch: int, steps_per_epoch: int, plateau_state=None, momentum: float = 0.9):
    """``(lrs, moms)``: float32 arrays of shape ``(steps_per_epoch,)``, the LR and momentum of every step."""
    s = plan.schedule
    moms = np.full(steps_per_epoch, momentum, np.float32)
    if plan.kind == "plateau":
        lrs = np.full(steps_per_epoch, float(s(plateau_state)), np.float32)
    elif plan.kind == "epoch":
        steps = jnp.arange(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)
        per_epoch = getattr(jaxsched, "per_epoch", None)
        if per_epoch is not None:
            lrs = np.asarray(per_epoch(s, steps_per_epoch)(steps), np.float32)
        else:
            lrs = np.full(steps_per_epoch, float(s(epoch)), np.float32)
    else:
        steps = jnp.arange(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)
        lrs = np.asarray(s(steps), np.float32)
        if getattr(s, "cycle_momentum", False):  # torch's OneCycleLR/CyclicLR override SGD's momentum
            moms = np.asarray(s.momentum(steps), np.float32)
    return lrs.reshape(steps_per_epoch), moms.reshape(steps_per_epoch)


# ----------------------------------------------------------------------------------------------------------
# data parallel training


def make_mesh(num_devices: int | None = None) -> Mesh:
    devs = jax.devices()
    if num_devices is not None:
        if not 1 <= num_devices <= len(devs):
            raise ValueError(f"num_devices must be between 1 and {len(devs)}, got num_devices={num_devices!r}.")
        devs = devs[:num_devices]
    return Mesh(np.array(devs), ("data",))


def put(x: np.ndarray, mesh: Mesh, spec: P):
    """A host array as a global array with ``spec`` over ``mesh``; each process supplies its own shards
    (works on one host and across hosts after ``jax.distributed.initialize``)."""
    sharding = NamedSharding(mesh, spec)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def subset(x, y, per_class):
    """The first ``per_class`` images of every class, in their order (all when None)."""
    if per_class is None:
        return x, y
    keep = first_per_class(y, per_class)
    return x[keep], y[keep]


def compute_dtype():
    return jnp.bfloat16 if jax.default_backend() in ("gpu", "tpu", "cuda", "rocm") else jnp.float32


def build_model(preset: Preset, dtype=None):
    cls = models.MODELS[preset.model]
    kw = {"dtype": dtype or compute_dtype()}
    if preset.widths is not None:
        kw["widths"] = preset.widths
    return cls(**kw)


def make_tx(preset: Preset):
    return optax.chain(optax.add_decayed_weights(preset.weight_decay),
                       optax.inject_hyperparams(optax.sgd)(learning_rate=preset.base_lr, momentum=preset.momentum))


def _normalize(x):
    return (x.astype(jnp.float32) - MEAN) / STD


def _augment(x, offs, flips):
    """Random crop with 4-pixel zero padding (torchvision RandomCrop(32, padding=4)) and horizontal flip."""
    xp = jnp.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (32, 32, x.shape[-1])))(xp, offs)
    return jnp.where(flips[:, None, None, None], crop[:, :, ::-1], crop)


RUNS_AS = ("unrolled", "vmap", "grouped")
# How runs trained together share one program. Measured 2026-12-01 with ``python -m benchmarks.cifar10.run_axis
# --runs 4 --steps 3`` on the 2-core x86_64 CPU (XLA:CPU; the SmallResNet, 4 runs of batch 128): unrolled 1.12x
# the sequential images/s, vmap 0.33x, grouped 0.13x. Not measured on a GPU or TPU: there too the default is
# ``unrolled``, the one formulation that runs each run's convolutions as the one-run program does and so cannot
# be slower than one run at a time; ``vmap`` and ``grouped`` are there to be measured (run_axis's command line).
DEFAULT_RUNS_AS = "unrolled"


def stack(trees):
    """Stack identically shaped pytrees along a new leading run axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, r: int):
    """Run ``r`` of a stacked pytree."""
    return jax.tree.map(lambda x: x[r], tree)


def apply_update(tx, state, grads, batch_stats, lr, mom):
    """One optimizer update of one run with this step's LR and momentum set as the injected hyperparameters."""
    opt = state["opt_state"]
    hp = dict(opt[1].hyperparams, learning_rate=lr, momentum=mom)
    opt = (opt[0], opt[1]._replace(hyperparams=hp))
    updates, opt = tx.update(grads, opt, state["params"])
    return {"params": optax.apply_updates(state["params"], updates), "batch_stats": batch_stats, "opt_state": opt}


def make_epoch_fns(model, tx, mesh: Mesh, runs_as: str | None = None) -> tuple[Any, Any, Any]:
    """``(train_epoch, train_step, evaluate)``, jitted; each call is one compiled program.

    ``runs_as=None``: one run. Otherwise R runs at once (``'unrolled'``, ``'vmap'`` or ``'grouped'``, see
    :data:`RUNS_AS`): the state has a leading run axis, the per-step inputs a run axis second (``idx`` of
    shape (S, R, B), ``lrs`` (S, R)), and the sums and evaluation results are per run, shape (R,)."""
    if runs_as is not None and runs_as not in RUNS_AS:
        raise ValueError(f"runs_as must be one of {', '.join(RUNS_AS)} (or None), got runs_as={runs_as!r}.")
    if runs_as == "grouped" and model.dtype != jnp.float32:
        raise ValueError(f"runs_as='grouped' is written for float32 models, got dtype={model.dtype!r}; use "
                         "'unrolled' or 'vmap'.")
    batch = NamedSharding(mesh, P("data"))
    runs_batch = NamedSharding(mesh, P(None, "data"))

    def loss_fn(params, bstats, x, y):
        logits, upd = model.apply({"params": params, "batch_stats": bstats}, x, train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (upd["batch_stats"], jnp.sum(jnp.argmax(logits, -1) == y))

    def step(st, inp, x_train, y_train):
        i, o, f, lr, mom = inp
        x = jax.lax.with_sharding_constraint(_normalize(_augment(x_train[i], o, f)), batch)
        y = jax.lax.with_sharding_constraint(y_train[i], batch)
        (loss, (bs, correct)), g = jax.value_and_grad(loss_fn, has_aux=True)(st["params"], st["batch_stats"], x, y)
        return apply_update(tx, st, g, bs, lr, mom), (loss, correct)

    def unrolled_step(sts, inp, x_train, y_train):
        outs = [step(unstack(sts, r), unstack(inp, r), x_train, y_train) for r in range(inp[3].shape[0])]
        return stack([o[0] for o in outs]), (jnp.stack([o[1][0] for o in outs]), jnp.stack([o[1][1] for o in outs]))

    def grouped_step(sts, inp, x_train, y_train):
        from .run_axis import grouped_forward

        i, o, f, lr, mom = inp
        x = jax.vmap(lambda i, o, f: _normalize(_augment(x_train[i], o, f)))(i, o, f)
        x = jax.lax.with_sharding_constraint(x, runs_batch)
        y = jax.lax.with_sharding_constraint(y_train[i], runs_batch)

        def total_loss(params, bstats):
            logits, stats = grouped_forward(model, params, bstats, x)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(axis=1)
            return jnp.sum(losses), (losses, stats, jnp.sum(jnp.argmax(logits, -1) == y, axis=1))

        (_, (losses, bs, correct)), g = jax.value_and_grad(total_loss, has_aux=True)(sts["params"],
                                                                                   sts["batch_stats"])
        new = jax.vmap(lambda st, gr, b, lr, mom: apply_update(tx, st, gr, b, lr, mom))(sts, g, bs, lr, mom)
        return new, (losses, correct)

    one_step = {None: step, "unrolled": unrolled_step, "grouped": grouped_step,
                "vmap": jax.vmap(step, in_axes=(0, 0, None, None))}[runs_as]

    def train_epoch(state, x_train, y_train, idx, offs, flips, lrs, moms):
        """The whole epoch as one program (lax.scan over the steps)."""
        state, (losses, correct) = jax.lax.scan(lambda st, inp: one_step(st, inp, x_train, y_train), state,
                                                (idx, offs, flips, lrs, moms))
        return state, {"loss": jnp.sum(losses, axis=0), "correct": jnp.sum(correct, axis=0).astype(jnp.float32)}

    def train_step(state, x_train, y_train, idx, offs, flips, lrs, moms, k, sums):
        """Step ``k`` of the epoch (for the host loop); ``sums`` accumulates (loss, correct)."""
        state, (loss, correct) = one_step(state, (idx[k], offs[k], flips[k], lrs[k], moms[k]), x_train, y_train)
        return state, {"loss": sums["loss"] + loss, "correct": sums["correct"] + correct.astype(jnp.float32)}

    def evaluate(state, x_test, y_test, weights):
        def step(carry, inp):
            x, y, w = inp
            x = jax.lax.with_sharding_constraint(_normalize(x), batch)
            logits = model.apply({"params": state["params"], "batch_stats": state["batch_stats"]}, x, train=False)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            return (carry[0] + jnp.sum(loss * w), carry[1] + jnp.sum((jnp.argmax(logits, -1) == y) * w)), None

        (loss, correct), _ = jax.lax.scan(step, (jnp.float32(0), jnp.float32(0)), (x_test, y_test, weights))
        return {"loss": loss / jnp.sum(weights), "correct": correct}

    def evaluate_runs(states, x_test, y_test, weights):
        if runs_as == "vmap":
            return jax.vmap(evaluate, in_axes=(0, None, None, None))(states, x_test, y_test, weights)
        R = jax.tree.leaves(states)[0].shape[0]
        return stack([evaluate(unstack(states, r), x_test, y_test, weights) for r in range(R)])

    return (jax.jit(train_epoch, donate_argnums=0), jax.jit(train_step, donate_argnums=0),
            jax.jit(evaluate if runs_as is None else evaluate_runs))


def init_state(model, tx, seed: int):
    """Initial params, BatchNorm statistics and optimizer state. Left eager on purpose: a jitted version
    compiled afresh for every call and was no faster the first time (measured 2026-11-30 on the loaded
    2-core CPU: 44 s jitted, 49 s eager first and 0.06 s eager after that, its op cache warm)."""
    v = model.init(jax.random.key(seed), jnp.zeros((2, 32, 32, 3), jnp.float32), train=False)
    return {"params": v["params"], "batch_stats": v["batch_stats"], "opt_state": tx.init(v["params"])}


def count_params(model) -> int:
    """Parameters of ``model`` without running its initialisation (shapes only)."""
    shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((2, 32, 32, 3), jnp.float32), train=False),
                            jax.random.key(0))
    return models.num_params(shapes["params"])


def epoch_plan(seed: int, epoch: int, n: int, batch_size: int):
    """Shuffled indices (S, B), crop offsets (S, B, 2) and flips (S, B) of one epoch, from the host RNG
    (the same for any device count). The last partial batch is dropped."""
    rng = np.random.default_rng([seed, epoch])
    steps = n // batch_size
    idx = rng.permutation(n)[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)
    offs = rng.integers(0, 9, size=(steps, batch_size, 2)).astype(np.int32)
    flips = rng.random((steps, batch_size)) < 0.5
    return idx, offs, flips


# ----------------------------------------------------------------------------------------------------------
# checkpoints, logs and the output folder
#
# The checkpoint is the source of truth: it holds the model/optimizer/plateau state *and* the per-epoch
# records so far. Each epoch is first checkpointed (orbax writes into a temporary folder and renames it on
# commit, so a kill leaves either the old or the new checkpoint), then the JSONL log is rewritten whole
# through a temporary file and os.replace. A kill at any moment therefore leaves a log equal to the
# checkpoint's records or one epoch short; a rerun rewrites the log from the checkpoint.


class OutputLocked(RuntimeError):
    """Another process holds the output folder."""


class ResumeError(ValueError):
    """The output folder holds results this run cannot continue."""


@contextlib.contextmanager
def lock_output(out: Path):
    """An exclusive lock on ``out`` for the life of the block (``fcntl.flock`` on ``out/.lock``; the kernel
    drops it when the process dies, even by SIGKILL)."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLocked(f"--out={str(out)!r} is in use by another run (it holds {str(out / '.lock')!r}); "
                               "wait for it to finish or choose another --out.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_log(log: Path, records: list[dict]) -> None:
    """Rewrite a run's JSONL log whole from its records (atomically)."""
    write_atomic(log, "".join(json.dumps(r) + "\n" for r in records))


def clean_temporaries(out: Path) -> None:
    """Remove the temporary files a killed run left (``*.tmp<pid>`` of :func:`write_atomic`)."""
    for f in list(out.glob("*.tmp[0-9]*")):
        f.unlink(missing_ok=True)


def read_log(log: Path) -> list[dict]:
    """The records of a JSONL log; a torn last line (a kill mid-write of an older writer) is dropped."""
    if not log.is_file():
        return []
    out = []
    lines = log.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ResumeError(f"log {str(log)!r} line {i + 1} is not JSON; move the file away to rerun.") from None
    return out


def _manager(path: Path):
    import orbax.checkpoint as ocp

    opts = ocp.CheckpointManagerOptions(max_to_keep=1, cleanup_tmp_directories=True,
                                        enable_async_checkpointing=False, create=True)
    return ocp.CheckpointManager(path.resolve(), options=opts)


def _save_ckpt(mgr, tree, meta: dict):
    import orbax.checkpoint as ocp

    leaves = [np.asarray(jax.device_get(x)) for x in jax.tree.leaves(tree)]
    mgr.save(int(meta["epoch"]), args=ocp.args.Composite(state=ocp.args.StandardSave({"leaves": leaves}),
                                                         meta=ocp.args.JsonSave(meta)), force=True)
    mgr.wait_until_finished()


def _load_ckpt(mgr, template, where: Path):
    import orbax.checkpoint as ocp

    step = mgr.latest_step()
    if step is None:
        return None, None
    proto = [np.asarray(jax.device_get(x)) for x in jax.tree.leaves(template)]
    got = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore({"leaves": proto}),
                                                     meta=ocp.args.JsonRestore()))
    leaves = got["state"]["leaves"]
    treedef = jax.tree.structure(template)
    if treedef.num_leaves != len(leaves) or any(np.shape(a) != np.shape(b) for a, b in zip(leaves, proto)):
        raise ResumeError(f"checkpoint {str(where)!r} does not match this model/schedule; use a fresh --out.")
    return jax.tree.unflatten(treedef, [np.asarray(x) for x in leaves]), dict(got["meta"])


# ----------------------------------------------------------------------------------------------------------
# the run


class Run:
    """Everything a preset shares across schedules: data on the devices, the model, the compiled epoch."""

    def __init__(self, preset: Preset, data=None, num_devices: int | None = None, loop: str | None = None,
                 max_steps: int | None = None):
        """``max_steps``: a dry run of at most that many training steps per run (epochs of
        ``min(steps_per_epoch, max_steps)`` steps, as many as reach ``max_steps``); None trains fully."""
        self.preset = preset
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got max_steps={max_steps!r}.")
        self.max_steps = max_steps
        # XLA:CPU runs this network ~100x slower inside a while loop (lax.scan) than as a straight program
        # (measured 2026-11-29), so on CPU each step is one compiled program driven from the host.
        self.loop = loop or ("host" if jax.default_backend() == "cpu" else "scan")
        if self.loop not in ("host", "scan"):
            raise ValueError(f"loop must be 'host' or 'scan', got loop={loop!r}.")
        self.mesh = make_mesh(num_devices)
        ndev = self.mesh.devices.size
        for name in ("batch_size", "eval_batch_size"):
            if getattr(preset, name) % ndev:
                raise ValueError(f"preset {preset.name!r}: {name}={getattr(preset, name)} must be a multiple of the "
                                 f"number of devices ({ndev}).")
        # a subset preset decodes and caches only its images (the whole source is still read and checked)
        x_tr, y_tr, x_te, y_te = data if isinstance(data, tuple) else load_cifar10(
            data, use=(preset.train_per_class, preset.test_per_class))
        x_tr, y_tr = subset(x_tr, y_tr, preset.train_per_class)
        x_te, y_te = subset(x_te, y_te, preset.test_per_class)
        self.n_train, self.n_test = len(y_tr), len(y_te)
        self.steps_per_epoch = self.n_train // preset.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"preset {preset.name!r}: {self.n_train} training images is less than one batch of "
                             f"{preset.batch_size}.")
        self.steps_run = self.steps_per_epoch if max_steps is None else min(self.steps_per_epoch, max_steps)
        # a test set smaller than one evaluation batch is padded only to a multiple of the device count
        eb = min(preset.eval_batch_size, -(-self.n_test // ndev) * ndev)
        nb = -(-self.n_test // eb)
        pad = nb * eb - self.n_test
        w = np.concatenate([np.ones(self.n_test, np.float32), np.zeros(pad, np.float32)])
        x_te = np.concatenate([x_te, np.zeros((pad, 32, 32, 3), np.uint8)]).reshape(nb, eb, 32, 32, 3)
        y_te = np.concatenate([y_te, np.zeros(pad, np.int32)]).reshape(nb, eb)
        self.x_train, self.y_train = put(x_tr, self.mesh, P()), put(y_tr.astype(np.int32), self.mesh, P())
        self.x_test = put(x_te, self.mesh, P(None, "data"))
        self.y_test = put(y_te.astype(np.int32), self.mesh, P(None, "data"))
        self.w_test = put(w.reshape(nb, eb), self.mesh, P(None, "data"))
        self.model = build_model(preset)
        self.tx = make_tx(preset)
        self.train_epoch, self.train_step, self.evaluate = make_epoch_fns(self.model, self.tx, self.mesh)
        self.compile_seconds = None
        self._managers: dict = {}
        self._programs: dict = {}
        self.trained_epochs = 0

    def fresh_state(self, seed: int | None = None):
        return self._replicate(init_state(self.model, self.tx, self.preset.seed if seed is None else seed))

    def epoch_inputs(self, epoch, lrs, moms, seed: int | None = None):
        seed = self.preset.seed if seed is None else seed
        idx, offs, flips = epoch_plan(seed, epoch, self.n_train, self.preset.batch_size)
        k = self.steps_run  # a dry run (max_steps) trains the first steps of each epoch
        idx, offs, flips, lrs, moms = idx[:k], offs[:k], flips[:k], lrs[:k], moms[:k]
        spec = P(None, "data")
        return (put(idx, self.mesh, spec), put(offs, self.mesh, spec), put(flips, self.mesh, spec),
                put(lrs, self.mesh, P()), put(moms, self.mesh, P()))

    def _k(self, k):
        return put(np.asarray(k, np.int32), self.mesh, P())

    def _zero_sums(self, runs: int | None = None):
        zero = np.zeros(() if runs is None else (runs,), np.float32)
        return {"loss": put(zero, self.mesh, P()), "correct": put(zero, self.mesh, P())}

    def run_epoch(self, state, ins):
        """One epoch's training: ``(state, {"loss": summed loss, "correct": count})``."""
        if self.loop == "scan":
            return self.train_epoch(state, self.x_train, self.y_train, *ins)
        sums = self._zero_sums()
        for k in range(self.steps_run):
            state, sums = self.train_step(state, self.x_train, self.y_train, *ins, self._k(k), sums)
        return state, sums

    def compile(self, state):
        """AOT-compile both programs once (timed apart from the epochs)."""
        if self.compile_seconds is None:
            t = time.perf_counter()
            S = self.steps_per_epoch
            ins = self.epoch_inputs(0, np.zeros(S, np.float32), np.zeros(S, np.float32))
            if self.loop == "scan":
                self.train_epoch = self.train_epoch.lower(state, self.x_train, self.y_train, *ins).compile()
            else:
                self.train_step = self.train_step.lower(state, self.x_train, self.y_train, *ins, self._k(0),
                                                        self._zero_sums()).compile()
            self.evaluate = self.evaluate.lower(state, self.x_test, self.y_test, self.w_test).compile()
            self.compile_seconds = time.perf_counter() - t
        return self.compile_seconds

    def _open(self, plan: Plan, out, epochs, until, seed) -> _Member:
        """One run's starting point: a fresh state (host arrays) or the one its checkpoint holds, its records
        so far, and where it logs. The log is rewritten from the checkpoint when they differ."""
        seed = self.preset.seed if seed is None else int(seed)
        E = epochs or self.preset.epochs
        if self.max_steps is not None:
            E = min(E, -(-self.max_steps // self.steps_run))
        m = _Member(plan=plan, seed=seed, epochs=E, stop=E if until is None else min(E, until),
                    state=init_state(self.model, self.tx, seed),
                    pst=plan.schedule.init() if plan.kind == "plateau" else None,
                    meta={"preset": dataclasses.asdict(dataclasses.replace(self.preset, seed=seed)),
                          "model": repr(self.model), "label": plan.label, "schedule": repr(plan.schedule),
                          "kind": plan.kind, "epochs": E, "steps_per_epoch": self.steps_per_epoch,
                          "max_steps": self.max_steps})
        if out is None:
            return m
        main = jax.process_index() == 0
        out = Path(out)
        slug = plan.slug() + (f"-seed{seed}" if seed else "")
        m.log, ckpt = out / f"{slug}.jsonl", out / "ckpt" / slug
        logged = read_log(m.log)
        # every process takes part in orbax's saves and restores (its multi-process barriers); the state is
        # replicated, so the files are the same whichever process writes them
        m.mgr = self._managers.get(ckpt) or self._managers.setdefault(ckpt, _manager(ckpt))
        restored, saved = _load_ckpt(m.mgr, (m.state, m.pst), ckpt)
        if saved is not None:
            mine = json.loads(json.dumps(m.meta))
            if {k: saved.get(k) for k in mine} != mine:
                diff = sorted(k for k in mine if saved.get(k) != mine[k])
                raise ResumeError(f"checkpoint {str(ckpt)!r} was written for another run (differs in "
                                  f"{', '.join(diff)}); use a fresh --out or delete the checkpoint.")
            assert restored is not None
            m.state, m.pst = restored
            m.start, m.records = int(saved["epoch"]), list(saved["records"])
            if len(m.records) != m.start:
                raise ResumeError(f"checkpoint {str(ckpt)!r} holds {len(m.records)} records for {m.start} epochs.")
            if main and logged != m.records:
                if len(logged) > m.start:
                    print(f"note: {str(m.log)!r} had {len(logged)} epochs, its checkpoint {m.start}; rewriting the "
                          "log from the checkpoint.", file=sys.stderr)
                write_log(m.log, m.records)
        elif logged:
            raise ResumeError(f"log {str(m.log)!r} holds {len(logged)} epochs but there is no checkpoint "
                              f"{str(ckpt)!r} to resume them from; move the log away or use a fresh --out.")
        return m

    def _finish_epoch(self, m: _Member, e: int, lrs, moms, tm: dict, em: dict, seconds: float, train_seconds: float,
                      images_per_sec: float, compile_s, state_host, together: tuple[int, str] | None = None) -> dict:
        """Epoch ``e`` of run ``m`` is trained and evaluated: update its plateau, record it, checkpoint it
        and rewrite its log (checkpoint first: it is the source of truth)."""
        R, B = self.steps_run, self.preset.batch_size
        test_loss = float(em["loss"])
        if m.plan.kind == "plateau":
            m.pst = m.plan.schedule.update(m.pst, value=test_loss)
        elapsed = (m.records[-1]["elapsed"] if m.records else 0.0) + seconds
        rec = {"schedule": m.plan.label, "epoch": e + 1, "lr": float(lrs[0]), "lr_last": float(lrs[R - 1]),
               "momentum": float(moms[0]), "train_loss": float(tm["loss"]) / R,
               "train_acc": float(tm["correct"]) / (R * B), "test_loss": test_loss,
               "test_acc": float(em["correct"]) / self.n_test, "seconds": seconds, "train_seconds": train_seconds,
               "images_per_sec": images_per_sec, "elapsed": elapsed, "compile_seconds": compile_s,
               "devices": int(self.mesh.devices.size), "backend": jax.default_backend(), "loop": self.loop,
               "seed": m.seed}
        if together is not None:
            rec["runs_together"], rec["runs_as"] = together
        m.records.append(rec)
        if m.mgr is not None and m.log is not None:
            _save_ckpt(m.mgr, (state_host, m.pst), dict(m.meta, epoch=e + 1, records=m.records))
            if jax.process_index() == 0:
                write_log(m.log, m.records)
        return rec

    def _bar(self, progress, total, initial, desc):
        if not (progress and jax.process_index() == 0 and initial < total):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=f"{desc[:40]:<17}", unit="ep", dynamic_ncols=True)

    def _replicate(self, tree):
        return jax.tree.map(lambda a: put(np.asarray(a), self.mesh, P()), tree)

    def train(self, plan: Plan, out: Path | None = None, progress: bool = True, epochs: int | None = None,
              until: int | None = None, seed: int | None = None):
        """Train under ``plan`` (with ``seed``, default the preset's: initialisation, shuffling and
        augmentation); returns the list of per-epoch records. With ``out``, checkpoints every epoch
        to ``out/ckpt/<slug>/`` (orbax) and rewrites ``out/<slug>.jsonl`` from the checkpoint's records,
        resuming from the checkpoint when present. ``until`` stops after that many epochs (a later call
        resumes), so schedules can advance in turn. ``self.trained_epochs`` counts the epochs this call ran.
        Seed 0 writes ``<slug>.jsonl``, seed k > 0 ``<slug>-seed<k>.jsonl``."""
        m = self._open(plan, out, epochs, until, seed)
        self.trained_epochs = 0
        state = self._replicate(m.state)
        compile_s = self.compile(state)
        S = self.steps_per_epoch
        bar = self._bar(progress, m.epochs, m.start, plan.label)
        for e in range(m.start, m.stop):
            lrs, moms = epoch_lrs(plan, e, S, m.pst, self.preset.momentum)
            ins = self.epoch_inputs(e, lrs, moms, m.seed)
            t0 = time.perf_counter()
            state, tm = self.run_epoch(state, ins)
            tm = jax.device_get(tm)
            t1 = time.perf_counter()
            em = jax.device_get(self.evaluate(state, self.x_test, self.y_test, self.w_test))
            t2 = time.perf_counter()
            host = jax.device_get(state) if m.mgr is not None else None
            rec = self._finish_epoch(m, e, lrs, moms, tm, em, t2 - t0, t1 - t0,
                                     self.steps_run * self.preset.batch_size / (t1 - t0), compile_s, host)
            self.trained_epochs += 1
            if bar is not None:
                bar.set_postfix(lr=f"{rec['lr']:.2e}", loss=f"{rec['train_loss']:.3f}", acc=f"{rec['test_acc']:.3f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        return m.records

    def programs(self, runs_as: str, states):
        """``(train_epoch or train_step, evaluate, compile seconds)`` for the stacked ``states`` (R runs at
        once), compiled ahead of time on first use for that formulation and R."""
        runs = jax.tree.leaves(states)[0].shape[0]
        key = (runs_as, runs)
        if key not in self._programs:
            t = time.perf_counter()
            fns = make_epoch_fns(self.model, self.tx, self.mesh, runs_as)
            S = self.steps_per_epoch
            ins = self.stacked_inputs(0, [(np.zeros(S, np.float32), np.zeros(S, np.float32))] * runs, [0] * runs)
            if self.loop == "scan":
                train_fn = fns[0].lower(states, self.x_train, self.y_train, *ins).compile()
            else:
                train_fn = fns[1].lower(states, self.x_train, self.y_train, *ins, self._k(0),
                                        self._zero_sums(runs)).compile()
            evaluate = fns[2].lower(states, self.x_test, self.y_test, self.w_test).compile()
            self._programs[key] = (train_fn, evaluate, time.perf_counter() - t)
        return self._programs[key]

    def stacked_inputs(self, epoch, lrs_moms, seeds):
        """The per-step inputs of R runs (each its own seed's shuffling and augmentation and its own LR and
        momentum), the run axis second: ``idx`` (S, R, B), ``lrs`` (S, R)."""
        k = self.steps_run
        plans = [epoch_plan(seed, epoch, self.n_train, self.preset.batch_size) for seed in seeds]
        idx, offs, flips = (np.stack([p[j][:k] for p in plans], axis=1) for j in range(3))
        lrs = np.stack([lm[0][:k] for lm in lrs_moms], axis=1)
        moms = np.stack([lm[1][:k] for lm in lrs_moms], axis=1)
        spec = P(None, None, "data")
        return (put(idx, self.mesh, spec), put(offs, self.mesh, spec), put(flips, self.mesh, spec),
                put(lrs, self.mesh, P()), put(moms, self.mesh, P()))

    def train_together(self, runs: list[tuple[Plan, int]], out: Path | None = None, progress: bool = True,
                       runs_as: str = DEFAULT_RUNS_AS, until: int | None = None) -> list[list[dict]]:
        """Train every ``(plan, seed)`` of ``runs`` in one compiled program (the state stacked along a
        leading run axis, see :func:`make_epoch_fns`); returns each run's records. Each run keeps its own
        LR and momentum per step, its own plateau decisions (on its own test loss, on the host, per epoch),
        its own checkpoint and log, the same files :meth:`train` writes, so either method resumes the
        other's. Runs left behind the others by a kill between two runs' checkpoints first catch up one
        at a time. The records' ``seconds``/``elapsed`` are the run's share (1/R) of the program's time,
        ``images_per_sec`` the whole program's (all runs' images per second)."""
        if runs_as not in RUNS_AS:
            raise ValueError(f"runs_as must be one of {', '.join(RUNS_AS)}, got runs_as={runs_as!r}.")
        if len(runs) == 1:
            return [self.train(runs[0][0], out, progress, until=until, seed=runs[0][1])]
        members = [self._open(plan, out, None, until, seed) for plan, seed in runs]
        front = max(m.start for m in members)
        caught_up = 0
        for i, m in enumerate(members):  # behind the others after a kill between two runs' checkpoints
            if m.start < front:
                self.train(m.plan, out, progress, until=min(front, m.stop), seed=m.seed)
                caught_up += self.trained_epochs
                members[i] = self._open(m.plan, out, None, until, m.seed)
        R = len(members)
        self.trained_epochs = caught_up
        if all(m.start >= m.stop for m in members):
            return [m.records for m in members]
        state = self._replicate(stack([m.state for m in members]))
        train_fn, evaluate, compile_s = self.programs(runs_as, state)
        S, B = self.steps_per_epoch, self.preset.batch_size
        start, stop = members[0].start, members[0].stop
        bar = self._bar(progress, members[0].epochs, start, f"{R} runs ({runs_as})")
        for e in range(start, stop):
            lm = [epoch_lrs(m.plan, e, S, m.pst, self.preset.momentum) for m in members]
            ins = self.stacked_inputs(e, lm, [m.seed for m in members])
            t0 = time.perf_counter()
            if self.loop == "scan":
                state, tm = train_fn(state, self.x_train, self.y_train, *ins)
            else:
                sums = self._zero_sums(R)
                for k in range(self.steps_run):
                    state, sums = train_fn(state, self.x_train, self.y_train, *ins, self._k(k), sums)
                tm = sums
            tm = jax.device_get(tm)
            t1 = time.perf_counter()
            em = jax.device_get(evaluate(state, self.x_test, self.y_test, self.w_test))
            t2 = time.perf_counter()
            host = jax.device_get(state) if out is not None else None
            for r, m in enumerate(members):
                self._finish_epoch(m, e, lm[r][0], lm[r][1], unstack(tm, r), unstack(em, r), (t2 - t0) / R,
                                   (t1 - t0) / R, R * self.steps_run * B / (t1 - t0), compile_s,
                                   unstack(host, r) if host is not None else None, together=(R, runs_as))
            self.trained_epochs += R
            if bar is not None:
                accs = [m.records[-1]["test_acc"] for m in members]
                bar.set_postfix(acc=f"{min(accs):.3f}-{max(accs):.3f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        return [m.records for m in members]


@dataclasses.dataclass
class _Member:
    """One run (plan, seed) in training: its state (host arrays until put on the devices), plateau state,
    records so far and where they go."""

    plan: Plan
    seed: int
    epochs: int
    stop: int
    state: Any
    pst: Any
    meta: dict
    records: list = dataclasses.field(default_factory=list)
    start: int = 0
    log: Path | None = None
    mgr: Any = None


def preset_steps_per_epoch(preset: Preset) -> int:
    """Training steps per epoch of ``preset`` on the real data (5,000 images per class; checked on load)."""
    from .data import PER_CLASS

    return 10 * (preset.train_per_class or PER_CLASS[0]) // preset.batch_size


def describe(preset: Preset, data=None) -> str:
    return source_description(data) if not isinstance(data, tuple) else "in-memory arrays"
