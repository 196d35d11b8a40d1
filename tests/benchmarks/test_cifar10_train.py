"""The CIFAR-10 benchmark trains, resumes, reports, and refuses a damaged checkpoint (one smoke compile,
shared by the module)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from cifar10_fakes import fake_arrays, use_fake_data

from benchmarks.cifar10 import data as cdata
from benchmarks.cifar10 import report, train
from benchmarks.cifar10.__main__ import main as cli

PRESET = dataclasses.replace(train.PRESETS["smoke"], epochs=3)


@pytest.fixture(scope="module")
def trainer():
    return train.Trainer(PRESET, fake_arrays())


def plan(name):
    return train.parse_schedule(name, PRESET.epochs, 5)


def records(trainer, out, *names):
    return [m.records for m in trainer.train([(plan(n), 0) for n in names], out)]


@pytest.mark.slow  # trains the smoke network several times over
def test_train_resume_and_report(trainer, tmp_path):
    (full,) = records(trainer, tmp_path / "a", "StepLR")
    assert [r["epoch"] for r in full] == [1, 2, 3] and [r["lr"] for r in full] == pytest.approx([0.1, 0.01, 0.001])
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["test_acc"] <= 1 for r in full)
    assert full[-1]["train_loss"] < full[0]["train_loss"]
    # interrupted in epoch 3, then resumed: the uninterrupted records, and a finished run is not trained again
    out, real, calls = tmp_path / "b", trainer.evaluate, []

    def failing(*a):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a)

    trainer.evaluate = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            records(trainer, out, "StepLR")
    finally:
        trainer.evaluate = real
    assert len((out / "StepLR.jsonl").read_text().splitlines()) == 2
    keys = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc")
    (resumed,) = records(trainer, out, "StepLR")
    assert trainer.trained == 1 and [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in full]
    assert records(trainer, out, "StepLR") == [resumed] and trainer.trained == 0
    # a torn or short log is rewritten from the checkpoint; a log without a checkpoint is refused
    log = out / "StepLR.jsonl"
    log.write_text(log.read_text()[:-20])
    assert records(trainer, out, "StepLR") == [resumed]
    assert [json.loads(x) for x in log.read_text().splitlines()] == resumed
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "StepLR.jsonl").write_text(log.read_text())
    with pytest.raises(train.ResumeError, match="no checkpoint"):
        records(trainer, tmp_path / "c", "StepLR")

    (plateau,) = records(trainer, out, "ReduceLROnPlateau")
    assert plateau[0]["lr"] == pytest.approx(0.1)
    text = report.write_report(out, order=["StepLR", "ReduceLROnPlateau"])
    assert text == (out / "summary.md").read_text() and (out / "curves.png").stat().st_size > 10_000
    assert "| StepLR | " in text and "| ReduceLROnPlateau | " in text and report.CLAIMS_TITLE in text


@pytest.fixture(scope="module")
def saved(trainer, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved")
    records(trainer, out, "StepLR")
    return out


def damaged_copy(saved: Path, tmp_path: Path, how: str, keep_manifest: bool = True) -> tuple[Path, Path]:
    import shutil

    out = tmp_path / "o"
    shutil.copytree(saved, out)
    step = out / "ckpt" / "StepLR" / "3"
    if not keep_manifest:
        (step / train.FILES).unlink()
    victim = max((f for f in step.rglob("*") if f.is_file() and "/d/" in str(f)), key=lambda f: f.stat().st_size)
    raw = bytearray(victim.read_bytes())
    if how == "flip":
        raw[len(raw) // 2] ^= 0x10
    else:
        raw = raw[: len(raw) // 2]
    victim.write_bytes(bytes(raw))
    return out, victim


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_checkpoint_file_is_named_and_nothing_trains(trainer, saved, tmp_path, how):
    out, victim = damaged_copy(saved, tmp_path, how)
    log = (out / "StepLR.jsonl").read_text()
    with pytest.raises(train.ResumeError) as err:
        records(trainer, out, "StepLR")
    msg = str(err.value)
    assert f"checkpoint file {str(victim)!r} is damaged" in msg and "\n" not in msg
    assert "nothing was trained from it" in msg and f"delete {str(out / 'ckpt' / 'StepLR')!r}" in msg
    assert (out / "StepLR.jsonl").read_text() == log


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damage_without_the_file_digests_is_still_caught(trainer, saved, tmp_path, how):
    """A kill between the save and its file digests leaves only the per-array digests (and orbax's own
    errors): damage is still refused, in one line."""
    out, _ = damaged_copy(saved, tmp_path, how, keep_manifest=False)
    with pytest.raises(train.ResumeError, match=r"(no longer matches its SHA-256|cannot be read).*nothing was "
                                                r"trained from it") as err:
        records(trainer, out, "StepLR")
    assert "\n" not in str(err.value)


@pytest.mark.slow  # the whole command: a second compile
def test_cli_trains_resumes_refuses_damage(monkeypatch, tmp_path, capsys, saved):
    monkeypatch.setenv("JAXSCHED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cdata, "find_source", cdata.find_source)
    monkeypatch.setattr(cdata, "load_cifar10", cdata.load_cifar10)
    use_fake_data(cdata, folder="/somewhere/cifar-10-batches-py")
    out = tmp_path / "o"
    args = ["--preset", "smoke", "--out", str(out), "--schedules", "StepLR", "--epochs", "1", "--no-progress",
            "--seeds", "2"]
    assert cli(args) == 0
    assert "data: cifar-10-batches-py (official python batches) from '/somewhere'" in capsys.readouterr().err
    info = json.loads((out / "run.json").read_text())
    assert info["data_folder"] == "/somewhere" and info["seeds"] == 2 and info["devices"] == 1
    (a,), (b,) = (list(map(json.loads, (out / f).read_text().splitlines())) for f in ("StepLR.jsonl",
                                                                                     "StepLR-seed1.jsonl"))
    assert (a["seed"], b["seed"]) == (0, 1) and a["train_loss"] != b["train_loss"]
    assert "| StepLR | 2 | " in (out / "summary.md").read_text()
    assert cli(args) == 0 and "already finished" in capsys.readouterr().err
    with train.lock_output(out):  # a second run on a locked folder: one line, exit 2
        assert cli(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("data: ")]
    assert len(err) == 1 and "is in use by another run" in err[0]
    # a damaged checkpoint through the command: exit 2, one line naming the file and how to restart
    bad, victim = damaged_copy(saved, tmp_path / "d", "flip")
    assert cli(["--preset", "smoke", "--out", str(bad), "--schedules", "StepLR", "--epochs", "3"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("data: ")]
    assert len(err) == 1 and str(victim) in err[0] and "rerun the same command" in err[0]
