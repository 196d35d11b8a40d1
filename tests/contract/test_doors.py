# pyright: reportArgumentType=false, reportCallIssue=false, reportAttributeAccessIssue=false
# (the hostile inputs here are deliberately not of the annotated types: foreign states, strings as metrics)
"""Every door checked (issue 21): restored states, derived step counts, the checkpoint helper, the last tracebacks.

Each test names the finding it covers. On 8afa613 (the main before the fix) 81 of these 87 cases failed; the six
that passed there are guards that the fixes keep what worked: GreedyLR's ``g(5)`` message (3 cases), derived step
counts within range (with and without x64) and a config within the depth limit. A refusal is one line that names
the argument, the value and what is allowed.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsched
import jaxsched.optim as jo
from jaxsched import timm as jtimm
from jaxsched import transformers as T

INT32_MAX = 2**31 - 1
G2 = (0.1, 0.02)


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


# -- states from a schedule with another number of parameter groups ------------------------------------------

# (name, one-group schedule, two-group schedule, kwargs of one update)
PAIRS = [
    ("ReduceLROnPlateau", jaxsched.ReduceLROnPlateau(0.1), jaxsched.ReduceLROnPlateau(G2), {"value": 1.0}),
    ("GreedyLR", T.GreedyLR(0.1), T.GreedyLR(G2), {"value": 1.0}),
    ("Running", jaxsched.Running(jaxsched.StepLR(0.1, 3)), jaxsched.Running(jaxsched.StepLR(G2, 3)), {}),
    ("PlateauLRScheduler", jtimm.PlateauLRScheduler(0.1), jtimm.PlateauLRScheduler(G2), {"value": 1.0}),
    ("accumulate", jo.accumulate(jaxsched.ReduceLROnPlateau(0.1), 2), jo.accumulate(jaxsched.ReduceLROnPlateau(G2), 2),
     {"value": 1.0}),
]


@pytest.mark.parametrize("name, one, two, kw", PAIRS, ids=[p[0] for p in PAIRS])
def test_state_with_another_number_of_groups_is_refused(name, one, two, kw):
    for mine, foreign in ((one, two), (two, one)):
        with pytest.raises(ValueError, match=r"state\.lr must have shape") as err:
            mine.update(foreign.init(), **kw)
        assert "parameter group" in _one_line(err.value)
        with pytest.raises(ValueError, match=r"state\.lr must have shape"):
            mine(foreign.init())  # the LR itself: a one-group schedule never returns two LRs
    # under jit the shape is known at trace time: refused there too
    with pytest.raises(ValueError, match=r"state\.lr must have shape"):
        jax.jit(lambda s: one.update(s, **kw))(two.init())


def test_greedy_window_of_another_size_is_refused():
    g, other = T.GreedyLR(0.1, smooth=True, window_size=5), T.GreedyLR(0.1, smooth=True, window_size=7)
    with pytest.raises(ValueError, match=r"GreedyLR.update: state\.window must have shape \(5,\)"):
        g.update(other.init(), value=1.0)


# -- counters: wrap-around, negative and fractional counters --------------------------------------------------


def test_running_counter_saturates_instead_of_wrapping():
    r = jaxsched.Running(jaxsched.StepLR(0.1, step_size=3, gamma=0.5))
    st = r.init()._replace(last_epoch=jnp.asarray(INT32_MAX, jnp.int32), lr=jnp.asarray(0.1, jnp.float32))
    for step in (r.update, jax.jit(r.update)):
        out = step(st)
        assert int(out.last_epoch) == INT32_MAX
        assert float(out.lr) == pytest.approx(0.1)  # the LR holds, as s(step) holds beyond the largest step
        assert np.isfinite(np.asarray(out.lr)).all()


@pytest.mark.parametrize("value, exc", [(-5, ValueError), (2.5, TypeError), (np.nan, TypeError)])
def test_running_refuses_bad_counters(value, exc):
    r = jaxsched.Running(jaxsched.StepLR(0.1, 3))
    with pytest.raises(exc, match=r"Running.update: state\.last_epoch") as err:
        r.update(r.init()._replace(last_epoch=jnp.asarray(value)))
    _one_line(err.value)


def test_running_refuses_a_nan_or_infinite_lr():
    r = jaxsched.Running(jaxsched.StepLR(0.1, 3))
    with pytest.raises(ValueError, match=r"Running.update: state\.lr must not be NaN"):
        r.update(r.init()._replace(lr=jnp.asarray(jnp.nan)))
    with pytest.raises(ValueError, match=r"Running.update: state\.lr must be finite"):
        r.update(r.init()._replace(lr=jnp.asarray(-jnp.inf)))


@pytest.mark.parametrize("field, value", [("window_head", 5), ("window_count", 6), ("reset_start", 2.5),
                                          ("window", "x")])
def test_greedy_ring_buffer_fields_are_checked(field, value):
    g = T.GreedyLR(0.1, smooth=True, window_size=5)
    with pytest.raises((TypeError, ValueError), match=rf"GreedyLR.update: state\.{field} must") as err:
        g.update(g.init()._replace(**{field: jnp.asarray(value) if field != "window" else value}), value=1.0)
    _one_line(err.value)


def test_accumulate_count_beyond_its_size_is_refused():
    a = jo.accumulate(jaxsched.ReduceLROnPlateau(0.1), 3)
    with pytest.raises(ValueError, match=r"accumulate.update: state\.count must be < 3"):
        a.update(a.init()._replace(count=jnp.asarray(INT32_MAX, jnp.int32)), value=1.0)


@pytest.mark.parametrize("name, s, kw, field", [
    ("ReduceLROnPlateau", jaxsched.ReduceLROnPlateau(0.1, patience=3), {"value": 1.0}, "last_epoch"),
    ("ReduceLROnPlateau-bad", jaxsched.ReduceLROnPlateau(0.1, patience=INT32_MAX), {"value": 1.0}, "num_bad_epochs"),
    ("GreedyLR", T.GreedyLR(0.1), {"value": 1.0}, "last_epoch"),
    ("GreedyLR-bad", T.GreedyLR(0.1, patience=INT32_MAX), {"value": 1.0}, "num_bad_epochs"),
    ("PlateauLRScheduler", jtimm.PlateauLRScheduler(0.1, patience_t=3), {"value": 1.0}, "epoch"),
])
def test_plateau_counters_saturate_and_stay_valid(name, s, kw, field):
    st = s.init()._replace(**{field: jnp.asarray(INT32_MAX, jnp.int32)})
    if field == "num_bad_epochs":
        st = st._replace(best=jnp.asarray(0.0, jnp.float32))  # metric 1.0 is no improvement: a bad epoch
    for _ in range(3):  # the state an update returns is accepted by the next one
        st = s.update(st, **kw)
        assert int(getattr(st, field)) == INT32_MAX
    assert np.isfinite(np.asarray(s(st))).all()


# -- plateau edges ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("s", [jaxsched.ReduceLROnPlateau(0.1), T.GreedyLR(0.1), jtimm.PlateauLRScheduler(0.1)],
                         ids=["ReduceLROnPlateau", "GreedyLR", "PlateauLRScheduler"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_restored_infinite_lr_is_refused(s, bad):
    with pytest.raises(ValueError, match=r"state\.lr must be finite") as err:
        s.update(s.init()._replace(lr=jnp.asarray(bad, jnp.float32)), value=1.0)
    _one_line(err.value)


@pytest.mark.parametrize("s", [jaxsched.ReduceLROnPlateau(0.1), T.GreedyLR(0.1), jtimm.PlateauLRScheduler(0.1),
                               jo.accumulate(jaxsched.ReduceLROnPlateau(0.1), 2)],
                         ids=["ReduceLROnPlateau", "GreedyLR", "PlateauLRScheduler", "accumulate"])
@pytest.mark.parametrize("metric", ["0.5", b"1", object(), None.__class__, [1.0, "x"]])
def test_non_numeric_metric_is_named(s, metric):
    with pytest.raises(TypeError, match=r"\.update: value must be a real scalar metric") as err:
        s.update(s.init(), value=metric)
    assert "JAX array type" not in _one_line(err.value)


@pytest.mark.parametrize("s", [jaxsched.ReduceLROnPlateau(0.1), jaxsched.Running(jaxsched.StepLR(0.1, 3)),
                               T.GreedyLR(0.1), jtimm.PlateauLRScheduler(0.1),
                               jo.accumulate(jaxsched.ReduceLROnPlateau(0.1), 2)],
                         ids=["ReduceLROnPlateau", "Running", "GreedyLR", "PlateauLRScheduler", "accumulate"])
@pytest.mark.parametrize("step", [5, jnp.asarray(5), 0.5])
def test_calling_a_stateful_schedule_with_a_step_is_a_type_error(s, step):
    with pytest.raises(TypeError, match=r"init\(\)") as err:
        s(step)
    msg = _one_line(err.value)
    assert "state" in msg and f"got {type(step).__name__}" in msg, msg


# -- derived integers, checked at construction by one helper --------------------------------------------------


@pytest.mark.parametrize("make, names", [
    (lambda: jaxsched.OneCycleLR(0.1, total_steps=2**31 + 5), "total_steps=2147483653"),
    (lambda: jaxsched.OneCycleLR(0.1, epochs=2**16, steps_per_epoch=2**16),
     "epochs * steps_per_epoch=4294967296"),
    (lambda: jaxsched.CyclicLR(0.01, 0.1, step_size_up=2**30, step_size_down=2**30 + 5),
     "step_size_up + step_size_down=2147483653"),
    (lambda: jaxsched.CyclicLR(0.01, 0.1, step_size_up=2**31 + 1), "step_size_up=2147483649"),
    (lambda: T.WSDSchedule(0.1, num_warmup_steps=2**30, num_decay_steps=2**30, num_stable_steps=2**30),
     "num_warmup_steps + num_stable_steps + num_decay_steps=3221225472"),
    (lambda: T.WSDSchedule(0.1, num_warmup_steps=INT32_MAX, num_decay_steps=INT32_MAX, num_training_steps=0),
     "num_training_steps - num_warmup_steps - num_decay_steps=-4294967294"),
    (lambda: jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=2**31), "T_0=2147483648"),
    (lambda: jaxsched.SWALR(0.1, swa_lr=0.01, anneal_epochs=2**31), "anneal_epochs=2147483648"),
])
def test_derived_step_counts_are_checked_at_construction(make, names):
    with pytest.raises(ValueError, match="enable jax_enable_x64") as err:
        make()
    msg = _one_line(err.value)
    assert names in msg and "at most 2147483647" in msg, msg
    assert msg.count(msg.split(":")[0]) == 1  # the class name once


def test_derived_step_counts_fit_with_x64():
    with jax.enable_x64(True):
        s = jaxsched.OneCycleLR(0.1, epochs=2**16, steps_per_epoch=2**16)
        assert np.isfinite(float(s(3)))
        c = jaxsched.CyclicLR(0.01, 0.1, step_size_up=2**30, step_size_down=2**30 + 5)
        assert float(c(2**30)) == pytest.approx(0.1)


def test_derived_step_counts_at_the_limit_are_accepted():
    s = jaxsched.OneCycleLR(0.1, total_steps=INT32_MAX)
    assert np.isfinite(float(s(INT32_MAX)))
    c = jaxsched.CyclicLR(0.01, 0.1, step_size_up=2**30, step_size_down=2**30 - 1)
    assert float(c(2**30)) == pytest.approx(0.1)
    w = T.WSDSchedule(0.1, num_warmup_steps=10, num_decay_steps=2**30, num_stable_steps=2**30 - 11)
    assert np.isfinite(float(w(INT32_MAX)))


# -- jaxsched.checkpoint ------------------------------------------------------------------------------------


def test_restoring_a_plain_orbax_checkpoint_is_named(tmp_path):
    import orbax.checkpoint as ocp

    import jaxsched.checkpoint as jc

    target = {"a": jnp.ones(2)}
    with ocp.StandardCheckpointer() as ck:
        ck.save(os.path.join(tmp_path, "plain"), target)
    with pytest.raises(ValueError, match="has no 'schedule' item") as err:
        jc.restore(tmp_path / "plain", target, 0.1)
    _one_line(err.value)


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), (0.1, float("nan"))])
def test_a_constant_lr_that_cannot_be_restored_is_refused_at_save(tmp_path, lr):
    import jaxsched.checkpoint as jc

    with pytest.raises(ValueError, match="must be finite") as err:
        jc.save(tmp_path / "c", {"a": jnp.ones(2)}, lr)
    _one_line(err.value)
    assert not (tmp_path / "c").exists()


# -- specs and configs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ['StepLR(0.1, step_size=3, gamma="\udcff")', "StepLR\udcff(0.1)"])
def test_spec_with_an_undecodable_character_is_named(spec):
    with pytest.raises(jaxsched.SpecError) as err:
        jaxsched.parse_spec(spec)
    msg = _one_line(err.value)
    assert "nested" not in msg and "\\udcff" in msg and "character" in msg, msg


def _deep_config(n: int) -> dict:
    c: dict = {"name": "StepLR", "args": {"lr": 0.1, "step_size": 3}}
    for _ in range(n):
        c = {"name": "Offset", "args": {"schedule": c, "start": 1}}
    return c


@pytest.mark.parametrize("config", [
    _deep_config(400),
    '{"name": "Offset", "args": {"start": 1, "schedule": ' * 400
    + '{"name": "StepLR", "args": {"lr": 0.1, "step_size": 3}}' + "}}" * 400,
    "[" * 10**5 + "]" * 10**5,
    '{"name": "StepLR", "args": {"lr": ' + "[" * 10**5 + "]" * 10**5 + "}}",
], ids=["dict-400", "json-400", "json-list-1e5", "json-arg-1e5"])
def test_deep_configs_are_refused_without_recursion_error(config):
    with pytest.raises(ValueError, match="nested") as err:
        jaxsched.from_config(config)
    _one_line(err.value)


def test_config_within_the_depth_limit_still_round_trips():
    s: jaxsched.Schedule = jaxsched.SequentialLR([jaxsched.StepLR(0.1, 3), jaxsched.ExponentialLR(0.1, 0.9)], [4])
    for _ in range(20):
        s = jaxsched.Offset(s, start=1)
    assert jaxsched.from_config(s.to_config()) == s
    assert jaxsched.from_config(json.dumps(s.to_config())) == s


# -- the last tracebacks ---------------------------------------------------------------------------------------


def test_plot_pgf_without_latex_is_one_line(tmp_path, capsys, monkeypatch):
    import matplotlib

    from jaxsched.__main__ import main as jaxsched_main

    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no TeX program can be found, whatever is installed
    tex = matplotlib.rcParams["pgf.texsystem"]
    out = tmp_path / "x.pgf"
    with pytest.raises(SystemExit) as exc:
        jaxsched_main(["plot", "StepLR(0.1, step_size=3)", "--steps", "10", "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxsched plot: error: --out ") and err.count("\n") == 1, err
    assert repr(tex) in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("blocker", ["index.html", "README.md"])
def test_parity_report_output_file_that_is_a_folder_fails_before_computing(tmp_path, monkeypatch, capsys, blocker):
    from parity import __main__ as cli
    from parity import compare

    (tmp_path / "out" / blocker).mkdir(parents=True)
    monkeypatch.setattr(compare, "run_case", lambda *a, **k: pytest.fail("computed before checking --out"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "--out", str(tmp_path / "out"), "--only", "StepLR"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m parity report: error: --out ") and blocker in err[-1]


def test_keras_polynomial_cycle_does_not_wrap_at_the_largest_step():
    """``ceil(t / T)`` was ``(t + T - 1) // T``: past ``2**31 - T`` the sum wrapped and the LR became 2.9e15."""
    from jaxsched import keras as jk

    s = jk.PolynomialDecay(0.1, decay_steps=12, end_learning_rate=0.01, power=2.0, cycle=True)
    for k in (INT32_MAX, INT32_MAX - 1, INT32_MAX - 11):
        r = k % 12
        left = (12 - r) / (12 * -(-k // 12)) if r else 0.0
        want = (0.1 - 0.01) * left**2 + 0.01
        assert float(s(k)) == pytest.approx(want, rel=1e-5), k
    np.testing.assert_allclose([float(s(k)) for k in range(30)],
                               [(0.1 - 0.01) * ((12 * max(1, -(-k // 12)) - k) / (12 * max(1, -(-k // 12))))**2
                                + 0.01 for k in range(30)], rtol=1e-6)
