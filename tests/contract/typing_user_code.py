"""User code as a type checker sees it: pyright (standard mode, configured in pyproject.toml) must report 0 errors.

Every public schedule is built the way torch code spells it (positional arguments after the LR, and keyword
arguments), wired into optax through ``jaxsched.optim``, and the stateful ones (the plateau, ``Running``,
GreedyLR, the accumulating plateau) are stepped. ``tests/contract/test_typing.py`` runs pyright on this file and also
runs the file, so every line here is valid at run time too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import jaxsched
from jaxsched import transformers as hf

# -- torch's schedulers, positional (torch order after the optimizer) and keyword --------------------------

lam = jaxsched.LambdaLR(0.1, lambda e: 0.95**e)
lam_kw = jaxsched.LambdaLR(0.1, lr_lambda=lambda e: jnp.minimum(1.0, (e + 1) / 10))
mul = jaxsched.MultiplicativeLR(0.1, lambda e: 0.95)
mul_kw = jaxsched.MultiplicativeLR(lr=0.1, lr_lambda=lambda e: 0.95)
step = jaxsched.StepLR(0.1, 30)
step_kw = jaxsched.StepLR(0.1, step_size=30, gamma=0.1)
multistep = jaxsched.MultiStepLR(0.1, [30, 80], 0.1)
multistep_kw = jaxsched.MultiStepLR(0.1, milestones=[30, 80], gamma=0.1)
constant = jaxsched.ConstantLR(0.1, 0.5, 4)
constant_kw = jaxsched.ConstantLR(0.1, factor=0.5, total_iters=4)
linear = jaxsched.LinearLR(0.1, 0.1, 1.0, 5)
linear_kw = jaxsched.LinearLR(0.1, start_factor=0.1, end_factor=1.0, total_iters=5)
exponential = jaxsched.ExponentialLR(0.1, 0.9)
exponential_kw = jaxsched.ExponentialLR(0.1, gamma=0.9)
polynomial = jaxsched.PolynomialLR(0.1, 10, 2.0)
polynomial_kw = jaxsched.PolynomialLR(0.1, total_iters=10, power=2.0)
cosine = jaxsched.CosineAnnealingLR(0.1, 100)
cosine_kw = jaxsched.CosineAnnealingLR(0.1, T_max=100, eta_min=1e-4)
cawr = jaxsched.CosineAnnealingWarmRestarts(0.1, 10, 2)
cawr_kw = jaxsched.CosineAnnealingWarmRestarts(0.1, T_0=10, T_mult=2, eta_min=1e-4)
cyclic = jaxsched.CyclicLR(0.001, 0.1)
cyclic_kw = jaxsched.CyclicLR(base_lr=0.001, max_lr=0.1, step_size_up=20, mode="triangular2", cycle_momentum=False)
onecycle = jaxsched.OneCycleLR(0.1, 100)
onecycle_kw = jaxsched.OneCycleLR(max_lr=0.1, total_steps=100, pct_start=0.25, three_phase=True)
onecycle_epochs = jaxsched.OneCycleLR(max_lr=0.1, epochs=4, steps_per_epoch=25)
swa = jaxsched.SWALR(0.1, 0.05)
swa_kw = jaxsched.SWALR(0.1, swa_lr=0.05, anneal_epochs=5, anneal_strategy="linear")
sequential = jaxsched.SequentialLR([linear, cosine], [5])
sequential_kw = jaxsched.SequentialLR(schedulers=[linear_kw, cosine_kw], milestones=[5])
chained = jaxsched.ChainedScheduler([constant, exponential])
chained_kw = jaxsched.ChainedScheduler(schedulers=[constant_kw, exponential_kw])
groups = jaxsched.StepLR((0.1, 0.01), step_size=30)

# -- the adapters ------------------------------------------------------------------------------------------

warm = jaxsched.LinearWarmup(cosine, 10)
warm_kw = jaxsched.LinearWarmup(schedule=cosine, num_warmup_steps=10, start_factor=0.1)
per_epoch = jaxsched.PerEpoch(step, 100)
per_epoch_kw = jaxsched.PerEpoch(schedule=cawr, steps_per_epoch=100, fractional=True)
offset = jaxsched.Offset(step, 3)
offset_kw = jaxsched.Offset(schedule=step, start=3)

# -- HF transformers' catalogue ----------------------------------------------------------------------------

hf_schedules: list[jaxsched.Schedule] = [
    hf.ConstantSchedule(1e-3),
    hf.ConstantScheduleWithWarmup(1e-3, 10),
    hf.LinearScheduleWithWarmup(1e-3, 10, 100),
    hf.CosineScheduleWithWarmup(1e-3, num_warmup_steps=10, num_training_steps=100, num_cycles=0.5),
    hf.CosineWithHardRestartsScheduleWithWarmup(1e-3, 10, 100, 2),
    hf.PolynomialDecayScheduleWithWarmup(1e-3, 10, 100, lr_end=1e-6, power=2.0),
    hf.InverseSqrtSchedule(1e-3, 10),
    hf.CosineWithMinLRScheduleWithWarmup(1e-3, 10, 100, min_lr=1e-5),
    hf.CosineWithMinLRScheduleWithWarmupLRRate(1e-3, 10, 100, min_lr_rate=0.1),
    hf.WSDSchedule(1e-3, 10, 20, num_training_steps=100),
]

step_schedules: list[jaxsched.Schedule] = [
    lam, lam_kw, mul, mul_kw, step, step_kw, multistep, multistep_kw, constant, constant_kw, linear, linear_kw,
    exponential, exponential_kw, polynomial, polynomial_kw, cosine, cosine_kw, cawr, cawr_kw, cyclic, cyclic_kw,
    onecycle, onecycle_kw, onecycle_epochs, swa, swa_kw, sequential, sequential_kw, chained, chained_kw, groups,
    warm, warm_kw, per_epoch, per_epoch_kw, offset, offset_kw, *hf_schedules,
]


def lrs(s: jaxsched.Schedule, n: int) -> jax.Array:
    """Every schedule is a function of the step and an optax schedule as it stands."""
    schedule: optax.Schedule = s
    return jax.jit(jax.vmap(schedule))(jnp.arange(n))


def config_round_trip(s: jaxsched.Schedule) -> jaxsched.Schedule:
    back = jaxsched.from_config(s.to_config())
    assert isinstance(back, jaxsched.Schedule)
    return back


# -- wired into optax --------------------------------------------------------------------------------------

sgd = optax.sgd(learning_rate=cosine, momentum=0.9)
scheduled: optax.GradientTransformationExtraArgs = jaxsched.optim.scheduled(optax.sgd, onecycle)
grouped = jaxsched.optim.grouped(optax.sgd, groups, {"body": 0, "head": 1})

# -- stateful schedules: the plateau, Running, GreedyLR, the accumulating plateau --------------------------

plateau = jaxsched.ReduceLROnPlateau(0.1, "min", 0.5, 2)
plateau_kw = jaxsched.ReduceLROnPlateau(0.1, mode="min", factor=0.5, patience=2, threshold=1e-4, cooldown=1)
running = jaxsched.Running(mul)
greedy = hf.GreedyLR(0.1, patience=2)
accumulated = jaxsched.optim.accumulate(plateau, 4)


def plateau_lrs(losses: list[float]) -> list[float]:
    state: jaxsched.PlateauState = plateau.init()
    out = []
    for loss in losses:
        state = plateau.update(state, value=loss)
        out.append(float(plateau(state)))
    return out


def running_lrs(n: int) -> list[float]:
    state: jaxsched.RunningState = running.init()
    out = []
    for _ in range(n):
        out.append(float(running(state)))
        state = running.update(state)
    return out


def stateful_schedules() -> list[jaxsched.StatefulSchedule]:
    return [plateau, plateau_kw, running, greedy, accumulated]


plateau_opt = jaxsched.optim.scheduled(optax.sgd, plateau_kw, momentum=0.9)
running_opt = optax.inject_hyperparams(optax.sgd)(learning_rate=running)
greedy_grouped = jaxsched.optim.grouped(optax.sgd, hf.GreedyLR((0.1, 0.01)), {"body": 0, "head": 1})


def train_two_steps() -> float:
    params = {"body": jnp.zeros(2), "head": jnp.zeros(1)}
    grads = {"body": jnp.ones(2), "head": jnp.ones(1)}
    state = greedy_grouped.init(params)
    applied = 0.0
    for loss in (1.0, 0.9):
        updates, state = greedy_grouped.update(grads, state, params, value=jnp.asarray(loss))
        params = optax.apply_updates(params, updates)
        head = jax.tree.leaves(updates)[1]  # leaves in key order: body, head
        applied = -float(head[0])  # grad 1: the update is minus the LR that group "head" applied
    return applied


# -- from_torch, typed by its input: a schedule, the running form, the plateau's (schedule, state) -----------


def from_torch_uses() -> tuple[float, float, float]:
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    s = jaxsched.from_torch(step_lr)
    r, st = jaxsched.from_torch(step_lr, running=True)
    st = r.update(r.update(st))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    p, pst = jaxsched.from_torch(plateau)
    pst = p.update(pst, value=1.0)
    return float(s(5)), float(r(st)), float(p(pst))



if __name__ == "__main__":
    for s in step_schedules:
        assert lrs(s, 8).shape[0] == 8
    for s in (step, cosine, onecycle, sequential, warm):
        assert config_round_trip(s) == s
    print(plateau_lrs([1.0, 1.0, 1.0, 1.0]), running_lrs(3), train_two_steps(), len(stateful_schedules()),
          from_torch_uses())
