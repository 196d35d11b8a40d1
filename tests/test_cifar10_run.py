"""The CIFAR-10 benchmark as a command: --loop scan against host, resume after SIGKILL, the output-folder
lock, unique slugs, the OneCycleLR length check and the command line's one-line errors (fake data)."""

from __future__ import annotations

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
from test_cifar10 import fake_arrays

from benchmarks.cifar10 import train
from benchmarks.cifar10.__main__ import main as cli

REPO = Path(__file__).resolve().parents[1]
METRICS = ("epoch", "lr", "lr_last", "momentum", "train_loss", "train_acc", "test_loss", "test_acc")


@pytest.fixture
def fake_data(monkeypatch, tmp_path):
    """The CLI loads the 160-image fake set whatever --data says."""
    monkeypatch.setenv("JAXSCHED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(train, "load_cifar10", lambda path=None, **kw: fake_arrays())
    monkeypatch.setattr(train, "describe", lambda preset, data=None: "fake")


def metrics(out: Path, slug: str):
    recs = [json.loads(line) for line in (out / f"{slug}.jsonl").read_text().splitlines()]
    return [[r[k] for k in METRICS] for r in recs]


def test_scan_loop_agrees_with_host_loop():
    """The accelerator path (each epoch one lax.scan program) against the CPU path (host loop over steps)."""
    preset = train.dataclasses.replace(train.PRESETS["smoke"], epochs=1)
    got = {}
    for loop in ("scan", "host"):
        run = train.Run(preset, fake_arrays(), loop=loop)
        assert run.loop == loop
        plan = train.parse_schedule("OneCycleLR", 1, run.steps_per_epoch)
        recs = run.train(plan, progress=False)
        got[loop] = np.array([[r["train_loss"], r["train_acc"], r["test_loss"], r["lr_last"]] for r in recs])
    assert got["scan"].shape == (1, 4)
    # the same five updates; float32 summation order differs between the two programs and a few
    # max-pool/ReLU decisions flip (measured 2026-11-30: losses within 0.5%), so not bit-equal
    np.testing.assert_allclose(got["scan"][:, [0, 2, 3]], got["host"][:, [0, 2, 3]], rtol=2e-2)
    np.testing.assert_allclose(got["scan"][:, 1], got["host"][:, 1], atol=0.1)


def test_cli_loop_flag_and_finished_rerun(fake_data, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["--preset", "smoke", "--out", str(out), "--schedules", "StepLR", "--epochs", "1", "--no-progress",
            "--loop", "scan", "--seeds", "2"]
    assert cli(args) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["loop"] == "scan" and info["seeds"] == 2
    assert info["runs_as"] == train.DEFAULT_RUNS_AS and info["runs_per_program"] == 2  # both seeds, one program
    (a,), (b,) = (list(map(json.loads, (out / f).read_text().splitlines())) for f in ("StepLR.jsonl",
                                                                                     "StepLR-seed1.jsonl"))
    assert a["loop"] == "scan" and (a["seed"], b["seed"]) == (0, 1) and a["train_loss"] != b["train_loss"]
    summary = (out / "summary.md").read_text()
    assert "| StepLR | 2 | " in summary and "Not judged: this run has 80 test images" in summary
    capsys.readouterr()
    assert cli(args) == 0
    assert "already finished" in capsys.readouterr().err
    assert len((out / "StepLR.jsonl").read_text().splitlines()) == 1
    assert cli([*args[:-2], "--seeds", "0"]) == 2 and "--seeds must be >= 1" in capsys.readouterr().err
    # a second run on a locked folder: one line, exit 2, nothing written
    with train.lock_output(out):
        assert cli(args) == 2
    err = capsys.readouterr().err
    assert "is in use by another run" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, match", [
    (["--schedules", "StepLr"], "did you mean 'StepLR'"),
    (["--schedules", "CosineAnealingLR(0.1, T_max=E)"], "did you mean 'CosineAnnealingLR'"),
    (["--schedules", "OneCycleLR(max_lr=0.1, total_steps=7)"], "total_steps=7, shorter than the run"),
    (["--schedules", "StepLR", "StepLR"], "more than once"),
    (["--epochs", "0"], "--epochs must be >= 1, got --epochs=0"),
    (["--devices", "99"], "--devices must be between 1 and"),
    (["--sequential", "--runs-as", "vmap"], "does not go with --runs-as"),
    (["--runs-per-program", "0"], "--runs-per-program must be >= 1, got --runs-per-program=0"),
])
def test_cli_bad_values_are_one_line(fake_data, tmp_path, capsys, argv, match):
    out = tmp_path / "never"
    assert cli(["--preset", "smoke", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_onecycle_shorter_than_the_run_is_refused():
    with pytest.raises(ValueError, match=r"total_steps=100, shorter than the run \(10 epochs x 39 steps = 390"):
        train.parse_schedule("OneCycleLR(max_lr=0.1, total_steps=100)", 10, 39)
    with pytest.raises(ValueError, match=r"total_steps=5, .*torch raises 'Tried to step 6 times'"):
        train.parse_schedule("OneCycleLR(max_lr=0.1, epochs=1, steps_per_epoch=5)", 10, 39)
    # exactly the run, or longer (torch allows both)
    assert train.parse_schedule("OneCycleLR(max_lr=0.1, total_steps=390)", 10, 39).kind == "step"
    assert train.parse_schedule("OneCycleLR(max_lr=0.1, total_steps=500)", 10, 39).kind == "step"
    assert train.parse_schedule("epoch:OneCycleLR(max_lr=0.1, total_steps=10)", 10, 39).kind == "epoch"


def test_slugs_are_unique():
    a = "step:" + "CosineAnnealingLR(0.1, T_max=auto, eta_min=0.0001)" * 3
    b = a[:-1] + "2)"
    labels = ["StepLR", "A(b)", "A_b_", a, b, "x" * 100, "x" * 101]
    slugs = [train.Plan(label, "epoch", None).slug() for label in labels]
    assert len(set(slugs)) == len(slugs)
    assert slugs[0] == "StepLR" and slugs[6].startswith("x" * 60 + "-")
    assert all(len(s) <= 80 and all(c.isalnum() or c in "._=-" for c in s) for s in slugs)


def test_log_shorter_or_torn_is_repaired_from_the_checkpoint(tmp_path):
    run = train.Run(train.dataclasses.replace(train.PRESETS["smoke"], epochs=2), fake_arrays(), loop="scan")
    plan = train.parse_schedule("StepLR", 2, run.steps_per_epoch)
    out = tmp_path / "o"
    first = run.train(plan, out, progress=False, until=1)
    log = out / "StepLR.jsonl"
    log.write_text(log.read_text()[:-20])  # torn last line (a kill mid-write)
    resumed = run.train(plan, out, progress=False)
    assert [r["epoch"] for r in resumed] == [1, 2] and resumed[0] == first[0]
    assert [json.loads(x) for x in log.read_text().splitlines()] == resumed
    log.write_text("")  # a log shorter than the checkpoint (lost epochs): rewritten from the checkpoint
    assert run.train(plan, out, progress=False) == resumed and run.trained_epochs == 0
    assert [json.loads(x) for x in log.read_text().splitlines()] == resumed
    # a log without a checkpoint is refused, not overwritten
    other = tmp_path / "p"
    other.mkdir()
    (other / "StepLR.jsonl").write_text(log.read_text())
    with pytest.raises(train.ResumeError, match="no checkpoint"):
        run.train(plan, other, progress=False)


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
    from test_cifar10 import fake_arrays
    from benchmarks.cifar10 import train
    from benchmarks.cifar10.__main__ import main
    train.load_cifar10 = lambda path=None, **kw: fake_arrays()
    train.describe = lambda preset, data=None: "fake"
    raise SystemExit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("how", [[], ["--sequential"]], ids=["one-program", "sequential"])
def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_records(tmp_path, how):
    """Killed once the first run has logged an epoch: in one program that is between the two runs'
    checkpoints of epoch 1 or after, so the rerun may first catch one run up on its own."""
    script = KILL_SCRIPT.format(repo=str(REPO), tests=str(Path(__file__).parent))
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXSCHED_CACHE=str(tmp_path / "cache"))

    def cmd(out):
        return [sys.executable, "-c", script, "--preset", "smoke", "--out", str(out), "--schedules", "StepLR",
                "ReduceLROnPlateau", "--epochs", "3", "--loop", "scan", "--no-progress", *how]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    # kill once the first schedule has finished an epoch, i.e. mid-way through the run
    while time.time() < deadline and proc.poll() is None:
        log = killed / "StepLR.jsonl"
        if log.is_file() and log.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len((killed / "StepLR.jsonl").read_text().splitlines()) < 3
    res = subprocess.run(cmd(killed), env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ref = tmp_path / "ref"
    res = subprocess.run(cmd(ref), env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    for slug in ("StepLR", "ReduceLROnPlateau"):
        # a run that caught up alone took the one-run program for an epoch: float32 noise (1.4e-7 measured)
        np.testing.assert_allclose(metrics(killed, slug), metrics(ref, slug), rtol=1e-5)
        assert [m[0] for m in metrics(killed, slug)] == [1, 2, 3]
    assert not list(killed.glob("*.tmp*")) and not list((killed / "ckpt").glob("*/*tmp*"))


@pytest.mark.slow
def test_gpu_preset_dry_runs_two_steps_on_eight_devices(tmp_path):
    """The accelerator preset's program (ResNet-18, data-parallel over 8 devices, each epoch one scan) runs
    end to end for 2 steps on forced CPU devices: the same command a GPU would run, minus --max-steps."""
    script = KILL_SCRIPT.format(repo=str(REPO), tests=str(Path(__file__).parent))
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXSCHED_CACHE=str(tmp_path / "cache"),
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = tmp_path / "gpu"
    res = subprocess.run([sys.executable, "-c", script, "--preset", "gpu", "--out", str(out), "--max-steps", "2",
                          "--schedules", "OneCycleLR", "--loop", "scan", "--no-progress"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads((out / "run.json").read_text())
    assert info["devices"] == 8 and info["model"] == "resnet18" and info["max_steps"] == 2
    assert info["params"] > 11_000_000
    recs = [json.loads(line) for line in (out / "OneCycleLR.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2]  # the fake set has 1 step per epoch: 2 steps = 2 epochs
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["test_loss"]) for r in recs)


@pytest.mark.slow
def test_runs_in_one_program_on_eight_devices_equal_one_device(tmp_path):
    """Several runs in one program, data-parallel over 8 forced CPU devices (the batch sharded, the run
    axis not): the same records as on one device, to the 8-device test's tolerance. (The gpu preset's
    ResNet-18 runs in one program take too long to compile on a 2-core CPU for a test.)"""
    script = KILL_SCRIPT.format(repo=str(REPO), tests=str(Path(__file__).parent))
    got = {}
    for n in (1, 8):
        env = dict(os.environ, JAX_PLATFORMS="cpu", JAXSCHED_CACHE=str(tmp_path / "cache"),
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        out = tmp_path / f"d{n}"
        res = subprocess.run([sys.executable, "-c", script, "--preset", "smoke", "--out", str(out), "--epochs", "2",
                              "--schedules", "OneCycleLR", "StepLR", "--seeds", "2", "--loop", "scan",
                              "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        info = json.loads((out / "run.json").read_text())
        assert info["devices"] == n and info["runs_per_program"] == 4 and info["runs_as"] == "unrolled"
        got[n] = np.array([metrics(out, slug) for slug in ("OneCycleLR", "OneCycleLR-seed1", "StepLR",
                                                              "StepLR-seed1")])
    np.testing.assert_array_equal(got[8][..., :4], got[1][..., :4])  # epoch, LRs, momentum
    np.testing.assert_allclose(got[8][..., 4], got[1][..., 4], rtol=2e-2)  # train loss
