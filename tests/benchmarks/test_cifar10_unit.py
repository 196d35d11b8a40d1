"""The CIFAR-10 benchmark's pure parts: schedules, optimizer, augmentation, batch layout over devices,
argument checks and the report. Nothing here compiles a network."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cifar10_fakes import use_fake_data

import jaxsched
from benchmarks.cifar10 import data as cdata
from benchmarks.cifar10 import report, train
from benchmarks.cifar10.__main__ import main as cli


def test_article_schedules_scaled():
    E, S = 10, 39
    plans = {n: train.parse_schedule(n, E, S) for n in train.ARTICLE}
    assert plans["StepLR"].schedule == jaxsched.StepLR(0.1, step_size=3, gamma=0.1)
    assert plans["MultiStepLR"].schedule == jaxsched.MultiStepLR(0.1, milestones=[3, 6, 9], gamma=0.1)
    assert plans["ExponentialLR"].schedule.gamma == pytest.approx(0.95 ** 10)
    assert plans["CosineAnnealingLR"].schedule == jaxsched.CosineAnnealingLR(0.1, T_max=10)
    assert plans["ReduceLROnPlateau"].kind == "plateau" and plans["ReduceLROnPlateau"].schedule.patience == 1
    assert plans["OneCycleLR"].kind == "step" and plans["OneCycleLR"].schedule.total_steps in (None, 390)
    assert [p.kind for p in plans.values()].count("epoch") == 4
    # the article's own numbers at 100 epochs
    full = {n: train.parse_schedule(n, 100, 390) for n in train.ARTICLE}
    assert full["StepLR"].schedule.step_size == 30 and full["ExponentialLR"].schedule.gamma == pytest.approx(0.95)
    assert list(full["MultiStepLR"].schedule.milestones) == [30, 60, 90]
    assert full["ReduceLROnPlateau"].schedule.patience == 10


def test_spec_placeholders_and_units():
    p = train.parse_schedule("OneCycleLR(max_lr=0.4, epochs=E, steps_per_epoch=S)", 7, 11)
    assert p.kind == "step" and float(p.schedule(0)) == pytest.approx(0.4 / 25)
    assert train.parse_schedule("OneCycleLR(max_lr=0.4, total_steps=auto)", 7, 11).schedule.total_steps == 77
    assert train.parse_schedule("OneCycleLR(max_lr=0.4, total_steps=T)", 7, 11).schedule.total_steps == 77
    assert train.parse_schedule("CosineAnnealingLR(0.1, T_max=auto)", 7, 11).schedule.T_max == 7
    step = train.parse_schedule("step:CosineAnnealingLR(0.1, T_max=auto)", 7, 11)
    assert step.kind == "step" and step.schedule.T_max == 77 and step.label.startswith("step:")
    assert train.parse_schedule("ReduceLROnPlateau(factor=0.5, patience=2)", 7, 11).schedule.factor == 0.5
    with pytest.raises(ValueError, match=r"'auto' is allowed for .* not for gamma=auto"):
        train.parse_schedule("StepLR(0.1, step_size=2, gamma=auto)", 7, 11)
    with pytest.raises(ValueError, match="neither an article schedule"):
        train.parse_schedule("StepLR(0.1,", 7, 11)
    with pytest.raises(ValueError, match="unknown schedule 'NopeLR'"):
        train.parse_schedule("NopeLR(0.1)", 7, 11)
    with pytest.raises(ValueError, match="parameter groups"):
        train.parse_schedule("StepLR((0.1, 0.2), step_size=2)", 7, 11)


def test_epoch_lrs_follow_the_schedule():
    S = 5
    ep = train.parse_schedule("StepLR", 10, S)
    for e in range(5):
        lrs, moms = train.epoch_lrs(ep, e, S)
        np.testing.assert_allclose(lrs, float(ep.schedule(e)), rtol=1e-6)  # constant within the epoch
        np.testing.assert_allclose(moms, 0.9)
    oc = train.parse_schedule("OneCycleLR", 10, S)
    all_lrs = np.concatenate([train.epoch_lrs(oc, e, S)[0] for e in range(10)])
    np.testing.assert_allclose(all_lrs, np.asarray(oc.schedule(jnp.arange(50))), rtol=1e-6)
    moms = np.concatenate([train.epoch_lrs(oc, e, S)[1] for e in range(10)])
    np.testing.assert_allclose(moms, np.asarray(oc.schedule.momentum(jnp.arange(50))), rtol=1e-6)
    assert moms[0] == pytest.approx(0.95) and moms.min() == pytest.approx(0.85, abs=1e-3)
    pl = train.parse_schedule("ReduceLROnPlateau", 10, S)
    st = pl.schedule.init()
    for v in (1.0, 1.0, 1.0):
        st = pl.schedule.update(st, value=v)
    np.testing.assert_allclose(train.epoch_lrs(pl, 3, S, st)[0], 0.01, rtol=1e-6)  # patience 1: two bad epochs


# ----------------------------------------------------------------------------------------------------------
# optimizer and augmentation


@pytest.mark.slow  # imports torch (about a minute on the loaded 2-core CPU)
def test_optimizer_is_torch_sgd_with_changing_lr_and_momentum():
    torch = pytest.importorskip("torch")
    preset = train.PRESETS["smoke"]
    tx = train.make_tx(preset)
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    target = np.array([0.3, 0.1, -0.7], np.float32)
    lrs, moms = [0.1, 0.05, 0.2, 0.01], [0.9, 0.85, 0.95, 0.9]
    params = {"w": jnp.asarray(w0)}
    opt = tx.init(params)
    for lr, mom in zip(lrs, moms):
        g = jax.grad(lambda p: jnp.sum((p["w"] - target) ** 2 * jnp.arange(1.0, 4.0)))(params)
        opt = (opt[0], opt[1]._replace(hyperparams=dict(opt[1].hyperparams, learning_rate=lr, momentum=mom)))
        upd, opt = tx.update(g, opt, params)
        params = jax.tree.map(lambda a, b: a + b, params, upd)
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9, weight_decay=preset.weight_decay)
    for lr, mom in zip(lrs, moms):
        topt.param_groups[0]["lr"], topt.param_groups[0]["momentum"] = lr, mom
        topt.zero_grad()
        torch.sum((tw - torch.tensor(target)) ** 2 * torch.arange(1.0, 4.0)).backward()
        topt.step()
    np.testing.assert_allclose(np.asarray(params["w"]), tw.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_augment_is_padded_crop_and_flip():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    offs = rng.integers(0, 9, size=(6, 2)).astype(np.int32)
    flips = np.array([0, 1, 0, 1, 1, 0], bool)
    got = np.asarray(train.augment(jnp.asarray(x), jnp.asarray(offs), jnp.asarray(flips)))
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for k in range(6):
        want = padded[k, offs[k, 0]:offs[k, 0] + 32, offs[k, 1]:offs[k, 1] + 32]
        np.testing.assert_array_equal(got[k], want[:, ::-1] if flips[k] else want)
    idx, o, f = train.epoch_plan(0, 3, 100, 32)
    assert idx.shape == (3, 32) and len(set(idx.ravel())) == 96 and o.max() <= 8 and 0.2 < f.mean() < 0.8
    assert np.array_equal(idx, train.epoch_plan(0, 3, 100, 32)[0])
    assert not np.array_equal(idx, train.epoch_plan(0, 4, 100, 32)[0])


def test_onecycle_shorter_than_the_run_is_refused():
    with pytest.raises(ValueError, match=r"total_steps=100, shorter than the run \(390 scheduler steps"):
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


def test_report_metrics_and_claims(tmp_path):
    def write(name, accs, seed=0, ips=100.0):
        recs = [{"schedule": name, "epoch": i + 1, "lr": 0.1, "train_loss": 1.0, "test_loss": 1.0, "test_acc": a,
                 "images_per_sec": ips, "elapsed": 10.0 * (i + 1), "seed": seed} for i, a in enumerate(accs)]
        (tmp_path / f"{name}{f'-seed{seed}' if seed else ''}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in recs))

    curves = {
        "StepLR": [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.86, 0.87, 0.88, 0.88],
        "OneCycleLR": [0.5, 0.8, 0.85, 0.86, 0.88, 0.87, 0.88, 0.89, 0.89, 0.89],
        "CosineAnnealingLR": [0.4, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.92],
        "ReduceLROnPlateau": [0.4, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.915, 0.915],
        "ExponentialLR": [0.4, 0.5, 0.6, 0.7, 0.6, 0.8, 0.7, 0.86, 0.6, 0.8],
    }
    for name, accs in curves.items():
        write(name, accs)
    ms, best = report.metrics(report.load_records(tmp_path))
    assert best == 0.92
    assert ms["StepLR"]["ep90"] == 6 and ms["StepLR"]["s90"] == 60.0  # first >= 0.9 * 0.92 = 0.828: 0.85
    assert ms["StepLR"]["ep95"] == 9 and ms["OneCycleLR"]["ep95"] == 5  # first >= 0.874
    assert ms["OneCycleLR"]["ep90"] == 3 and ms["ExponentialLR"]["ep95"] is None
    assert ms["ExponentialLR"]["stability"] == pytest.approx(np.std([0.86, 0.6, 0.8]))
    # one seed: no interval for speed or stability, so those claims are not resolved whatever the numbers
    text = report.claims(ms, test_images=10_000, epochs=10)
    assert "faster than StepLR*: **not resolved at this scale (one seed" in text and "= 0.50" in text
    assert "least stable*: **not resolved at this scale (one seed" in text
    # the accuracy gap of 0.3 points (0.915 vs best other 0.89 is +2.5 points) against the test set's interval
    assert "(~92%)*: **held**" in text and "+2.50 ± " in text
    assert "(~92%)*: **not resolved at this scale**" in report.claims(ms, test_images=1_000, epochs=10)
    # a small run is not judged at all
    assert "Not judged: this run has 80 test images" in report.claims(ms, test_images=80, epochs=3)

    # three seeds with consistent effects: every claim resolved
    rng = np.random.default_rng(0)
    for seed in (1, 2):
        for name, accs in curves.items():
            write(name, list(np.clip(np.asarray(accs) + rng.normal(0, 0.002, 10), 0, 1)), seed=seed)
    ms3, _ = report.metrics(report.load_runs(tmp_path))
    assert ms3["StepLR"]["seeds"] == 3 and set(ms3["StepLR"]["per_seed"]) == {0, 1, 2}
    text = report.claims(ms3, test_images=10_000, epochs=10)
    assert "faster than StepLR*: **held**" in text
    assert "(~92%)*: **held**" in text
    assert "least stable*: **held**" in text
    for seed in (0, 1, 2):  # now ExponentialLR is the steadiest: the claim fails, with its interval
        write("ExponentialLR", [0.9 + 0.001 * seed] * 10, seed=seed)
    text = report.claims(report.metrics(report.load_runs(tmp_path))[0], test_images=10_000, epochs=10)
    assert "least stable*: **did not hold**" in text
    # the table shows the interval over seeds
    tab = report.table(*report.metrics(report.load_runs(tmp_path)), planned=10, test_images=10_000)
    assert "| StepLR | 3 | 87.87% ± 0.31% |" in tab and "mean over 3 seeds" in tab


@pytest.mark.parametrize("name", list(train.PRESETS))
@pytest.mark.parametrize("devices", train.DEVICE_COUNTS)
def test_every_preset_splits_over_1_2_4_8_devices(name, devices):
    """The global batch is the same on any count; evaluation is padded to a multiple of it and covers the
    test set exactly once."""
    p = train.PRESETS[name]
    n_train, n_test = 10 * (p.train_per_class or 5000), 10 * (p.test_per_class or 1000)
    lay = train.layout(p, n_train, n_test, devices)
    assert lay.steps_per_epoch == n_train // p.batch_size and p.batch_size % devices == 0
    assert lay.eval_batch % devices == 0 and lay.eval_batch >= min(p.eval_batch_size, n_test)
    assert lay.eval_batch - min(p.eval_batch_size, n_test) < devices  # padded by less than one image per device
    assert (lay.eval_batches - 1) * lay.eval_batch < n_test <= lay.eval_batches * lay.eval_batch


def test_full_preset_on_eight_devices_pads_evaluation():
    lay = train.layout(train.PRESETS["full"], 50_000, 10_000, 8)
    assert (lay.eval_batch, lay.eval_batches, lay.steps_per_epoch) == (504, 20, 390)  # 80 padded images
    assert train.layout(train.PRESETS["smoke"], 160, 80, 8).eval_batch == 40


def test_impossible_device_count_is_one_line():
    with pytest.raises(ValueError, match=r"^preset 'gpu': batch_size=128 cannot be split evenly over 3 devices; "
                                         r"use --devices with a divisor of 128\.$"):
        train.layout(train.PRESETS["gpu"], 50_000, 10_000, 3)


@pytest.fixture
def fake_data(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSCHED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cdata, "find_source", cdata.find_source)
    monkeypatch.setattr(cdata, "load_cifar10", cdata.load_cifar10)
    use_fake_data(cdata)


@pytest.mark.parametrize("argv, match", [
    (["--preset", "smok"], "--preset must be one of smoke, cpu, full, gpu, got --preset='smok'; did you mean 'smoke'?"),
    (["--preset", "huge"], "--preset must be one of smoke, cpu, full, gpu, got --preset='huge'."),
    (["--schedules", "StepLr"], "Did you mean 'StepLR'?"),
    (["--schedules", "CosineAnealingLR(0.1, T_max=E)"], "Did you mean 'CosineAnnealingLR'"),
    (["--schedules", "OneCycleLR(max_lr=0.1, total_steps=7)"], "total_steps=7, shorter than the run"),
    (["--schedules", "StepLR", "StepLR"], "names StepLR twice"),
    (["--epochs", "0"], "--epochs must be between 1 and 1000, got --epochs=0"),
    (["--epochs", "100000"], "--epochs must be between 1 and 1000, got --epochs=100000"),
    (["--seeds", "1000000000"], "--seeds must be between 1 and 20, got --seeds=1000000000"),
    (["--seeds", "0"], "--seeds must be between 1 and 20, got --seeds=0"),
    (["--max-steps", "0"], "--max-steps must be >= 1, got --max-steps=0"),
    (["--devices", "99"], "--devices must be between 1 and"),
    (["--num-processes", "2"], "go together"),
    (["--num-processes", "2", "--process-id", "2", "--coordinator", "h:1"], "go together"),
])
def test_cli_bad_values_are_one_line(fake_data, tmp_path, capsys, argv, match):
    out = tmp_path / "never"
    assert cli(["--preset", "smoke", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_out_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert cli(["--out", str(tmp_path / "f" / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"python -m benchmarks.cifar10: error: --out={str(tmp_path / 'f' / 'sub')!r} cannot be a folder: "
                   f"{str(tmp_path / 'f')!r} is a file.")


def test_cli_missing_data_and_report_only(tmp_path, capsys):
    assert cli(["--preset", "smoke", "--out", str(tmp_path / "b"), "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no CIFAR-10 data found at path=" in err and "--data" in err
    assert cli(["--preset", "smoke", "--out", str(tmp_path / "empty"), "--report-only"]) == 2
    assert "run the benchmark first" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "empty").exists()


def test_t_quantiles_are_scipys():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 30, 31, 100):  # no table: beyond 30 too (the old table fell back to 1.96)
        assert report.t975(df) == stats.t.ppf(0.975, df)
    mean, hw = report.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hw == pytest.approx(4.302652729749464 / np.sqrt(3), rel=1e-12)
