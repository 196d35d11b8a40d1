"""Presets, schedules, the training step and epoch, verified checkpoints and the run loop (see the README:
one run at a time in one compiled program; the LR and momentum of every step come from the host)."""

from __future__ import annotations

import ast
import collections
import contextlib
import dataclasses
import difflib
import fcntl
import hashlib
import json
import os
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

MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32) * 255
STD = np.array([0.2470, 0.2435, 0.2616], np.float32) * 255
ARTICLE = ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau", "OneCycleLR")
PER_STEP = ("OneCycleLR", "CyclicLR")
DEVICE_COUNTS = (1, 2, 4, 8)  # the counts every preset is checked on (tests/benchmarks)
REPLICATED = P()
FILES = "files.sha256.json"  # a checkpoint's file digests


@dataclasses.dataclass(frozen=True)
class Preset:
    """A benchmark configuration. ``*_per_class``: the first N images of each class (None: all)."""

    name: str
    model: str
    epochs: int
    batch_size: int = 128  # global: split over the devices, the same for any device count
    eval_batch_size: int = 500  # rounded up to a multiple of the device count, padding weighted 0
    train_per_class: int | None = None
    test_per_class: int | None = None
    widths: tuple[int, ...] | None = None
    base_lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0

    def images(self) -> tuple[int, int]:
        """The training and test images it uses (CIFAR-10 has 5,000 and 1,000 per class)."""
        return 10 * (self.train_per_class or 5000), 10 * (self.test_per_class or 1000)


PRESETS = {
    # seconds on a CPU: tests and CI (a tiny SmallResNet on 160 training images)
    "smoke": Preset("smoke", "small", epochs=3, batch_size=32, eval_batch_size=40, train_per_class=16,
                    test_per_class=8, widths=(8, 16, 32)),
    # the six schedules in ~32 minutes on a 2-core CPU (measured 2026-11-29)
    "cpu": Preset("cpu", "small", epochs=10, train_per_class=1000, test_per_class=300),
    # the article's setup: ResNet-18, 100 epochs, all 50,000/10,000 images
    "full": Preset("full", "resnet18", epochs=100),
    # one GPU, 15 epochs; its time is estimated by ``python -m benchmarks.cifar10.formulations --estimate``
    "gpu": Preset("gpu", "resnet18", epochs=15, eval_batch_size=1000),
}


Layout = collections.namedtuple("Layout", "devices steps_per_epoch eval_batch eval_batches")


def layout(preset: Preset, n_train: int, n_test: int, devices: int) -> Layout:
    """How the batches fall on ``devices`` devices, or a one-line ``ValueError`` before anything compiles: the
    global batch must split evenly; evaluation batches are padded to a multiple of the count."""
    if devices < 1 or preset.batch_size % devices:
        raise ValueError(f"preset {preset.name!r}: batch_size={preset.batch_size} cannot be split evenly over "
                         f"{devices} devices; use --devices with a divisor of {preset.batch_size}.")
    steps = n_train // preset.batch_size
    if steps < 1:
        raise ValueError(f"preset {preset.name!r}: {n_train} training images is less than one batch of "
                         f"{preset.batch_size}.")
    eb = -(-min(preset.eval_batch_size, n_test) // devices) * devices
    return Layout(devices, steps, eb, -(-n_test // eb))


# schedules
@dataclasses.dataclass(frozen=True)
class Plan:
    """How a schedule drives training: ``kind`` is 'step', 'epoch' or 'plateau'."""

    label: str
    kind: str
    schedule: Any

    def slug(self) -> str:
        """The file name of the run's log and checkpoint; a hash keeps long or odd labels apart."""
        keep = "".join(c if c.isalnum() or c in "._=-" else "_" for c in self.label).strip("_")
        if keep == self.label and 0 < len(keep) <= 80:
            return keep
        return f"{keep[:60] or 'schedule'}-{hashlib.sha1(self.label.encode()).hexdigest()[:10]}"


def article_spec(name: str, epochs: int, lr: float) -> str:
    """One of the article's six schedules with its 100 epochs scaled to ``epochs`` (README, "Schedules")."""
    k = epochs / 100
    return {"StepLR": f"StepLR({lr}, step_size={max(1, round(30 * k))}, gamma=0.1)",
            "MultiStepLR": f"MultiStepLR({lr}, milestones={sorted({max(1, round(m * k)) for m in (30, 60, 90)})}, "
                           "gamma=0.1)",
            "ExponentialLR": f"ExponentialLR({lr}, gamma={float(0.95 ** (1 / k))!r})",
            "CosineAnnealingLR": f"CosineAnnealingLR({lr}, T_max={epochs}, eta_min=0.0)",
            "ReduceLROnPlateau": f"ReduceLROnPlateau({lr}, mode='min', factor=0.1, patience={max(1, round(10 * k))})",
            "OneCycleLR": f"OneCycleLR(max_lr={lr}, epochs=E, steps_per_epoch=S)"}[name]


def parse_schedule(text: str, epochs: int, steps_per_epoch: int, lr: float = 0.1) -> Plan:
    """A ``--schedules`` entry (an article name, or a ``jaxsched.parse_spec`` spec with the placeholders E, S, T
    and ``auto`` and an optional ``step:``/``epoch:`` prefix; README, "Schedules") as a :class:`Plan`."""
    label = text = text.strip()
    if text in ARTICLE:
        text = article_spec(text, epochs, lr)
    kind = None
    for prefix in ("step:", "epoch:"):
        if text.startswith(prefix):
            kind, text = prefix[:-1], text[len(prefix):].strip()
    try:
        call = ast.parse(text, mode="eval").body
    except SyntaxError:
        call = None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name | ast.Attribute):
        lower = {a.lower(): a for a in ARTICLE}
        close = difflib.get_close_matches(text.lower(), list(lower), n=1, cutoff=0.75)
        hint = f" Did you mean {lower[close[0]]!r}?" if close else ""
        raise ValueError(f"--schedules entry {label!r} is neither an article schedule ({', '.join(ARTICLE)}) nor "
                         f"a constructor call such as 'StepLR(0.1, step_size=30)'.{hint}")
    name = ast.unparse(call.func)
    kind = kind or ("step" if name in PER_STEP else "epoch")
    values = {"E": epochs, "S": steps_per_epoch, "T": epochs * steps_per_epoch}
    auto = {"total_steps": "T", "epochs": "E", "steps_per_epoch": "S", "T_max": "T" if kind == "step" else "E"}
    for node in ast.walk(call):  # a call's keywords come before their values
        for kw in getattr(node, "keywords", []):
            if isinstance(kw.value, ast.Name) and kw.value.id == "auto":
                if kw.arg not in auto:
                    raise ValueError(f"--schedules entry {label!r}: 'auto' is allowed for {', '.join(auto)}, "
                                     f"not for {kw.arg}=auto.")
                kw.value.id = auto[kw.arg]
        if isinstance(node, ast.Name) and node.id in values:
            node.id = str(values[node.id])  # a whole name only; unparsed as the number
    if name == "ReduceLROnPlateau" and not call.args and "lr" not in [k.arg for k in call.keywords]:
        call.args = [ast.Constant(lr)]  # the preset's LR, as the article's ReduceLROnPlateau
    try:
        sched = jaxsched.parse_spec(ast.unparse(call))
    except ValueError as e:
        raise ValueError(f"--schedules entry {label!r}: {e}") from None
    if name == "ReduceLROnPlateau":
        return Plan(label, "plateau", sched)
    if getattr(sched, "num_groups", None) not in (None, 1):
        raise ValueError(f"--schedules entry {label!r} has {sched.num_groups} parameter groups; one is trained.")
    if type(sched).__name__ == "OneCycleLR":  # torch raises 'Tried to step N times' past its end: refuse a shorter one
        total = int(sched.total_steps or int(sched.epochs) * int(sched.steps_per_epoch))
        needed = epochs * steps_per_epoch if kind == "step" else epochs
        if needed > total:
            raise ValueError(f"--schedules entry {label!r}: OneCycleLR has total_steps={total}, shorter than the "
                             f"run ({needed} scheduler steps); torch raises 'Tried to step {total + 1} times' "
                             "there. Use total_steps=auto (or epochs=E, steps_per_epoch=S).")
    return Plan(label, kind, sched)


def epoch_lrs(plan: Plan, epoch: int, steps_per_epoch: int, plateau_state=None, momentum: float = 0.9):
    """``(lrs, moms)``: float32 ``(steps_per_epoch,)`` arrays, the LR and momentum of every step."""
    s, S = plan.schedule, steps_per_epoch
    moms = np.full(S, momentum, np.float32)
    if plan.kind != "step":
        return np.full(S, float(s(plateau_state if plan.kind == "plateau" else epoch)), np.float32), moms
    steps = jnp.arange(epoch * S, (epoch + 1) * S)
    if getattr(s, "cycle_momentum", False):  # torch's OneCycleLR/CyclicLR override SGD's momentum
        moms = np.asarray(s.momentum(steps), np.float32).reshape(S)
    return np.asarray(s(steps), np.float32).reshape(S), moms


# the model, the step and the epoch
def compute_dtype():
    return jnp.bfloat16 if jax.default_backend() in ("gpu", "tpu", "cuda", "rocm") else jnp.float32


def build_model(preset: Preset):
    kw = {"dtype": compute_dtype()} | ({"widths": preset.widths} if preset.widths else {})
    return models.MODELS[preset.model](**kw)


def make_tx(preset: Preset):
    return optax.chain(optax.add_decayed_weights(preset.weight_decay),
                       optax.inject_hyperparams(optax.sgd)(learning_rate=preset.base_lr, momentum=preset.momentum))


def init_state(model, tx, seed: int):
    """Initial params, BatchNorm statistics and optimizer state (eager: jitting it was no faster)."""
    v = model.init(jax.random.key(seed), jnp.zeros((2, 32, 32, 3), jnp.float32), train=False)
    return {"params": v["params"], "batch_stats": v["batch_stats"], "opt_state": tx.init(v["params"])}


def normalize(x):
    return (x.astype(jnp.float32) - MEAN) / STD


def augment(x, offs, flips):
    """Random crop with 4-pixel zero padding (torchvision RandomCrop(32, padding=4)) and horizontal flip."""
    xp = jnp.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (32, 32, x.shape[-1])))(xp, offs)
    return jnp.where(flips[:, None, None, None], crop[:, :, ::-1], crop)


def make_step(model, tx, batch_sharding=None):
    """One SGD step of one run: ``(state, x_train, y_train, (idx, offs, flips, lr, mom)) -> (state, (loss,
    correct))``; the batch ``x_train[idx]`` is augmented, normalised and split by ``batch_sharding``."""

    def shard(a):
        return a if batch_sharding is None else jax.lax.with_sharding_constraint(a, batch_sharding)

    def loss_fn(params, batch_stats, x, y):
        logits, upd = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                  mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (upd["batch_stats"], jnp.sum(jnp.argmax(logits, -1) == y))

    def step(state, x_train, y_train, inp):
        idx, offs, flips, lr, mom = inp
        x, y = shard(normalize(augment(x_train[idx], offs, flips))), shard(y_train[idx])
        (loss, (bstats, correct)), g = jax.value_and_grad(loss_fn, has_aux=True)(
            state["params"], state["batch_stats"], x, y)
        opt = state["opt_state"]
        opt = (opt[0], opt[1]._replace(hyperparams=dict(opt[1].hyperparams, learning_rate=lr, momentum=mom)))
        updates, opt = tx.update(g, opt, state["params"])
        return {"params": optax.apply_updates(state["params"], updates), "batch_stats": bstats,
                "opt_state": opt}, (loss, correct)

    return step


def make_programs(model, tx, mesh: Mesh):
    """``(train_epoch, train_step, evaluate)``, jitted: an epoch as one ``lax.scan`` (--loop scan), or step
    ``k`` of it adding to ``sums`` = (summed loss, correct count) for a host loop (--loop host)."""
    step = make_step(model, tx, NamedSharding(mesh, P("data")))

    def train_epoch(state, x_train, y_train, idx, offs, flips, lrs, moms):
        state, (loss, correct) = jax.lax.scan(lambda st, inp: step(st, x_train, y_train, inp), state,
                                              (idx, offs, flips, lrs, moms))
        return state, (jnp.sum(loss), jnp.sum(correct).astype(jnp.float32))

    def train_step(state, x_train, y_train, idx, offs, flips, lrs, moms, k, sums):
        state, (loss, correct) = step(state, x_train, y_train, (idx[k], offs[k], flips[k], lrs[k], moms[k]))
        return state, (sums[0] + loss, sums[1] + correct.astype(jnp.float32))

    def evaluate(state, x_test, y_test, weights):
        variables = {"params": state["params"], "batch_stats": state["batch_stats"]}

        def batch(carry, inp):
            x, y, w = inp
            logits = model.apply(variables, normalize(x), train=False)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            return (carry[0] + jnp.sum(loss * w), carry[1] + jnp.sum((jnp.argmax(logits, -1) == y) * w)), None

        (loss, correct), _ = jax.lax.scan(batch, (jnp.float32(0), jnp.float32(0)), (x_test, y_test, weights))
        return loss / jnp.sum(weights), correct

    return (jax.jit(train_epoch, donate_argnums=0), jax.jit(train_step, donate_argnums=0), jax.jit(evaluate))


def epoch_plan(seed: int, epoch: int, n: int, batch_size: int):
    """Shuffled indices (S, B), crop offsets (S, B, 2) and flips (S, B) of one epoch from the host RNG."""
    rng = np.random.default_rng([seed, epoch])
    steps = n // batch_size
    idx = rng.permutation(n)[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)
    offs = rng.integers(0, 9, size=(steps, batch_size, 2)).astype(np.int32)
    return idx, offs, rng.random((steps, batch_size)) < 0.5


# checkpoints and the output folder
class OutputLocked(RuntimeError):
    """Another process holds the output folder."""


class ResumeError(ValueError):
    """The output folder holds results this run cannot continue."""


@contextlib.contextmanager
def lock_output(out: Path):
    """``fcntl.flock`` on ``out/.lock`` for the block (the kernel drops it when the process dies)."""
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
    """Write through a temporary file and ``os.replace``: a kill leaves the old file or the new one."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaf_digests(leaves) -> list[str]:
    return [sha256(f"{a.dtype}{a.shape}".encode() + np.ascontiguousarray(a).tobytes()) for a in leaves]


class Checkpoint:
    """One run's orbax checkpoints (the latest epoch kept) with the SHA-256 of every saved leaf and, written by
    process 0 after the save, of every file (FILES); a restore checks both (README, "Output and resume")."""

    def __init__(self, path: Path, log: Path):
        import orbax.checkpoint as ocp

        self.path, self.log, self.ocp = path, log, ocp
        self.mgr = ocp.CheckpointManager(path.resolve(), options=ocp.CheckpointManagerOptions(
            max_to_keep=1, cleanup_tmp_directories=True, enable_async_checkpointing=False, create=True))
        self.restart = (f"nothing was trained from it. To restart this run from epoch 0, delete {str(path)!r} and "
                        f"{str(log)!r} and rerun the same command.")

    def save(self, tree, meta: dict) -> None:
        leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
        step, args = int(meta["epoch"]), self.ocp.args
        self.mgr.save(step, args=args.Composite(state=args.StandardSave({"leaves": leaves}),
                                                meta=args.JsonSave(dict(meta, leaf_sha256=leaf_digests(leaves)))),
                      force=True)
        self.mgr.wait_until_finished()
        if jax.process_index() == 0:
            folder = self.path / str(step)
            write_atomic(folder / FILES, json.dumps({str(f.relative_to(folder)): sha256(f.read_bytes()) for f in
                                                     sorted(folder.rglob("*")) if f.is_file() and f.name != FILES}))

    def write_log(self, records: list) -> None:
        """Process 0 rewrites the run's JSONL log whole from ``records``."""
        if jax.process_index() == 0:
            write_atomic(self.log, "".join(json.dumps(r) + "\n" for r in records))

    def load(self, template):
        """``(tree, meta)`` of the latest epoch, or ``(None, None)``; :class:`ResumeError` when damaged."""
        step = self.mgr.latest_step()
        if step is None:
            return None, None
        folder = self.path / str(step)
        if (folder / FILES).is_file():  # absent only after a kill between the save and this file
            for name, digest in json.loads((folder / FILES).read_text()).items():
                f = folder / name
                if not f.is_file() or sha256(f.read_bytes()) != digest:
                    why = "missing" if not f.is_file() else "its SHA-256 differs from the one saved with it"
                    raise ResumeError(f"checkpoint file {str(f)!r} is damaged ({why}); {self.restart}")
        proto, args = [np.asarray(x) for x in jax.tree.leaves(template)], self.ocp.args
        try:
            got = self.mgr.restore(step, args=args.Composite(state=args.StandardRestore({"leaves": proto}),
                                                             meta=args.JsonRestore()))
        except Exception as e:  # orbax/tensorstore errors on damaged or truncated files
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ResumeError(f"checkpoint {str(folder)!r} cannot be read ({first}); {self.restart}") from None
        leaves, meta = [np.asarray(x) for x in got["state"]["leaves"]], dict(got["meta"])
        if len(leaves) != len(proto) or any(a.shape != b.shape for a, b in zip(leaves, proto)):
            raise ResumeError(f"checkpoint {str(folder)!r} does not match this model/schedule; {self.restart}")
        if len(meta.get("leaf_sha256") or []) != len(leaves):
            raise ResumeError(f"checkpoint {str(folder)!r} has no digest for every array; {self.restart}")
        for i, (have, want) in enumerate(zip(leaf_digests(leaves), meta["leaf_sha256"])):
            if have != want:
                raise ResumeError(f"checkpoint {str(folder / 'state')!r}: saved array {i} no longer matches its "
                                  f"SHA-256 (the data files are damaged); {self.restart}")
        return jax.tree.unflatten(jax.tree.structure(template), leaves), meta


# the run
@dataclasses.dataclass
class Member:
    """One run (plan, seed): its state on the host between epochs, plateau state, records and files."""

    plan: Plan
    seed: int
    state: Any
    pst: Any
    meta: dict
    records: list = dataclasses.field(default_factory=list)
    ckpt: Checkpoint | None = None


class Trainer:
    """What every run of a preset shares: the data on the devices, the model and the compiled programs.
    ``arrays``: ``(x_train, y_train, x_test, y_test)``; ``max_steps``: a dry run of at most that many steps
    per epoch and per run in all."""

    def __init__(self, preset: Preset, arrays, devices: int | None = None, loop: str | None = None,
                 max_steps: int | None = None):
        self.preset, self.max_steps = preset, max_steps
        self.loop = loop or ("host" if jax.default_backend() == "cpu" else "scan")
        devs = jax.devices()[:devices] if devices else jax.devices()
        self.mesh = Mesh(np.array(devs), ("data",))
        x_tr, y_tr, x_te, y_te = arrays
        self.n_train, self.n_test = len(y_tr), len(y_te)
        self.layout = lay = layout(preset, self.n_train, self.n_test, len(devs))
        self.S = lay.steps_per_epoch
        self.steps_run = self.S if max_steps is None else min(self.S, max_steps)
        self.epochs = preset.epochs if max_steps is None else min(preset.epochs, -(-max_steps // self.steps_run))
        pad, shape = lay.eval_batches * lay.eval_batch - self.n_test, (lay.eval_batches, lay.eval_batch)
        w = np.concatenate([np.ones(self.n_test, np.float32), np.zeros(pad, np.float32)]).reshape(shape)
        x_te = np.concatenate([x_te, np.zeros((pad, 32, 32, 3), np.uint8)]).reshape(*shape, 32, 32, 3)
        y_te = np.concatenate([y_te, np.zeros(pad, np.int32)]).astype(np.int32).reshape(shape)
        self.train_data = (self.put(x_tr), self.put(y_tr.astype(np.int32)))
        self.test_data = tuple(self.put(a, P(None, "data")) for a in (x_te, y_te, w))
        self.model, self.tx = build_model(preset), make_tx(preset)
        train_epoch, train_step, self.evaluate = make_programs(self.model, self.tx, self.mesh)
        self.program = train_epoch if self.loop == "scan" else train_step
        self.compile_seconds: float | None = None

    def put(self, x, spec: P = REPLICATED):
        """A host array as a global array; each process supplies its own shards (one host or several)."""
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, NamedSharding(self.mesh, spec), lambda i: x[i])

    def epoch(self, state, seed: int, epoch: int, lrs, moms):
        """One epoch of training, then evaluation: ``(state, (train loss sum, correct), (test loss, correct),
        train seconds, total seconds)``; the first call compiles ahead of time (``compile_seconds``)."""
        k, spec = self.steps_run, P(None, "data")
        idx, offs, flips = epoch_plan(seed, epoch, self.n_train, self.preset.batch_size)
        ins = (*self.train_data, self.put(idx[:k], spec), self.put(offs[:k], spec), self.put(flips[:k], spec),
               self.put(lrs[:k]), self.put(moms[:k]))
        host = () if self.loop == "scan" else (self.put(np.int32(0)), (self.put(np.float32(0)),) * 2)
        if self.compile_seconds is None:
            t = time.perf_counter()
            self.program = self.program.lower(state, *ins, *host).compile()
            self.evaluate = self.evaluate.lower(state, *self.test_data).compile()
            self.compile_seconds = time.perf_counter() - t
        t0 = time.perf_counter()
        if self.loop == "scan":
            state, tm = self.program(state, *ins)
        else:
            tm = host[1]
            for i in range(k):
                state, tm = self.program(state, *ins, self.put(np.int32(i)), tm)
        tm = jax.device_get(tm)
        t1 = time.perf_counter()
        em = jax.device_get(self.evaluate(state, *self.test_data))
        return state, tm, em, t1 - t0, time.perf_counter() - t0

    def open(self, plan: Plan, seed: int, out: Path | None) -> Member:
        """A run's starting point: fresh, or its verified checkpoint (the log is rewritten from it)."""
        m = Member(plan, seed, init_state(self.model, self.tx, seed),
                   plan.schedule.init() if plan.kind == "plateau" else None,
                   {"preset": dataclasses.asdict(dataclasses.replace(self.preset, seed=seed)),
                    "model": repr(self.model), "label": plan.label, "schedule": repr(plan.schedule),
                    "kind": plan.kind, "epochs": self.epochs, "steps_per_epoch": self.S,
                    "max_steps": self.max_steps})
        if out is None:
            return m
        slug = plan.slug() + (f"-seed{seed}" if seed else "")
        log = out / f"{slug}.jsonl"
        m.ckpt = Checkpoint(out / "ckpt" / slug, log)
        restored, saved = m.ckpt.load((m.state, m.pst))
        if saved is None:
            if log.is_file() and log.read_text().strip():
                raise ResumeError(f"log {str(log)!r} holds epochs but there is no checkpoint {str(m.ckpt.path)!r} "
                                  "to resume them from; move the log away or use a fresh --out.")
            return m
        mine = json.loads(json.dumps(m.meta))
        diff = sorted(k for k in mine if saved.get(k) != mine[k])
        if diff or len(saved["records"]) != int(saved["epoch"]):
            raise ResumeError(f"checkpoint {str(m.ckpt.path)!r} was written for another run (differs in "
                              f"{', '.join(diff) or 'records'}); use a fresh --out or delete the checkpoint.")
        (m.state, m.pst), m.records = restored, list(saved["records"])
        m.ckpt.write_log(m.records)  # the checkpoint is the truth: a torn or short log is rewritten
        return m

    def train(self, runs: list[tuple[Plan, int]], out: Path | None = None, progress: bool = False) -> list[Member]:
        """Train every (plan, seed) for the preset's epochs, each epoch of every run in turn; with ``out``,
        checkpoint and log every epoch (a rerun resumes). ``self.trained`` counts the epochs run."""
        members = [self.open(plan, seed, out) for plan, seed in runs]
        self.trained, R, B, bar = 0, self.steps_run, self.preset.batch_size, None
        if progress and jax.process_index() == 0:
            from tqdm import tqdm

            bar = tqdm(total=len(members) * self.epochs, initial=sum(len(m.records) for m in members),
                       unit="run-epoch", dynamic_ncols=True)
        for e in range(self.epochs):
            for m in members:
                if len(m.records) > e:
                    continue
                lrs, moms = epoch_lrs(m.plan, e, self.S, m.pst, self.preset.momentum)
                state, tm, em, train_s, total_s = self.epoch(jax.tree.map(self.put, m.state), m.seed, e, lrs, moms)
                m.state, test_loss = jax.device_get(state), float(em[0])
                if m.plan.kind == "plateau":
                    m.pst = m.plan.schedule.update(m.pst, value=test_loss)
                m.records.append({
                    "schedule": m.plan.label, "epoch": e + 1, "lr": float(lrs[0]), "lr_last": float(lrs[R - 1]),
                    "momentum": float(moms[0]), "train_loss": float(tm[0]) / R, "train_acc": float(tm[1]) / (R * B),
                    "test_loss": test_loss, "test_acc": float(em[1]) / self.n_test, "seconds": total_s,
                    "train_seconds": train_s, "images_per_sec": R * B / train_s,
                    "elapsed": (m.records[-1]["elapsed"] if m.records else 0.0) + total_s,
                    "compile_seconds": self.compile_seconds, "devices": self.layout.devices,
                    "backend": jax.default_backend(), "loop": self.loop, "seed": m.seed})
                if m.ckpt is not None:
                    m.ckpt.save((m.state, m.pst), dict(m.meta, epoch=e + 1, records=m.records))
                    m.ckpt.write_log(m.records)
                self.trained += 1
                if bar is not None:
                    bar.set_postfix_str(f"{m.plan.label[:20]} acc={m.records[-1]['test_acc']:.3f}")
                    bar.update(1)
        if bar is not None:
            bar.close()
        return members
