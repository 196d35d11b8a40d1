"""The CIFAR-10 benchmark on several devices, the scan loop, and a SIGKILL mid-run (subprocesses; slow).

ResNet-18 is compiled once in the whole suite (``full`` on 8 forced devices, one step, a small evaluation);
the other presets on 8 devices use the SmallResNet. The arithmetic of every preset on 1, 2, 4 and 8 devices
is checked without compiling in test_cifar10_unit.py. Multi-device dry runs stay tiny: XLA:CPU's simulated
devices on 2 loaded cores can miss their collective rendezvous in a long program (an abort, not a bug here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import CLI_SCRIPT, HERE, REPO, fake_arrays

from benchmarks.cifar10 import train

pytestmark = pytest.mark.slow
METRICS = ("epoch", "lr", "lr_last", "momentum", "train_loss", "train_acc", "test_loss", "test_acc")


def test_scan_loop_agrees_with_host_loop():
    """The accelerator path (an epoch is one lax.scan program) against the CPU path (host loop)."""
    preset = dataclasses.replace(train.PRESETS["smoke"], epochs=1)
    got = {}
    for loop in ("scan", "host"):
        t = train.Trainer(preset, fake_arrays(), loop=loop)
        (m,) = t.train([(train.parse_schedule("OneCycleLR", 1, 5), 0)])
        got[loop] = np.array([[r["train_loss"], r["train_acc"], r["test_loss"], r["lr_last"]] for r in m.records])
    assert got["scan"].shape == (1, 4)
    # the same five updates; float32 summation order differs and a few max-pool/ReLU decisions flip
    np.testing.assert_allclose(got["scan"][:, [0, 2, 3]], got["host"][:, [0, 2, 3]], rtol=2e-2)
    np.testing.assert_allclose(got["scan"][:, 1], got["host"][:, 1], atol=0.1)


EIGHT = textwrap.dedent(f"""
    import dataclasses, json, sys
    sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(HERE)!r})
    import jax, numpy as np
    assert jax.device_count() == 8, jax.devices()
    from cifar10_fakes import fake_arrays
    from benchmarks.cifar10 import train
    out = {{}}
    smoke = train.PRESETS["smoke"]
    for n in (8, 1):  # one step from the same state on 8 devices and on 1
        t = train.Trainer(smoke, fake_arrays(), devices=n, max_steps=1)
        (m,) = t.train([(train.parse_schedule("StepLR", 3, 5), 0)])
        leaves = np.concatenate([np.ravel(x) for x in jax.tree.leaves(m.state["params"])])
        out[n] = [m.records[0]["train_loss"], m.records[0]["test_loss"]] + leaves[::97].tolist()
    # the cpu preset (eval 500 on 8 devices: 504) and the full preset (ResNet-18, the suite's one compile of
    # it) dry-run one step on 8 devices; small fake sets keep the evaluation short
    for name, counts in (("cpu", (13, 63)), ("full", (13, 63))):
        p = dataclasses.replace(train.PRESETS[name], train_per_class=None, test_per_class=None, epochs=1)
        t = train.Trainer(p, fake_arrays(*counts), max_steps=1)
        (m,) = t.train([(train.parse_schedule("StepLR", 1, 1), 0)])
        r = m.records[0]
        out[name] = [t.layout.eval_batch, t.layout.eval_batches, r["devices"], r["test_acc"], r["train_loss"]]
    print(json.dumps(out))
""")


def test_presets_on_eight_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", EIGHT], capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # one step on 8 devices is the one-device step up to float32 summation order
    np.testing.assert_allclose(out["8"], out["1"], rtol=1e-4, atol=1e-6)
    for name in ("cpu", "full"):
        eval_batch, batches, devices, acc, loss = out[name]
        assert (eval_batch, batches, devices) == (504, 2, 8) and 0 <= acc <= 1 and np.isfinite(loss)


def metrics(out: Path, slug: str):
    return [[r[k] for k in METRICS] for r in map(json.loads, (out / f"{slug}.jsonl").read_text().splitlines())]


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_records(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXSCHED_CACHE=str(tmp_path / "cache"))

    def cmd(out):
        return [sys.executable, "-c", CLI_SCRIPT, "--preset", "smoke", "--out", str(out), "--schedules", "StepLR",
                "ReduceLROnPlateau", "--epochs", "3", "--loop", "scan", "--no-progress"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill once StepLR has logged an epoch
        log = killed / "StepLR.jsonl"
        if log.is_file() and log.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len((killed / "StepLR.jsonl").read_text().splitlines()) < 3
    for out in (killed, tmp_path / "ref"):
        res = subprocess.run(cmd(out), env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    for slug in ("StepLR", "ReduceLROnPlateau"):
        np.testing.assert_allclose(metrics(killed, slug), metrics(tmp_path / "ref", slug), rtol=1e-6)
        assert [m[0] for m in metrics(killed, slug)] == [1, 2, 3]
    assert not list(killed.glob("*.tmp*")) and not list((killed / "ckpt").glob("*/*tmp*"))
