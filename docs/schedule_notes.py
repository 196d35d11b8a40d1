"""Per-schedule notes for the generated schedule pages: the example plotted, and the equivalents elsewhere.

The pages themselves are generated at build time from jaxsched's registry (``docs/hooks.py``), so a class
added later gets a page, its docstring and a plot without an entry here (the plot then uses the first
constructor call of its docstring example). An entry adds the example to plot and the equivalents in torch,
optax, Hugging Face transformers and Keras 3, with where they differ. The optax figures were measured on
2026-11-29 (torch 2.13.0, jax 0.10.2, optax 0.2.8, 2-core x86_64 CPU) by running each torch scheduler
beside the closest optax construction; "max rel" is the largest relative error over the run, in float32.
"""

from __future__ import annotations

#: The metric fed to metric-driven schedules in their plot (one value per step): improves, then stalls.
PLOT_METRIC = [1.0 / (1 + 0.2 * k) if k < 20 else 0.2 + 0.001 * ((k * 7) % 5) for k in range(80)]

NOTES: dict[str, dict[str, str]] = {
    "LambdaLR": {
        "example": "LambdaLR(0.1, lr_lambda=lambda e: jnp.minimum(1.0, (e + 1) / 10))",
        "steps": "40",
        "torch": "`torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)`",
        "optax": "any jnp-traceable `lambda count: lr * f(count)` is an optax schedule",
        "transformers": "most of `get_scheduler`'s schedules are LambdaLRs (see `jaxsched.transformers`)",
        "keras": "a `LearningRateSchedule` subclass",
        "differs": "The lambda gets the step as a traced integer array: write it with `jnp` (`jnp.where`, not "
                   "`if`); a Python `if` on the step is caught at construction with the fix spelled out. "
                   "torch calls it with a Python int, so any Python works there.",
    },
    "MultiplicativeLR": {
        "example": "MultiplicativeLR(0.1, lr_lambda=lambda e: 0.95)",
        "steps": "60",
        "torch": "`MultiplicativeLR(opt, lr_lambda)`",
        "optax": "`exponential_decay(lr, 1, factor)` for a constant factor (max rel 6.7e-7); an epoch-dependent "
                 "factor is not expressible with optax's built-ins",
        "transformers": "none",
        "keras": "`ExponentialDecay(lr, decay_steps=1, decay_rate=factor)` for a constant factor",
        "differs": "torch multiplies the LR it holds by `lr_lambda(epoch)` at every step; jaxsched computes the "
                   "product in closed form when the factor ignores the step, and as a loop otherwise (use "
                   "`jaxsched.Running` in a training step).",
    },
    "StepLR": {
        "example": "StepLR(0.1, step_size=30, gamma=0.1)",
        "steps": "100",
        "torch": "`StepLR(opt, step_size, gamma=0.1)`",
        "optax": "`exponential_decay(lr, step_size, gamma, staircase=True)` or `piecewise_constant_schedule` "
                 "(bit-identical in float64)",
        "transformers": "none",
        "keras": "`ExponentialDecay(lr, step_size, gamma, staircase=True)`",
        "differs": "None in value. `step_size=0` is rejected at construction (torch fails later).",
    },
    "MultiStepLR": {
        "example": "MultiStepLR(0.1, milestones=[30, 80], gamma=0.1)",
        "steps": "100",
        "torch": "`MultiStepLR(opt, milestones, gamma=0.1)`",
        "optax": "`piecewise_constant_schedule(lr, {m: gamma for m in milestones})` (bit-identical in float64)",
        "transformers": "none",
        "keras": "`PiecewiseConstantDecay(boundaries=[m - 1 for m in milestones], values=...)`: Keras' "
                 "boundaries are inclusive upper ends",
        "differs": "Repeated milestones decay `gamma ** count` at once, as torch's Counter does; an optax dict "
                   "must fold them into one key.",
    },
    "ConstantLR": {
        "example": "ConstantLR(0.1, factor=1/3, total_iters=5)",
        "steps": "12",
        "torch": "`ConstantLR(opt, factor=1/3, total_iters=5)`",
        "optax": "`join_schedules([constant_schedule(lr * factor), constant_schedule(lr)], [total_iters])`",
        "transformers": "none",
        "keras": "`PiecewiseConstantDecay([total_iters - 1], [lr * factor, lr])`",
        "differs": "`total_iters=0` keeps `factor` for ever, as torch's `step()` does.",
    },
    "LinearLR": {
        "example": "LinearLR(0.1, start_factor=1/3, end_factor=1.0, total_iters=5)",
        "steps": "12",
        "torch": "`LinearLR(opt, start_factor=1/3, end_factor=1.0, total_iters=5)`",
        "optax": "`linear_schedule(lr * start_factor, lr * end_factor, total_iters)`",
        "transformers": "the warm-up of `get_scheduler('linear', ...)` starts at 0 (`start_factor=0`)",
        "keras": "`PolynomialDecay(..., power=1.0)` (a decay), or `CosineDecay`'s linear warm-up",
        "differs": "A decay to 0 ends at exactly 0 in torch and jaxsched; jitted `linear_schedule` leaves about "
                   "1e-9 of the LR (max rel 2.2e3 at that last step), and stays float32 under x64.",
    },
    "ExponentialLR": {
        "example": "ExponentialLR(0.1, gamma=0.95)",
        "steps": "60",
        "torch": "`ExponentialLR(opt, gamma)`",
        "optax": "`exponential_decay(lr, 1, gamma)` (max rel 6.7e-7 over 50 steps; float32 even under x64)",
        "transformers": "none",
        "keras": "`ExponentialDecay(lr, decay_steps=1, decay_rate=gamma)`",
        "differs": "None in value; jaxsched computes `gamma ** k` from `log(gamma)` in float64 on the host, so "
                   "float32 stays within 1e-6 of torch over long runs.",
    },
    "PolynomialLR": {
        "example": "PolynomialLR(0.1, total_iters=50, power=2.0)",
        "steps": "60",
        "torch": "`PolynomialLR(opt, total_iters=5, power=1.0)`",
        "optax": "`polynomial_schedule(lr, 0.0, power, total_iters)`",
        "transformers": "`get_scheduler('polynomial', ...)` (warm-up, then a decay to `lr_end=1e-7`, not 0)",
        "keras": "`PolynomialDecay(lr, total_iters, end_learning_rate=0.0, power=power)` (Keras' default end is "
                 "1e-4)",
        "differs": "Exactly 0 from `total_iters` on. Jitted `optax.polynomial_schedule` returns NaN for every step "
                   "past the end for about half of all horizons with a non-integer power (the fraction comes "
                   "out as -4.7e-8 through a fused multiply-add); jaxsched never does.",
    },
    "CosineAnnealingLR": {
        "example": "CosineAnnealingLR(0.1, T_max=50, eta_min=0.001)",
        "steps": "150",
        "torch": "`CosineAnnealingLR(opt, T_max, eta_min=0.0)`",
        "optax": "`cosine_decay_schedule(lr, T_max, alpha=eta_min / lr)` up to `T_max`",
        "transformers": "`get_scheduler('cosine', ...)` with warm-up",
        "keras": "`CosineDecay(lr, decay_steps=T_max, alpha=eta_min / lr)` up to `T_max`",
        "differs": "Past `T_max` torch's cosine is periodic (it climbs back to the initial LR at `2 * T_max`); "
                   "optax and Keras hold the floor (max rel 1.0 past `T_max`). Over a 5000-step run optax's "
                   "float32 `1 + cos` cancels in the tail (max rel 9.4e-2); jaxsched evaluates it as a sine.",
    },
    "SequentialLR": {
        "example": "SequentialLR([LinearLR(0.1, start_factor=0.01, total_iters=5), "
                   "CosineAnnealingLR(0.1, T_max=95)], milestones=[5])",
        "steps": "100",
        "torch": "`SequentialLR(opt, schedulers, milestones)`",
        "optax": "`join_schedules(schedules, boundaries)` (it re-bases the step as torch restarts the next one)",
        "transformers": "the warm-up + decay schedules of `get_scheduler`",
        "keras": "`CosineDecay(..., warmup_target=..., warmup_steps=...)` for warm-up then cosine",
        "differs": "At a milestone torch restarts the next schedule from its own index 0; MultiplicativeLR and "
                   "SWALR continue from the LR held. The previous schedule never shows its value at the "
                   "milestone. See the porting guide for SWA.",
    },
    "ChainedScheduler": {
        "example": "ChainedScheduler([ConstantLR(0.1, factor=0.1, total_iters=10), "
                   "ExponentialLR(0.1, gamma=0.95)])",
        "steps": "40",
        "torch": "`ChainedScheduler(schedulers)`",
        "optax": "`chain(scale_by_schedule(a), scale_by_learning_rate(b))` when every member is multiplicative; "
                 "not expressible otherwise",
        "transformers": "none",
        "keras": "none",
        "differs": "torch mutates the LR member by member; with non-multiplicative members (CosineAnnealingLR, "
                   "SWALR, LambdaLR, CosineAnnealingWarmRestarts) `s(k)` replays the steps: use "
                   "`jaxsched.Running` in a training step.",
    },
    "CyclicLR": {
        "example": "CyclicLR(base_lr=0.001, max_lr=0.1, step_size_up=20, mode='triangular2')",
        "steps": "200",
        "torch": "`CyclicLR(opt, base_lr, max_lr, step_size_up=2000, ...)` (cycles SGD's momentum)",
        "optax": "`join_schedules` of two `linear_schedule`s per cycle, unrolled to a horizon; `exp_range` and a "
                 "custom `scale_fn` are not expressible (max rel 8.4e-2 for the best approximation)",
        "transformers": "none",
        "keras": "none",
        "differs": "Cycles for ever with no horizon; `s.momentum(k)` is torch's cycled momentum, which "
                   "`jaxsched.optim.scheduled` wires into SGD's `momentum` or Adam's `b1`.",
    },
    "CosineAnnealingWarmRestarts": {
        "example": "CosineAnnealingWarmRestarts(0.1, T_0=10, T_mult=2)",
        "steps": "150",
        "torch": "`CosineAnnealingWarmRestarts(opt, T_0, T_mult=1, eta_min=0.0)`",
        "optax": "`sgdr_schedule([...])` with every cycle enumerated to a horizon (max rel 2.9e-5)",
        "transformers": "`get_scheduler('cosine_with_restarts', ...)` (equal cycles)",
        "keras": "`CosineDecayRestarts(lr, first_decay_steps=T_0, t_mul=T_mult, m_mul=1.0)`",
        "differs": "torch's documented `step(epoch + i / iters)` idiom lags optax's count by one update (max rel "
                   "1e5 if ported naively): `jaxsched.PerEpoch(s, steps_per_epoch, fractional=True)` is the "
                   "idiom.",
    },
    "OneCycleLR": {
        "example": "OneCycleLR(max_lr=0.1, total_steps=100)",
        "steps": "100",
        "torch": "`OneCycleLR(opt, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, ...)`",
        "optax": "`cosine_onecycle_schedule` is not torch's (max rel 126: phase ends at `int(pct * T)` and `T` "
                 "instead of `pct * T - 1` and `T - 1`); `piecewise_interpolate_schedule` with float keys is "
                 "(max rel 3.2e-5)",
        "transformers": "none",
        "keras": "none",
        "differs": "Stepping past `total_steps` raises for a concrete step (torch's ValueError); `s.momentum(k)` "
                   "is the cycled momentum.",
    },
    "SWALR": {
        "example": "SWALR(0.1, swa_lr=0.05, anneal_epochs=10, anneal_strategy='cos')",
        "steps": "20",
        "torch": "`torch.optim.swa_utils.SWALR(opt, swa_lr, anneal_epochs=10, anneal_strategy='cos')`",
        "optax": "not expressible (it anneals from whatever LR is held)",
        "transformers": "none",
        "keras": "none",
        "differs": "Inside `SequentialLR` it continues from the LR held at the milestone, as torch's does; torch's "
                   "documented SWA loop is not `SequentialLR` (see the porting guide).",
    },
    "ReduceLROnPlateau": {
        "example": "ReduceLROnPlateau(0.1, patience=3, factor=0.5)",
        "steps": "80",
        "torch": "`ReduceLROnPlateau(opt, mode='min', factor=0.1, patience=10, ...)`",
        "optax": "`contrib.reduce_on_plateau(factor, patience=patience + 1, rtol=threshold)`: optax cuts when the "
                 "bad-epoch count reaches `patience`, torch when it exceeds it; no `eps`, no `mode='max'`",
        "transformers": "`get_scheduler('reduce_lr_on_plateau', ...)` is torch's",
        "keras": "the `keras.callbacks.ReduceLROnPlateau` callback (stepped per epoch; not compared here)",
        "differs": "Its state is a pytree (`PlateauState`); it runs under `jit`, `lax.scan` and `vmap`. The plot "
                   "feeds a loss that improves for 20 steps, then stalls.",
    },
}

_HF = "`transformers.get_scheduler({name!r}, optimizer, ...)`, a torch `LambdaLR`"


def _hf(name: str, example: str, optax: str, differs: str, keras: str = "none", steps: str = "120") -> dict:
    return {"example": example, "steps": steps, "transformers": _HF.format(name=name),
            "torch": "the same `LambdaLR`, run by `jaxsched.LambdaLR` with a jnp lambda", "optax": optax,
            "keras": keras, "differs": differs}


# Hugging Face transformers 5.24.0 (W = warm-up steps, T = training steps); optax figures as above.
NOTES.update({
    "ConstantSchedule": _hf("constant", "ConstantSchedule(0.1)", "`constant_schedule(lr)` (exact)", "None."),
    "ConstantScheduleWithWarmup": _hf(
        "constant_with_warmup", "ConstantScheduleWithWarmup(0.1, num_warmup_steps=20)",
        "`warmup_constant_schedule(0, lr, W)`", "The warm-up starts at 0, not at `lr / W`."),
    "LinearScheduleWithWarmup": _hf(
        "linear", "LinearScheduleWithWarmup(0.1, num_warmup_steps=20, num_training_steps=100)",
        "`join_schedules([linear_schedule(0, lr, W), linear_schedule(lr, 0, T - W)], [W])`",
        "transformers ends at exactly 0; jitted optax leaves about 1e-11 there."),
    "CosineScheduleWithWarmup": _hf(
        "cosine", "CosineScheduleWithWarmup(0.1, num_warmup_steps=20, num_training_steps=100)",
        "`warmup_cosine_decay_schedule(0, lr, W, T)` for `num_cycles=0.5` only",
        "Past T transformers' cosine climbs back up; optax clamps. Other `num_cycles` have no optax built-in.",
        keras="`CosineDecay(0.0, T - W, warmup_target=lr, warmup_steps=W)`"),
    "CosineWithHardRestartsScheduleWithWarmup": _hf(
        "cosine_with_restarts",
        "CosineWithHardRestartsScheduleWithWarmup(0.1, num_warmup_steps=10, num_training_steps=100, num_cycles=3)",
        "linear warm-up + `sgdr_schedule` with equal cycles when `(T - W) / num_cycles` is an integer",
        "Fractional cycle lengths need optax's undocumented float keys."),
    "PolynomialDecayScheduleWithWarmup": _hf(
        "polynomial",
        "PolynomialDecayScheduleWithWarmup(0.1, num_warmup_steps=10, num_training_steps=100, power=2.0)",
        "warm-up + `polynomial_schedule(lr, lr_end, power, T - W)`",
        "The decay is relative to the optimizer's default LR in transformers; jitted optax can give NaN past the "
        "end for a non-integer power.", keras="`PolynomialDecay(lr, T - W, end_learning_rate=lr_end, power=power)`"),
    "InverseSqrtSchedule": _hf(
        "inverse_sqrt", "InverseSqrtSchedule(0.1, num_warmup_steps=20)", "a custom lambda (no built-in)",
        "None in value."),
    "CosineWithMinLRScheduleWithWarmup": _hf(
        "cosine_with_min_lr",
        "CosineWithMinLRScheduleWithWarmup(0.1, num_warmup_steps=10, num_training_steps=100, min_lr=0.01)",
        "`warmup_cosine_decay_schedule(0, lr, W, T, end_value=min_lr)`", "None in value for `num_cycles=0.5`."),
    "CosineWithMinLRScheduleWithWarmupLRRate": _hf(
        "cosine_warmup_with_min_lr",
        "CosineWithMinLRScheduleWithWarmupLRRate(0.1, num_warmup_steps=10, num_training_steps=100, min_lr=0.01)",
        "`join_schedules([linear_schedule(lr / W, lr, W - 1), cosine_decay_schedule(lr, T - W, alpha=r)], [W - 1])`",
        "transformers' warm-up reaches `lr` one step earlier than the other warm-ups ((s + 1) / W)."),
    "WSDSchedule": _hf(
        "warmup_stable_decay",
        "WSDSchedule(0.1, num_warmup_steps=10, num_decay_steps=30, num_training_steps=100, decay_type='1-sqrt')",
        "`join_schedules([linear, constant, cosine_decay], [W, T - D])` for linear or cosine decay",
        "The 1-sqrt decay has no optax built-in (the best approximation is off by 41% of the LR)."),
    "GreedyLR": _hf(
        "greedy", "GreedyLR(0.1, patience=2, factor=0.5, min_lr=0.001)", "none (optax's plateau only reduces)",
        "Metric-driven both ways; the plot feeds a loss that improves for 20 steps, then stalls.", steps="80"),
})


def _keras(name: str, example: str, torch: str, optax: str, differs: str, steps: str = "100") -> dict:
    return {"example": example, "steps": steps, "keras": f"`keras.optimizers.schedules.{name}` (Keras 3.15)",
            "torch": torch, "optax": optax, "transformers": "none", "differs": differs}


# Keras 3 (the values are Keras' own; see jaxsched.keras for the parity checks against live Keras).
NOTES.update({
    "ExponentialDecay": _keras(
        "ExponentialDecay", "ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)",
        "`StepLR(opt, step_size=decay_steps, gamma=decay_rate)` with `staircase=True`; `ExponentialLR` with "
        "`gamma = decay_rate ** (1 / decay_steps)` without",
        "`exponential_decay(lr, decay_steps, decay_rate, staircase=...)`",
        "None in value."),
    "PiecewiseConstantDecay": _keras(
        "PiecewiseConstantDecay", "PiecewiseConstantDecay(boundaries=[29, 79], values=[0.1, 0.01, 0.001])",
        "`MultiStepLR(opt, milestones=[b + 1 for b in boundaries], gamma)` when the values fall by one factor",
        "`piecewise_constant_schedule(values[0], {b + 1: ratio, ...})`",
        "Keras' boundaries are inclusive upper ends: `values[j]` for `boundaries[j-1] < t <= boundaries[j]`, so "
        "the LR changes one step later than a torch milestone of the same number."),
    "PolynomialDecay": _keras(
        "PolynomialDecay", "PolynomialDecay(0.1, decay_steps=80, end_learning_rate=0.001, power=2.0)",
        "`PolynomialLR(opt, total_iters=decay_steps, power)` when `end_learning_rate=0`",
        "`polynomial_schedule(lr, end, power, decay_steps)`",
        "Keras ends at `end_learning_rate` (default 1e-4, not torch's 0) and can cycle (`cycle=True`)."),
    "InverseTimeDecay": _keras(
        "InverseTimeDecay", "InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5)",
        "`LambdaLR(opt, lambda t: 1 / (1 + decay_rate * t / decay_steps))`", "a custom lambda (no built-in)",
        "None in value."),
    "CosineDecay": _keras(
        "CosineDecay", "CosineDecay(0.0, decay_steps=80, warmup_target=0.1, warmup_steps=10, alpha=0.01)",
        "`SequentialLR([LinearLR(...), CosineAnnealingLR(...)], milestones=[warmup_steps])` up to the end",
        "`warmup_cosine_decay_schedule(0, peak, warmup_steps, warmup_steps + decay_steps, end_value)`",
        "Keras holds its floor after `decay_steps`; torch's CosineAnnealingLR rises again (it is periodic)."),
    "CosineDecayRestarts": _keras(
        "CosineDecayRestarts", "CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=2.0, m_mul=0.8)",
        "`CosineAnnealingWarmRestarts(opt, T_0=first_decay_steps, T_mult=t_mul)` when `m_mul=1` and `t_mul` "
        "is an integer", "`sgdr_schedule` with the cycles enumerated",
        "Keras allows a fractional `t_mul` and shrinks each cycle's height by `m_mul`; torch has neither.",
        steps="150"),
})
