"""How several runs could share one program, measured; the per-preset estimate; the one device check.

    python -m benchmarks.cifar10.formulations [--runs 2] [--timeout 300]   # measure, write a results file
    python -m benchmarks.cifar10.formulations --estimate [--results FILE]  # per preset: compile, flops, roofline
    python -m benchmarks.cifar10.formulations --device-check               # on a GPU/TPU: see the README

Each formulation of R runs (``one``: a single run, what the benchmark compiles; ``map``: ``lax.map``; ``vmap``;
``unrolled``: the step written R times; ``eval``/``vmap-eval``: the forward pass of 1 or R runs) is measured in its
own subprocess with a time and memory limit: lower and compile seconds, XLA's cost and memory analysis, the peak
resident memory after each phase, or "did not finish in N s" at the phase reached (README, "Runs").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
# peak dense bf16 tensor FLOP/s and memory bandwidth from NVIDIA's data sheets (H100 SXM5: 989.4 TFLOP/s,
# 3.35 TB/s HBM3; H200 SXM: 989 TFLOP/s, 4.8 TB/s HBM3e); the sparsity figures (2x) are not used
ACCELERATORS = {"H100 SXM": (989.4e12, 3.35e12), "H200 SXM": (989e12, 4.8e12)}
FORMS = ("one", "map", "vmap", "unrolled")
LIMIT_GB = 8.0  # a CPU measurement is stopped above this resident memory (the machine is shared)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(form: str, model: str, runs: int, devices: int, batch: int, limit_gb: float, steps: int) -> None:
    """Child process: print one JSON line per phase, the last one complete."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from . import train

    rec = {"form": form, "model": model, "runs": runs, "devices": devices, "batch": batch}

    def emit(**kw):
        rec.update(kw, peak_rss_gb=round(_rss_gb(), 2))
        print(json.dumps(rec), flush=True)

    def watch():  # end the process before it takes the machine's memory; report the peak every 10 s
        for i in range(10**9):
            if _rss_gb() > limit_gb:
                emit(stopped=f"peak resident memory passed {limit_gb} GB")
                os._exit(3)
            if i % 50 == 49:
                emit(alive_s=round(i * 0.2))
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    preset = train.PRESETS["gpu" if model == "resnet18" else "cpu"]
    net, tx = train.build_model(preset), train.make_tx(preset)  # bfloat16 on GPU/TPU, float32 on CPU
    mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
    step = train.make_step(net, tx, NamedSharding(mesh, P("data")) if devices > 1 else None)
    rng = np.random.default_rng(0)
    x_tr = jnp.asarray(rng.integers(0, 256, (4096, 32, 32, 3), np.uint8))
    y_tr = jnp.asarray(rng.integers(0, 10, 4096, np.int32))
    state = train.init_state(net, tx, 0)
    variables = {k: state[k] for k in ("params", "batch_stats")}

    def inputs(lead):
        return (jnp.asarray(rng.integers(0, 4096, (*lead, batch), np.int32)),
                jnp.asarray(rng.integers(0, 9, (*lead, batch, 2), np.int32)),
                jnp.asarray(rng.random((*lead, batch)) < 0.5), jnp.full(lead, 0.1, jnp.float32),
                jnp.full(lead, 0.9, jnp.float32))

    def stacked(tree):
        return jax.tree.map(lambda a: jnp.stack([a] * runs), tree)

    def x_eval():
        return jax.device_put(jnp.zeros((batch, 32, 32, 3), jnp.float32), NamedSharding(mesh, P("data")))

    def apply(v, x):
        return net.apply(v, x, train=False)

    def unrolled(s, x, y, i):
        pick = lambda tree, r: jax.tree.map(lambda a: a[r], tree)  # noqa: E731
        return jax.tree.map(lambda *a: jnp.stack(a), *[step(pick(s, r), x, y, pick(i, r)) for r in range(runs)])

    forms = {  # built on demand: only the measured form's arguments are ever allocated
        "eval": lambda: (apply, (variables, x_eval())),
        "vmap-eval": lambda: (jax.vmap(apply, in_axes=(0, None)), (stacked(variables), x_eval())),
        "one": lambda: (step, (state, x_tr, y_tr, inputs(()))),
        "vmap": lambda: (jax.vmap(step, in_axes=(0, None, None, 0)), (stacked(state), x_tr, y_tr, inputs((runs,)))),
        "map": lambda: (lambda s, x, y, i: jax.lax.map(lambda a: step(a[0], x, y, a[1]), (s, i)),
                        (stacked(state), x_tr, y_tr, inputs((runs,)))),
        "unrolled": lambda: (unrolled, (stacked(state), x_tr, y_tr, inputs((runs,)))),
    }
    fn, args = forms[form]()
    emit(phase="start")
    t = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    emit(phase="lowered", lower_s=round(time.perf_counter() - t, 2))
    t = time.perf_counter()
    compiled = lowered.compile()
    cost, mem = compiled.cost_analysis(), compiled.memory_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    emit(phase="compiled", compile_s=round(time.perf_counter() - t, 2), flops=cost.get("flops"),
         bytes_accessed=cost.get("bytes accessed"),
         temp_gb=round(getattr(mem, "temp_size_in_bytes", 0) / 2**30, 3),
         argument_gb=round(getattr(mem, "argument_size_in_bytes", 0) / 2**30, 3))
    if model == "resnet18" and jax.default_backend() == "cpu" and steps < 1:
        return  # one ResNet-18 step took 68 s on the loaded 2-core CPU (2026-12-03): compile figures only
    t = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    emit(phase="executed", first_run_s=round(time.perf_counter() - t, 2))
    t, n = time.perf_counter(), max(steps, 1)
    for _ in range(n):
        out = compiled(*args)
    jax.block_until_ready(out)
    s = (time.perf_counter() - t) / n
    emit(phase="done", step_s=round(s, 4), steps_timed=n,
         images_per_sec=round((1 if form in ("one", "eval") else runs) * batch / s, 1))


def run_child(form, model, runs, devices, batch, timeout, limit_gb, steps=0, cpu=True) -> dict:
    """:func:`measure` in a subprocess (on ``devices`` forced CPU devices with ``cpu``): its last record."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu") \
        if cpu else dict(os.environ)
    child = dict(form=form, model=model, runs=runs, devices=devices, batch=batch, limit_gb=limit_gb, steps=steps)
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "benchmarks.cifar10.formulations", "--child", json.dumps(child)],
                           capture_output=True, text=True, timeout=timeout, env=env)
        text, note = p.stdout, None if p.returncode == 0 else f"exit {p.returncode}: {p.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired as e:
        text = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        note = f"did not finish in {timeout} s"
    lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    rec = lines[-1] if lines else {"form": form, "model": model, "runs": runs, "devices": devices}
    rec["wall_s"] = round(time.perf_counter() - t, 1)
    if note:
        rec["note"] = note
    print(json.dumps(rec), flush=True)
    return rec


PLAN = [  # (form, model, runs (0: --runs), devices, batch, timeout factor)
    ("one", "small", 1, 1, 128, 1), ("eval", "small", 1, 1, 500, 1), ("eval", "resnet18", 1, 1, 128, 1),
    ("one", "resnet18", 1, 1, 128, 2), ("map", "resnet18", 0, 1, 128, 2), ("vmap", "resnet18", 0, 1, 128, 2),
    ("unrolled", "resnet18", 0, 1, 128, 1), ("vmap", "resnet18", 0, 4, 128, 2), ("one", "resnet18", 1, 4, 128, 2),
]


def device_check(out: Path, budget_s: float = 450.0) -> dict:
    """On one GPU/TPU, within ``budget_s``: each formulation of 6 ResNet-18 runs at the gpu preset's batch
    (compile seconds, flops, images/s over 20 steps), then one epoch of the gpu preset through the command
    (compile seconds, images/s, test accuracy); unrolled last, with whatever time is left."""
    import jax

    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    left = lambda: int(budget_s - (time.perf_counter() - t0))  # noqa: E731
    res = {"date": time.strftime("%Y-%m-%d"), "device": f"{jax.devices()[0].device_kind} x{jax.device_count()}",
           "backend": jax.default_backend(), "records": []}
    for form, runs, limit in (("one", 1, 90), ("vmap", 6, 120), ("map", 6, 120)):
        res["records"].append({"form": form, "runs": runs, "note": "skipped: no time left"} if left() < 15 else
                              run_child(form, "resnet18", runs, 1, 128, min(limit, left()), 100.0, 20, cpu=False))
    epoch_out = out.parent / "gpu-1epoch"
    cmd = [sys.executable, "-m", "benchmarks.cifar10", "--preset", "gpu", "--epochs", "1", "--schedules", "OneCycleLR",
           "--out", str(epoch_out), "--no-progress"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1, min(180, left())))
        res["one_epoch"] = json.loads((epoch_out / "OneCycleLR.jsonl").read_text().splitlines()[-1]) \
            if p.returncode == 0 else {"note": f"exit {p.returncode}: {p.stderr.strip()[-300:]}"}
    except subprocess.TimeoutExpired:
        res["one_epoch"] = {"note": "one epoch did not finish in the time left"}
    if left() > 30:
        res["records"].append(run_child("unrolled", "resnet18", 6, 1, 128, left() - 10, 100.0, 20, cpu=False))
    res["seconds"] = round(time.perf_counter() - t0, 1)
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def estimate(results: Path) -> str:
    """Per preset: compile seconds measured here, flops and bytes per epoch, roofline seconds per accelerator."""
    from . import train

    data = json.loads(results.read_text())

    def find(form, model):
        return next((r for r in data["records"] if r["form"] == form and r["model"] == model and r["devices"] == 1
                     and r.get("flops")), None)

    names = " | ".join(f"roofline {a}, 6 schedules" for a in ACCELERATORS)
    lines = [f"| preset | model | compile here (s) | TFLOP / epoch | GB / epoch | {names} |",
             "|---|---|---:|---:|---:|" + "---:|" * len(ACCELERATORS)]
    for name, p in train.PRESETS.items():
        step, ev = find("one", p.model), find("eval", p.model)
        if step is None or ev is None:
            lines.append(f"| {name} | {p.model} | not measured | | | |")
            continue
        n_train, n_test = p.images()
        steps, evals = n_train // p.batch_size * p.batch_size / step["batch"], n_test / ev["batch"]
        flops = steps * step["flops"] + evals * ev["flops"]
        byts = steps * step["bytes_accessed"] + evals * ev["bytes_accessed"]
        roof = " | ".join(f"{max(flops / f, byts / b) * 6 * p.epochs / 60:.2f} min" for f, b in ACCELERATORS.values())
        lines.append(f"| {name}{' *' if p.widths else ''} | {p.model} | {step['compile_s'] + ev['compile_s']:.0f} | "
                     f"{flops / 1e12:.2f} | {byts / 1e9:.0f} | {roof} |")
    peaks = "; ".join(f"{a}: {f / 1e12:.0f} TFLOP/s dense bf16, {b / 1e12:.2f} TB/s" for a, (f, b) in
                      ACCELERATORS.items())
    lines += ["", f"An estimate, not a measurement. From {results.name} ({data['date']}, {data['machine']}): flops and "
              "bytes are XLA:CPU's cost_analysis() of the float32 training step and forward pass, per epoch (bf16 has "
              "the same flops and fewer bytes); compile = step + forward, one run per program, compiled once per run "
              f"shape. Roofline = max(flops / peak, bytes / bandwidth) over 6 schedules x the preset's epochs, a lower "
              f"bound ({peaks}; NVIDIA data sheets). * smoke's widths are smaller than the measured SmallResNet's."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cifar10.formulations",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2, help="runs per program for map/vmap/unrolled, 1..16 (default 2)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per measurement (default 300)")
    ap.add_argument("--out", default=None, help="results file (default benchmarks/results/cifar10-formulations-"
                                                "<backend>-<date>.json)")
    ap.add_argument("--estimate", action="store_true", help="print the per-preset estimate from --results")
    ap.add_argument("--results", default=str(RESULTS / "cifar10-formulations-cpu-2026-12-03.json"))
    ap.add_argument("--device-check", action="store_true",
                    help="on a GPU/TPU: the one prepared check (about 7 minutes), results to --out")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # measure()'s arguments as JSON
    args = ap.parse_args(argv)
    if args.child:
        measure(**json.loads(args.child))
    elif args.device_check:
        print(json.dumps(device_check(Path(args.out or "cifar10-device-check.json")), indent=1))
    elif args.estimate:
        print(estimate(Path(args.results)))
    else:
        if not 1 <= args.runs <= 16:
            ap.error(f"--runs must be between 1 and 16, got --runs={args.runs}")
        recs = [run_child(f, m, r or args.runs, d, b, args.timeout * k, LIMIT_GB) for f, m, r, d, b, k in PLAN]
        out = Path(args.out or RESULTS / f"cifar10-formulations-cpu-{time.strftime('%Y-%m-%d')}.json")
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()}-core "
                                   f"{platform.machine()} CPU, XLA:CPU (float32)", "timeout_s": args.timeout,
                                   "records": recs}, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
