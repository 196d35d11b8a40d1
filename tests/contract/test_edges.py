# pyright: reportArgumentType=false
# (the hostile inputs here are deliberately not of the annotated types: NumPy scalars, wrong dtypes)
"""The library's edges (issue 15): every bad input a named error or a right value, never a wrong value.

Each test here failed on fdc22d8 (the main before the fix) and names the finding it covers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jaxsched
import jaxsched.optim as jo
from jaxsched import timm as jtimm
from jaxsched import transformers as T

INT32_MAX = 2**31 - 1


# -- 1. steps outside the integer range saturate (or raise), never wrap ------------------------------------


@pytest.mark.parametrize("make", [
    lambda: jnp.array([2**32 - 1], jnp.uint32),
    lambda: jnp.array([2**31], jnp.uint32),
    lambda: np.array([2**32 + 1]),
    lambda: np.array([2**40], np.int64),
    lambda: np.array([2**63 - 1], np.uint64),
])
def test_out_of_range_integer_arrays_saturate(make):
    s = jaxsched.CosineAnnealingLR(0.1, T_max=5)
    want = np.asarray(s(INT32_MAX))
    np.testing.assert_array_equal(np.asarray(s(make())), [want])


def test_out_of_range_steps_saturate_under_jit_and_in_x64():
    s = jaxsched.OneCycleLR(0.1, total_steps=20)
    # a uint32 array traced under jit: saturated inside the program, not wrapped by the cast
    got = jax.jit(lambda e: jaxsched.StepLR(0.1, step_size=3)(e))(jnp.array([2**32 - 2], jnp.uint32))
    np.testing.assert_array_equal(np.asarray(got), [np.asarray(jaxsched.StepLR(0.1, step_size=3)(INT32_MAX))])
    with jax.enable_x64(True):
        big = jnp.array([2**64 - 1], jnp.uint64)
        c = jaxsched.CosineAnnealingLR(0.1, T_max=7)
        np.testing.assert_array_equal(np.asarray(c(big)), [np.asarray(c(2**63 - 1))])
    # the case: 2**32 + 1 was evaluated as step 1
    np.testing.assert_array_equal(np.asarray(s(np.array([2**32 + 1]))), np.asarray(s(np.array([INT32_MAX]))))
    assert float(s(np.array([2**32 + 1]))[0]) != float(s(1))


def test_step_limit_message_mentions_x64_only_when_off():
    s = jaxsched.StepLR(0.1, step_size=2)
    with pytest.raises(ValueError, match="enable jax_enable_x64"):
        s(2**31)
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match=r"largest int64") as err:
            s(2**63)
        assert "enable jax_enable_x64" not in str(err.value)


# -- 2. Offset saturates e + start ---------------------------------------------------------------------------


def test_offset_does_not_overflow_at_the_largest_step():
    s = jaxsched.Offset(jaxsched.StepLR(0.1, step_size=2), start=3)
    v = float(s(INT32_MAX))
    assert math.isfinite(v) and v == float(jaxsched.StepLR(0.1, step_size=2)(INT32_MAX))
    v = float(jaxsched.Offset(jaxsched.ExponentialLR(0.1, gamma=0.5), start=10)(INT32_MAX))
    assert v == 0.0
    assert float(s(5)) == pytest.approx(float(jaxsched.StepLR(0.1, step_size=2)(8)))


# -- 3. metrics must be real scalars ------------------------------------------------------------------------


def _metric_driven():
    p = jaxsched.ReduceLROnPlateau(0.1, patience=0)
    return [
        ("ReduceLROnPlateau", p),
        ("GreedyLR", T.GreedyLR(0.1)),
        ("PlateauLRScheduler", jtimm.PlateauLRScheduler(0.1)),
        ("accumulate", jo.accumulate(p, 2)),
    ]


@pytest.mark.parametrize("name,sched", _metric_driven(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("value", [jnp.array([0.5, 2.0]), np.ones((2, 2))])
def test_non_scalar_metric_is_refused(name, sched, value):
    with pytest.raises(ValueError, match=rf"{name}.*scalar metric"):
        sched.update(sched.init(), value=value)


@pytest.mark.parametrize("name,sched", _metric_driven(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("value", [1 + 2j, np.complex64(0.5 + 1j), jnp.asarray(2.0 + 0j)])
def test_complex_metric_is_refused(name, sched, value):
    with pytest.raises(TypeError, match=rf"{name}.*real scalar metric"):
        sched.update(sched.init(), value=value)


def test_greedy_one_group_keeps_one_lr():
    g = T.GreedyLR(0.1)
    st = g.update(g.init(), value=jnp.array([0.5]))  # one element: accepted, as torch's .item() does
    assert np.shape(g(st)) == ()


# -- 4. a restored state is checked and cast when it enters update -----------------------------------------


def test_plateau_restored_integer_best_keeps_float_decisions():
    p = jaxsched.ReduceLROnPlateau(0.1, patience=0, threshold=0.0)
    st = p.init()._replace(best=jnp.asarray(3))  # restored from a checkpoint as an integer
    st = p.update(st, value=2.5)
    assert st.best.dtype == jnp.float32 and float(st.best) == 2.5  # not truncated to 2
    st = p.update(st, value=2.4)  # an improvement an integer best would call a tie
    assert float(st.best) == pytest.approx(2.4) and float(p(st)) == pytest.approx(0.1)


@pytest.mark.parametrize("field,value,exc", [
    ("best", jnp.asarray(jnp.nan), ValueError),
    ("num_bad_epochs", jnp.asarray(-1), ValueError),
    ("cooldown_counter", jnp.asarray(-2), ValueError),
    ("last_epoch", jnp.asarray(-1), ValueError),
    ("lr", jnp.asarray(-0.1), ValueError),
    ("lr", jnp.asarray(jnp.nan), ValueError),
    ("num_bad_epochs", jnp.asarray(0.5), TypeError),
])
def test_plateau_corrupted_state_is_refused(field, value, exc):
    p = jaxsched.ReduceLROnPlateau(0.1)
    with pytest.raises(exc, match=rf"ReduceLROnPlateau.update: state.{field}"):
        p.update(p.init()._replace(**{field: value}), value=1.0)


def test_plateau_restored_integer_lr_is_cast():
    p = jaxsched.ReduceLROnPlateau(1.0, patience=0, factor=0.5)
    st = p.init()._replace(lr=jnp.asarray(1))
    st = p.update(p.update(st, value=1.0), value=1.0)
    assert st.lr.dtype == jnp.float32 and float(p(st)) == 0.5  # an integer LR would have stayed 1 (or 0)


def test_greedy_and_timm_restored_states_are_checked():
    g = T.GreedyLR(0.1)
    with pytest.raises(ValueError, match=r"GreedyLR.update: state.best"):
        g.update(g.init()._replace(best=jnp.asarray(jnp.nan)), value=1.0)
    with pytest.raises(ValueError, match=r"GreedyLR.update: state.num_good_epochs"):
        g.update(g.init()._replace(num_good_epochs=jnp.asarray(-3)), value=1.0)
    st = g.update(g.init()._replace(best=jnp.asarray(3)), value=2.5)
    assert st.best.dtype == jnp.float32 and float(st.best) == 2.5
    t = jtimm.PlateauLRScheduler(0.1, patience_t=0, mode="min")
    with pytest.raises(ValueError, match=r"PlateauLRScheduler.update: state.cooldown_counter"):
        t.update(t.init()._replace(cooldown_counter=jnp.asarray(-1)), value=1.0)
    st = t.update(t.init()._replace(best=jnp.asarray(3)), value=2.5)
    assert st.best.dtype == jnp.float32 and float(st.best) == 2.5


def test_restored_state_checks_leave_jit_working():
    p = jaxsched.ReduceLROnPlateau(0.1, patience=0)
    st = jax.jit(p.update)(p.init(), value=2.0)
    assert float(st.best) == 2.0


# -- 5. optim.scheduled/grouped refuse bad constant LRs ----------------------------------------------------


@pytest.mark.parametrize("lr,match", [(math.nan, "finite"), (math.inf, "finite"), (-0.1, ">= 0")])
def test_scheduled_refuses_bad_constant_lr(lr, match):
    with pytest.raises(ValueError, match=rf"scheduled: schedule must be {match}"):
        jo.scheduled(optax.sgd, lr)


def test_grouped_refuses_bad_constant_lr():
    with pytest.raises(ValueError, match=r"grouped: schedule\[1\] must be >= 0"):
        jo.grouped(optax.sgd, (0.1, -0.1), labels=lambda p: p)
    with pytest.raises(ValueError, match=r"grouped: schedule\[0\] must be finite"):
        jo.grouped(optax.sgd, (math.nan, 0.1), labels=lambda p: p)


# -- 6. lr_find with a negative loss -----------------------------------------------------------------------


def test_lr_find_negative_loss_does_not_stop_at_step_two():
    # loss = (w - 1)^2 - 10: always negative near the start; small LRs make slow progress, no divergence early
    loss = lambda w, b: jnp.sum((w - 1.0) ** 2) - 10.0  # noqa: E731
    r = jaxsched.lr_find(loss, jnp.zeros(1), lambda lr: optax.sgd(lr), lambda i: None,
                         start_lr=1e-4, end_lr=1e-1, num_steps=30)
    assert r.stop_reason != "diverged" and len(r.lrs) == 30


# -- 8. float64-finite values that float32 cannot hold; NumPy scalars become Python numbers -----------------


def test_values_beyond_float32_refused_when_x64_off():
    with pytest.raises(ValueError, match=r"CosineAnnealingLR: eta_min must be at most 3.403e\+38.*jax_enable_x64"):
        jaxsched.CosineAnnealingLR(0.1, T_max=5, eta_min=1e39)
    with pytest.raises(ValueError, match=r"StepLR: lr must be at most"):
        jaxsched.StepLR(1e39, step_size=2)
    with jax.enable_x64(True):  # float64 holds it
        assert float(jaxsched.CosineAnnealingLR(0.1, T_max=5, eta_min=1e39)(5)) == 1e39


def test_cyclic_numpy_step_sizes_are_python_numbers():
    s = jaxsched.CyclicLR(0.01, 0.1, step_size_up=np.float16(65504))
    assert type(s.step_size_up) is int and math.isfinite(float(s(1)))
    d = jaxsched.CyclicLR(0.01, 0.1, step_size_up=2, step_size_down=np.float32(0.5))
    assert type(d.step_size_down) is float
    ref = jaxsched.CyclicLR(0.01, 0.1, step_size_up=2, step_size_down=float(np.float32(0.5)))
    np.testing.assert_array_equal(np.asarray(d(jnp.arange(8))), np.asarray(ref(jnp.arange(8))))


def _numpy_typed(v) -> Any:
    """``v`` with every Python number replaced by a NumPy scalar (floats as float32 where exact)."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return np.int64(v)
    if isinstance(v, float):
        return np.float32(v) if float(np.float32(v)) == v else np.float64(v)
    if isinstance(v, tuple):
        return tuple(_numpy_typed(x) for x in v)
    if isinstance(v, jaxsched.Value):
        return type(v)(**{f.name: _numpy_typed(getattr(v, f.name)) for f in dataclasses.fields(cast(Any, v)) if f.init})
    return v


def _holds_numpy(v) -> bool:
    if isinstance(v, np.generic):
        return True
    if isinstance(v, tuple):
        return any(_holds_numpy(x) for x in v)
    if isinstance(v, jaxsched.Value):
        return any(_holds_numpy(getattr(v, f.name)) for f in dataclasses.fields(cast(Any, v)))
    return False


def test_every_example_with_numpy_scalars_holds_python_numbers():
    from strategies import examples

    for name, s in examples():
        t = _numpy_typed(s)  # constructs (OneCycleLR's pct_start=np.float32(0.3) included)
        assert not _holds_numpy(t), name
        try:
            json.dumps(t.to_config())
        except TypeError as err:
            assert "callable" in str(err), (name, err)


def test_to_config_with_numpy_integers():
    for s in (jaxsched.CyclicLR(0.01, 0.1, step_size_up=np.int64(3), step_size_down=np.int32(4)),
              jaxsched.StepLR(np.float32(0.5), step_size=np.int64(3), gamma=np.float16(0.5)),
              jaxsched.MultiStepLR(0.1, milestones=[np.int64(2), np.int16(5)])):
        text = json.dumps(s.to_config())
        assert jaxsched.from_config(text) == s


# -- unhelpful crashes -------------------------------------------------------------------------------------


def test_integer_hyperparameters_beyond_int_range_are_named():
    with pytest.raises(ValueError, match=r"StepLR: step_size must be at most 2147483647.*enable jax_enable_x64"):
        jaxsched.StepLR(0.1, step_size=2**40)
    with pytest.raises(ValueError, match=r"MultiStepLR: milestones\[0\] must be at most"):
        jaxsched.MultiStepLR(0.1, milestones=[2**33])
    with jax.enable_x64(True):
        assert float(jaxsched.StepLR(0.1, step_size=2**40)(5)) == pytest.approx(0.1)


def test_constant_lr_with_traced_factor_vmaps():
    f = jnp.array([0.5, 0.25])
    got = jax.vmap(lambda x: jaxsched.ConstantLR(0.1, factor=x, total_iters=3)(1))(f)
    np.testing.assert_allclose(np.asarray(got), [0.05, 0.025], rtol=1e-6)


def test_cosine_with_min_lr_and_zero_lr_refused_at_construction():
    with pytest.raises(ValueError, match=r"CosineWithMinLRScheduleWithWarmup: min_lr needs a non-zero initial LR"):
        T.CosineWithMinLRScheduleWithWarmup(0.0, num_warmup_steps=1, num_training_steps=5, min_lr=0.01)
    # min_lr_rate with lr=0 is what transformers accepts
    s = T.CosineWithMinLRScheduleWithWarmup(0.0, num_warmup_steps=1, num_training_steps=5, min_lr_rate=0.1)
    assert float(s(3)) == 0.0


@pytest.mark.parametrize("cls", [jaxsched.LambdaLR, jaxsched.MultiplicativeLR])
def test_empty_tuple_of_lambdas_is_named(cls):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: lr_lambda must be a function or a non-empty tuple"):
        cls(0.1, lr_lambda=())


def test_loop_based_closed_forms_refuse_huge_steps():
    m = jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 1.0 - 1e-9 * e)
    with pytest.raises(ValueError, match=r"MultiplicativeLR: .*step=1000000000 .*jaxsched.Running"):
        m(10**9)
    with pytest.raises(ValueError, match=r"MultiplicativeLR: .*jaxsched.Running"):
        m(np.array([3, 10**8]))
    c = jaxsched.ChainedScheduler([jaxsched.CosineAnnealingLR(0.1, T_max=5), jaxsched.StepLR(0.1, step_size=2)])
    with pytest.raises(ValueError, match=r"ChainedScheduler: .*jaxsched.Running"):
        c(10**8)
    assert math.isfinite(float(m(1000))) and math.isfinite(float(c(1000)))
    # step-independent and multiplicative ones stay O(1) and accept any step
    assert float(jaxsched.MultiplicativeLR(0.1, lr_lambda=lambda e: 0.5)(10**9)) == 0.0
    chained = jaxsched.ChainedScheduler([jaxsched.StepLR(0.1, step_size=2), jaxsched.ExponentialLR(0.1, gamma=0.9)])
    assert float(chained(10**9)) == 0.0
    seq = jaxsched.SequentialLR([jaxsched.StepLR(0.1, step_size=2), m], milestones=[5])
    with pytest.raises(ValueError, match=r"SequentialLR: .*schedulers\[1\] is a MultiplicativeLR.*jaxsched.Running"):
        seq(10**8)
    assert math.isfinite(float(seq(100)))


def test_from_torch_after_add_param_group_is_named():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.2})
    with pytest.raises(ValueError, match=r"from_torch: parameter group\(s\) \[1\] have no 'initial_lr'"):
        jaxsched.from_torch(sched)


def test_from_torch_duck_typed_scheduler_without_optimizer():
    class Fake:
        optimizer = None

    with pytest.raises(TypeError, match=r"from_torch: scheduler.optimizer must be a torch optimizer.*optimizer=None"):
        jaxsched.from_torch(Fake())


@pytest.mark.parametrize("value", [jnp.asarray(1 + 1j), np.asarray(True), np.asarray(0.5 + 0j)])
def test_complex_and_bool_zero_d_hyperparameters_are_named(value):
    with pytest.raises(TypeError, match=r"StepLR: lr must be a real float"):
        jaxsched.StepLR(value, step_size=2)


def test_accumulate_restored_state_is_checked_and_cast():
    a = jo.accumulate(jaxsched.ReduceLROnPlateau(0.1, patience=0), 2)
    st = a.init()
    with pytest.raises(ValueError, match=r"accumulate.update: state.count must be >= 0"):
        a.update(st._replace(count=jnp.asarray(-1)), value=1.0)
    with pytest.raises(ValueError, match=r"accumulate.update: state.total must not be NaN"):
        a.update(st._replace(total=jnp.asarray(jnp.nan)), value=1.0)
    st = a.update(st._replace(total=jnp.asarray(1)), value=0.5)  # an integer total restored
    assert st.total.dtype == jnp.float32 and float(st.total) == 1.5
