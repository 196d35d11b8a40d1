"""``python -m benchmarks.cifar10 --preset NAME --out DIR [--schedules ...] [--data PATH]``.

Trains one run per schedule and seed (the article's six by default), all in one compiled program
(``--sequential``: one run at a time), writes ``DIR/<schedule>.jsonl`` per epoch,
checkpoints every epoch under ``DIR/ckpt/`` (a rerun with the same arguments resumes), then writes
``DIR/summary.md`` and ``DIR/curves.png``. ``--report-only`` rebuilds the summary from the JSONL files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cifar10", description=(__doc__ or "").split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smoke", help="smoke | cpu | gpu | full (default smoke)")
    ap.add_argument("--out", required=True, help="results folder (JSONL, checkpoints, summary.md, curves.png)")
    ap.add_argument("--schedules", nargs="+", default=None,
                    help="article names (StepLR MultiStepLR ExponentialLR CosineAnnealingLR ReduceLROnPlateau "
                         "OneCycleLR; the default is all six) and/or jaxsched specs, e.g. "
                         "'OneCycleLR(max_lr=0.4, epochs=E, steps_per_epoch=S)'; placeholders E, S, T=E*S, "
                         "key=auto; prefix step: or epoch: to choose how often a spec is stepped")
    ap.add_argument("--data", default=None, help="CIFAR-10 source (cifar-10-batches-py, its .tar.gz, or "
                                                  "cifar10-jpeg.tar.gz); default: search the usual places")
    ap.add_argument("--seeds", type=int, default=1,
                    help="train every schedule with seeds 0..N-1 (default 1); the summary reports mean and 95%% "
                         "intervals and judges the article's claims only where the intervals allow")
    ap.add_argument("--sequential", action="store_true",
                    help="train one run (schedule, seed) at a time, each its own program, instead of all runs "
                         "in one program along a leading run axis")
    ap.add_argument("--runs-as", choices=("unrolled", "vmap", "grouped"), default=None,
                    help="how the runs share one program: unrolled (each run's step written out in the program; "
                         "the default, measured fastest on CPU), vmap (jax.vmap over the run axis) or grouped "
                         "(runs folded into the channels, grouped convolutions; float32 only)")
    ap.add_argument("--runs-per-program", type=int, default=None,
                    help="at most N runs per program (default all); the rest follow in further programs")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epoch count")
    ap.add_argument("--loop", choices=("scan", "host"), default=None,
                    help="scan: each epoch is one compiled program (lax.scan over its steps; the default on GPU/TPU); "
                         "host: one compiled step, the host loops (the default on CPU)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="dry run: at most N training steps per run (for checking a preset's program on a "
                         "small machine); results are written but not comparable")
    ap.add_argument("--devices", type=int, default=None, help="use the first N local devices (default all)")
    ap.add_argument("--distributed", action="store_true",
                    help="call jax.distributed.initialize() first (multi-host; also done when "
                         "JAX_COORDINATOR_ADDRESS is set)")
    ap.add_argument("--num-processes", type=int, default=None, help="multi-process: the number of processes")
    ap.add_argument("--process-id", type=int, default=None, help="multi-process: this process's index")
    ap.add_argument("--coordinator", default=None, help="multi-process: HOST:PORT of process 0's coordinator")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--report-only", action="store_true", help="only rebuild summary.md and curves.png")
    args = ap.parse_args(argv)
    try:
        return _run(ap, args)
    except CliError as e:
        print(f"{ap.prog}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A bad argument or an unusable --data/--out: reported as one line, exit code 2."""


def _one_line(msg: str) -> str:
    return " ".join(part.strip() for part in msg.splitlines() if part.strip())


def _run(ap, args) -> int:
    from .data import DataError, DataNotFoundError

    if args.report_only:
        from . import report

        out = Path(args.out)
        if not out.is_dir():
            raise CliError(f"--out={args.out!r} does not exist; run the benchmark first (without --report-only).")
        try:
            report.write_report(out, order=None)
        except FileNotFoundError as e:
            raise CliError(str(e)) from None
        print(f"wrote {out / 'summary.md'} and {out / 'curves.png'}", file=sys.stderr)
        return 0

    import jax

    init_distributed(args, jax)

    from . import report, train

    if args.preset not in train.PRESETS:
        raise CliError(f"--preset must be one of {', '.join(train.PRESETS)}, got --preset={args.preset!r}")
    preset = train.PRESETS[args.preset]
    if args.epochs is not None:
        if args.epochs < 1:
            raise CliError(f"--epochs must be >= 1, got --epochs={args.epochs!r}")
        preset = train.dataclasses.replace(preset, epochs=args.epochs)
    if args.max_steps is not None and args.max_steps < 1:
        raise CliError(f"--max-steps must be >= 1, got --max-steps={args.max_steps!r}")
    if args.seeds < 1:
        raise CliError(f"--seeds must be >= 1, got --seeds={args.seeds!r}")
    if args.runs_per_program is not None and args.runs_per_program < 1:
        raise CliError(f"--runs-per-program must be >= 1, got --runs-per-program={args.runs_per_program!r}")
    if args.sequential and (args.runs_as or args.runs_per_program):
        raise CliError("--sequential trains one run at a time; it does not go with --runs-as or --runs-per-program.")
    runs_as = args.runs_as or train.DEFAULT_RUNS_AS
    if runs_as == "grouped" and train.compute_dtype() != train.jnp.float32:
        raise CliError(f"--runs-as grouped is written for float32 models; this {jax.default_backend()} backend "
                       "computes in bfloat16. Use --runs-as unrolled or vmap.")
    if args.devices is not None and not 1 <= args.devices <= jax.device_count():
        raise CliError(f"--devices must be between 1 and {jax.device_count()} (the devices this process sees), "
                       f"got --devices={args.devices!r}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out={args.out!r} is a file, not a folder.")
    names = args.schedules or list(train.ARTICLE)
    labels = [train.parse_label(n) for n in names]
    if len(set(labels)) != len(labels):
        dup = sorted({n for n in labels if labels.count(n) > 1})
        raise CliError(f"--schedules names {', '.join(dup)} more than once.")
    S = train.preset_steps_per_epoch(preset)
    try:
        plans = [train.parse_schedule(n, preset.epochs, S, preset.base_lr) for n in names]
    except ValueError as e:
        raise CliError(str(e)) from None
    try:
        run = train.Run(preset, args.data, args.devices, loop=args.loop, max_steps=args.max_steps)
    except (DataNotFoundError, DataError) as e:
        raise CliError(str(e)) from None
    except ValueError as e:  # batch sizes against the device count
        raise CliError(str(e)) from None
    if run.steps_per_epoch != S:  # the placeholders must use the data's steps per epoch
        plans = [train.parse_schedule(n, preset.epochs, run.steps_per_epoch, preset.base_lr) for n in names]
    main = jax.process_index() == 0
    existed = out.exists()
    try:
        with train.lock_output(out) if main else train.contextlib.nullcontext():
            if main:
                train.clean_temporaries(out)
                _write_info(out, preset, run, plans, args, jax)
            pairs = [(plan, seed) for plan in plans for seed in range(args.seeds)]
            trained = 0
            if args.sequential:
                # one run at a time, each one epoch in turn: an interrupted run has comparable results
                for epoch in range(1, preset.epochs + 1):
                    for plan, seed in pairs:
                        run.train(plan, out, progress=not args.no_progress, until=epoch, seed=seed)
                        trained += run.trained_epochs
            else:
                n = args.runs_per_program or len(pairs)
                for i in range(0, len(pairs), n):
                    run.train_together(pairs[i:i + n], out, progress=not args.no_progress, runs_as=runs_as)
                    trained += run.trained_epochs
    except (train.OutputLocked, train.ResumeError) as e:
        if not existed and out.is_dir() and not any(p.name != ".lock" for p in out.iterdir()):
            (out / ".lock").unlink(missing_ok=True)
            out.rmdir()
        raise CliError(str(e)) from None
    if main:
        if trained == 0:
            print(f"already finished: all {len(plans) * args.seeds} run(s) in {str(out)!r} have their {preset.epochs} "
                  "epochs; nothing was trained (use a new --out to train again). Rebuilding the report.",
                  file=sys.stderr)
        report.write_report(out, order=labels)
        print(f"wrote {out / 'summary.md'} and {out / 'curves.png'}", file=sys.stderr)
    return 0


def init_distributed(args, jax) -> None:
    """``jax.distributed.initialize`` from ``--num-processes/--process-id/--coordinator`` (all three, or
    none), or from the environment with ``--distributed`` / ``JAX_COORDINATOR_ADDRESS``. On CPU the
    cross-process collectives are gloo's."""
    given = [args.num_processes, args.process_id, args.coordinator]
    if any(v is not None for v in given):
        if any(v is None for v in given):
            raise CliError("--num-processes, --process-id and --coordinator go together; got "
                           f"--num-processes={args.num_processes!r}, --process-id={args.process_id!r}, "
                           f"--coordinator={args.coordinator!r}")
        if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
            raise CliError(f"need --num-processes >= 1 and 0 <= --process-id < --num-processes, got "
                           f"--num-processes={args.num_processes!r}, --process-id={args.process_id!r}")
        if ":" not in args.coordinator:
            raise CliError(f"--coordinator must be HOST:PORT, got --coordinator={args.coordinator!r}")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
    elif args.distributed or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize()


def _write_info(out: Path, preset, run, plans, args, jax) -> None:
    from . import train

    info = {"preset": preset.name, "model": preset.model, "epochs": preset.epochs, "batch_size": preset.batch_size,
            "train_images": run.n_train, "test_images": run.n_test, "steps_per_epoch": run.steps_per_epoch,
            "data": train.describe(preset, args.data), "backend": jax.default_backend(),
            "devices": int(run.mesh.devices.size), "device_kind": jax.devices()[0].device_kind,
            "processes": jax.process_count(), "loop": run.loop, "max_steps": run.max_steps,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "params": train.count_params(run.model),
            "compute_dtype": str(getattr(train.compute_dtype(), "__name__", train.compute_dtype())),
            "date": time.strftime("%Y-%m-%d"), "seeds": args.seeds,
            "runs_as": "sequential" if args.sequential else (args.runs_as or train.DEFAULT_RUNS_AS),
            "runs_per_program": 1 if args.sequential else min(args.runs_per_program or len(plans) * args.seeds,
                                                              len(plans) * args.seeds),
            "schedules": {p.label: repr(p.schedule) for p in plans}}
    try:
        old = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    except json.JSONDecodeError:  # torn by a kill mid-write of an older version: rebuilt below
        old = {}
    info["schedules"] = {**old.get("schedules", {}), **info["schedules"]}
    train.write_atomic(out / "run.json", json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
