"""``python -m benchmarks.cifar10 --preset NAME --out DIR [--schedules ...] [--seeds N] [--data PATH]``.

Trains every schedule (the article's six by default) with seeds 0..N-1, one run at a time in one compiled
program, every epoch of every run in turn; writes ``DIR/<schedule>[-seed<k>].jsonl`` per epoch,
checkpoints every epoch under ``DIR/ckpt/`` with SHA-256 digests (a rerun of the same command resumes, and
refuses a damaged checkpoint), then ``DIR/summary.md`` and ``DIR/curves.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import os
import platform
import sys
import time
from pathlib import Path

MAX_SEEDS, MAX_EPOCHS = 20, 1000
# a peer that stops answering is declared dead after HEARTBEAT_S by JAX's coordination service, which then
# ends the survivors (an abort from JAX's C++ runtime, not this program's error line)
HEARTBEAT_S, SHUTDOWN_S = 30, 60


class CliError(Exception):
    """A bad argument or an unusable --data/--out/checkpoint: one line on stderr, exit code 2."""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cifar10", description=(__doc__ or "").split("\n\n")[1])
    ap.add_argument("--preset", default="smoke", help="smoke | cpu | gpu | full (default smoke)")
    ap.add_argument("--out", required=True, help="results folder (JSONL, checkpoints, summary.md, curves.png)")
    ap.add_argument("--schedules", nargs="+", default=None,
                    help="article names (the default is all six) and/or jaxsched specs such as "
                         "'OneCycleLR(max_lr=0.4, epochs=E, steps_per_epoch=S)'; placeholders E, S, T=E*S and "
                         "auto; prefix step: or epoch: to choose how often a spec is stepped")
    ap.add_argument("--data", default=None, help="CIFAR-10 source; default: $CIFAR10_DATA, then the repository's "
                                                  "data/, ../shared/data, the user's cache")
    ap.add_argument("--seeds", type=int, default=1, help=f"seeds 0..N-1 per schedule, 1..{MAX_SEEDS} (default 1)")
    ap.add_argument("--epochs", type=int, default=None, help=f"override the preset's epochs (1..{MAX_EPOCHS})")
    ap.add_argument("--loop", choices=("scan", "host"), default=None,
                    help="scan: an epoch is one program (default on GPU/TPU); host: one program per step, the "
                         "host loops (default on CPU, where XLA runs the scan of these networks far slower)")
    ap.add_argument("--max-steps", type=int, default=None, help="dry run: at most N steps per run (not comparable)")
    ap.add_argument("--devices", type=int, default=None, help="use the first N devices (default all)")
    ap.add_argument("--num-processes", type=int, default=None, help="multi-process: the number of processes")
    ap.add_argument("--process-id", type=int, default=None, help="multi-process: this process's index")
    ap.add_argument("--coordinator", default=None, help="multi-process: HOST:PORT of process 0's coordinator")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--report-only", action="store_true", help="only rebuild summary.md and curves.png")
    args = ap.parse_args(argv)
    try:
        out = Path(args.out)
        if args.report_only and not out.is_dir():
            raise CliError(f"--out={args.out!r} does not exist; run the benchmark first (without --report-only).")
        if args.report_only or train_all(args, out):
            from . import report

            try:
                report.write_report(out)
            except FileNotFoundError as e:
                raise CliError(str(e)) from None
            print(f"wrote {out / 'summary.md'} and {out / 'curves.png'}", file=sys.stderr)
        return 0
    except CliError as e:
        print(f"{ap.prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


def check_args(args) -> None:
    """Every bound that needs no data and no devices, as one-line errors."""
    from .train import PRESETS

    if args.preset not in PRESETS:
        close = difflib.get_close_matches(args.preset.lower(), list(PRESETS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise CliError(f"--preset must be one of {', '.join(PRESETS)}, got --preset={args.preset!r}{hint}")
    for flag, v, hi in (("--seeds", args.seeds, MAX_SEEDS), ("--epochs", args.epochs, MAX_EPOCHS),
                        ("--max-steps", args.max_steps, None), ("--devices", args.devices, None)):
        if v is not None and (v < 1 or (hi is not None and v > hi)):
            rule = ">= 1" if hi is None else f"between 1 and {hi}"
            raise CliError(f"{flag} must be {rule}, got {flag}={v!r}")
    out = Path(args.out)
    for p in [out, *out.parents]:
        if p.exists() and not p.is_dir():
            raise CliError(f"--out={args.out!r} cannot be a folder: {str(p)!r} is a file.")
    given = [args.num_processes, args.process_id, args.coordinator]
    if any(v is not None for v in given) and (
            any(v is None for v in given) or args.num_processes < 1 or not 0 <= args.process_id < args.num_processes
            or ":" not in args.coordinator):
        raise CliError("--num-processes N, --process-id I (0 <= I < N) and --coordinator HOST:PORT go together; got "
                       f"--num-processes={args.num_processes!r}, --process-id={args.process_id!r}, "
                       f"--coordinator={args.coordinator!r}")


def init_distributed(args, jax) -> None:
    """``jax.distributed.initialize`` from the three flags (or JAX_COORDINATOR_ADDRESS), with a bounded heartbeat."""
    if args.coordinator is None and not os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kw = {} if args.coordinator is None else {"coordinator_address": args.coordinator,
                                              "num_processes": args.num_processes, "process_id": args.process_id}
    jax.distributed.initialize(**kw, heartbeat_timeout_seconds=HEARTBEAT_S, shutdown_timeout_seconds=SHUTDOWN_S)
    print(f"process {jax.process_index()} of {jax.process_count()}: if a peer dies, JAX ends this process within "
          f"about {HEARTBEAT_S} s; rerun the same command on every host to resume from the last checkpoints.",
          file=sys.stderr)


def train_all(args, out: Path) -> bool:
    """Check what can be checked before loading or compiling, then train every (schedule, seed) into ``out``.
    True on the process that writes the report (process 0)."""
    check_args(args)
    import jax

    from . import data, train

    preset = train.PRESETS[args.preset]
    if args.epochs is not None:
        preset = dataclasses.replace(preset, epochs=args.epochs)
    init_distributed(args, jax)
    if args.devices is not None and args.devices > jax.device_count():
        raise CliError(f"--devices must be between 1 and {jax.device_count()} (the devices this process sees), "
                       f"got --devices={args.devices!r}")
    n_train, n_test = preset.images()
    try:
        train.layout(preset, n_train, n_test, args.devices or jax.device_count())
        S = n_train // preset.batch_size
        plans = [train.parse_schedule(n, preset.epochs, S, preset.base_lr) for n in args.schedules or train.ARTICLE]
        labels = [p.label for p in plans]
        if len(set(labels)) != len(labels):
            raise CliError(f"--schedules names {', '.join(sorted({n for n in labels if labels.count(n) > 1}))} twice.")
        src, kind = data.find_source(args.data)
        arrays = data.load_cifar10(src, use=(preset.train_per_class, preset.test_per_class))
    except (ValueError, data.DataNotFoundError) as e:  # one-line errors of train and data
        raise CliError(str(e)) from None
    print(f"data: {data.describe(src, kind)} from {str(src.parent)!r}", file=sys.stderr)
    trainer = train.Trainer(preset, arrays, args.devices, loop=args.loop, max_steps=args.max_steps)
    main_process, existed = jax.process_index() == 0, out.exists()
    pairs = [(plan, seed) for plan in plans for seed in range(args.seeds)]
    try:
        with train.lock_output(out) if main_process else contextlib.nullcontext():
            if main_process:
                for f in out.glob("*.tmp[0-9]*"):  # left by a kill inside write_atomic
                    f.unlink(missing_ok=True)
                write_info(out, trainer, plans, args.seeds, data.describe(src, kind), str(src.parent))
            trainer.train(pairs, out, progress=not args.no_progress)
    except (train.OutputLocked, train.ResumeError) as e:
        if not existed and out.is_dir() and not any(p.name != ".lock" for p in out.iterdir()):
            (out / ".lock").unlink(missing_ok=True)
            out.rmdir()
        raise CliError(str(e)) from None
    if main_process and trainer.trained == 0:
        print(f"already finished: all {len(pairs)} run(s) in {str(out)!r} have their {trainer.epochs} epochs; "
              "nothing was trained (use a new --out to train again). Rebuilding the report.", file=sys.stderr)
    return main_process


def write_info(out: Path, trainer, plans, seeds: int, data: str, data_folder: str) -> None:
    """``out/run.json``: the setup of the run (the schedules of earlier runs into ``out`` kept)."""
    import jax

    from . import models, train

    p, lay = trainer.preset, trainer.layout
    shapes = jax.eval_shape(lambda: train.init_state(trainer.model, trainer.tx, 0))
    info = {"preset": p.name, "model": p.model, "epochs": p.epochs, "batch_size": p.batch_size,
            "train_images": trainer.n_train, "test_images": trainer.n_test, "steps_per_epoch": trainer.S,
            "data": data, "data_folder": data_folder, "backend": jax.default_backend(), "devices": lay.devices,
            "eval_batch": lay.eval_batch, "device_kind": jax.devices()[0].device_kind,
            "processes": jax.process_count(), "loop": trainer.loop, "max_steps": trainer.max_steps,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "params": models.num_params(shapes["params"]),
            "compute_dtype": jax.numpy.dtype(train.compute_dtype()).name, "date": time.strftime("%Y-%m-%d"),
            "seeds": seeds, "schedules": {pl.label: repr(pl.schedule) for pl in plans}}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        info["schedules"] = {**json.loads((out / "run.json").read_text()).get("schedules", {}), **info["schedules"]}
    train.write_atomic(out / "run.json", json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
