"""``python -m benchmarks.cifar10 --preset NAME --out DIR [--schedules ...] [--data PATH]``.

Trains one run per schedule (the article's six by default), writes ``DIR/<schedule>.jsonl`` per epoch,
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
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cifar10", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="smoke", help="smoke | cpu | full (default smoke)")
    ap.add_argument("--out", required=True, help="results folder (JSONL, checkpoints, summary.md, curves.png)")
    ap.add_argument("--schedules", nargs="+", default=None,
                    help="article names (StepLR MultiStepLR ExponentialLR CosineAnnealingLR ReduceLROnPlateau "
                         "OneCycleLR; the default is all six) and/or jaxsched specs, e.g. "
                         "'OneCycleLR(max_lr=0.4, epochs=E, steps_per_epoch=S)'; placeholders E, S, T=E*S, "
                         "key=auto; prefix step: or epoch: to choose how often a spec is stepped")
    ap.add_argument("--data", default=None, help="CIFAR-10 source (cifar-10-batches-py, its .tar.gz, or "
                                                  "cifar10-jpeg.tar.gz); default: search the usual places")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epoch count")
    ap.add_argument("--devices", type=int, default=None, help="use the first N local devices (default all)")
    ap.add_argument("--distributed", action="store_true",
                    help="call jax.distributed.initialize() first (multi-host; also done when "
                         "JAX_COORDINATOR_ADDRESS is set)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--report-only", action="store_true", help="only rebuild summary.md and curves.png")
    args = ap.parse_args(argv)

    import jax

    if args.distributed or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize()

    from . import report, train

    if args.preset not in train.PRESETS:
        ap.error(f"--preset must be one of {', '.join(train.PRESETS)}, got --preset={args.preset!r}")
    preset = train.PRESETS[args.preset]
    if args.epochs is not None:
        if args.epochs < 1:
            ap.error(f"--epochs must be >= 1, got --epochs={args.epochs!r}")
        preset = train.dataclasses.replace(preset, epochs=args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.schedules or list(train.ARTICLE)

    if not args.report_only:
        run = train.Run(preset, args.data, args.devices)
        plans = [train.parse_schedule(n, preset.epochs, run.steps_per_epoch, preset.base_lr) for n in names]
        info = {"preset": preset.name, "model": preset.model, "epochs": preset.epochs, "batch_size": preset.batch_size,
                "train_images": run.n_train, "test_images": run.n_test, "steps_per_epoch": run.steps_per_epoch,
                "data": train.describe(preset, args.data), "backend": jax.default_backend(),
                "devices": int(run.mesh.devices.size), "device_kind": jax.devices()[0].device_kind,
                "processes": jax.process_count(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
                "params": train.models.num_params(train.init_state(run.model, run.tx, 0)["params"]),
                "compute_dtype": str(train.compute_dtype().__name__ if hasattr(train.compute_dtype(), "__name__")
                                     else train.compute_dtype()),
                "date": time.strftime("%Y-%m-%d"), "schedules": {p.label: repr(p.schedule) for p in plans}}
        if jax.process_index() == 0:
            old = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
            info["schedules"] = {**old.get("schedules", {}), **info["schedules"]}
            (out / "run.json").write_text(json.dumps(info, indent=1) + "\n")
        # the schedules advance together, one epoch each in turn: an interrupted run has comparable results
        for epoch in range(1, preset.epochs + 1):
            for plan in plans:
                run.train(plan, out, progress=not args.no_progress, until=epoch)
    if jax.process_index() == 0:
        report.write_report(out, order=[train.parse_label(n) for n in names])
        print(f"wrote {out / 'summary.md'} and {out / 'curves.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
