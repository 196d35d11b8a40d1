"""Multi-process data parallelism: 2 processes on 127.0.0.1 (2 forced CPU devices each), started through
the command line's --num-processes/--process-id/--coordinator handling, train the smoke network to the
result of 1 process with the same 4 devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cifar10_fakes import CLI_SCRIPT, HERE, REPO

pytestmark = pytest.mark.slow  # three subprocesses that each compile and train (a minute or more on 2 cores)

SCRIPT = textwrap.dedent(f"""
    import argparse, dataclasses, json, sys
    sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(HERE)!r})
    import jax
    from benchmarks.cifar10.__main__ import init_distributed
    n, pid, coord = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if n > 1:
        init_distributed(argparse.Namespace(num_processes=n, process_id=pid, coordinator=coord), jax)
    assert jax.device_count() == 4 and jax.process_count() == n, (jax.device_count(), jax.process_count())
    from cifar10_fakes import fake_arrays
    from benchmarks.cifar10 import train
    preset = dataclasses.replace(train.PRESETS["smoke"], epochs=2)
    t = train.Trainer(preset, fake_arrays(), loop="host")
    (m,) = t.train([(train.parse_schedule("OneCycleLR", 2, 5), 0)])
    print("RESULT " + json.dumps([[r["train_loss"], r["test_loss"], r["test_acc"]] for r in m.records]), flush=True)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(stdout: str):
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[7:])


def test_two_processes_train_like_one(tmp_path):
    script = SCRIPT
    coord = f"127.0.0.1:{_free_port()}"
    env2 = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen([sys.executable, "-c", script, "2", str(i), coord], env=env2, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    two = [np.array(_result(o)) for o, _ in outs]
    np.testing.assert_array_equal(two[0], two[1])  # every process reports the same global result
    env1 = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    one = subprocess.run([sys.executable, "-c", script, "1", "0", "-"], env=env1, capture_output=True, text=True,
                         timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    ref = np.array(_result(one.stdout))
    assert ref.shape == (2, 3)
    # the tolerance of the 8-device test: the same computation, reduction order differs across processes
    np.testing.assert_allclose(two[0][:, :2], ref[:, :2], rtol=2e-2)


def test_two_processes_run_the_command_with_checkpoints(tmp_path):
    """The whole command on 2 processes with --out: orbax checkpoints written and restored by both, the
    logs by process 0; the records equal 1 process's with the same 4 devices, and a rerun on 2 processes
    resumes (nothing left to train)."""
    script = CLI_SCRIPT
    args = ["--preset", "smoke", "--epochs", "2", "--schedules", "StepLR", "ReduceLROnPlateau", "--loop", "host",
            "--no-progress"]

    def two(out):
        coord = f"127.0.0.1:{_free_port()}"
        env = dict(os.environ, JAX_PLATFORMS="cpu", JAXSCHED_CACHE=str(tmp_path / "cache"),
                   XLA_FLAGS="--xla_force_host_platform_device_count=2")
        procs = [subprocess.Popen([sys.executable, "-c", script, *args, "--out", str(out), "--num-processes", "2",
                                   "--process-id", str(i), "--coordinator", coord], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
        outs = [p.communicate(timeout=900) for p in procs]
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err[-3000:]
        return outs[0][1]

    def records(out):
        return {slug: [json.loads(x) for x in (out / f"{slug}.jsonl").read_text().splitlines()]
                for slug in ("StepLR", "ReduceLROnPlateau")}

    out2 = tmp_path / "two"
    two(out2)
    assert json.loads((out2 / "run.json").read_text())["processes"] == 2
    got = records(out2)
    assert "already finished" in two(out2)  # both processes restore the checkpoints: nothing trained again
    assert records(out2) == got
    env1 = dict(os.environ, JAX_PLATFORMS="cpu", JAXSCHED_CACHE=str(tmp_path / "cache"),
                XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out1 = tmp_path / "one"
    res = subprocess.run([sys.executable, "-c", script, *args, "--out", str(out1)], env=env1, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    want = records(out1)
    for slug in want:
        assert [r["epoch"] for r in got[slug]] == [1, 2] and [r["lr"] for r in got[slug]] == [r["lr"] for r in
                                                                                            want[slug]]
        np.testing.assert_allclose([r["train_loss"] for r in got[slug]], [r["train_loss"] for r in want[slug]],
                                   rtol=2e-2)
