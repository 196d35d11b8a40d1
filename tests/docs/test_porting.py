"""The porting guide (docs/porting.md): every trap's code runs against live torch (and optax, Keras) and its
assertions hold; one test per section, each in a fresh interpreter."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from test_docs_examples import DOCS, blocks, run_blocks

import jaxsched

pytestmark = pytest.mark.slow  # the porting guide's runs against torch, each in a fresh interpreter

PAGE = DOCS / "porting.md"
TRAPS = ["optax.adamw", "clip_grad_norm_", "optax.MultiSteps", "reduce_on_plateau", "Keras", "SWA"]
SECTIONS: dict[str, list] = {}
for _b in blocks(PAGE):
    SECTIONS.setdefault(_b.section, []).append(_b)


def test_every_trap_has_a_section_with_code():
    assert len(SECTIONS) == len(TRAPS)
    for trap in TRAPS:
        hits = [s for s in SECTIONS if trap in s]
        assert len(hits) == 1, (trap, list(SECTIONS))
        assert any(not b.skip and "torch" in b.code and "assert" in b.code for b in SECTIONS[hits[0]]), trap


@pytest.mark.slow
@pytest.mark.parametrize("section", list(SECTIONS), ids=[s.split(".")[0] for s in SECTIONS])
def test_trap(section):
    proc = run_blocks([b for b in SECTIONS[section] if not b.skip])
    print(proc.stdout)


def _torch_swa_loop(make_scheduler, epochs, swa_start, swa):
    """LRs of torch's documented SWA loop: ``scheduler.step()`` until ``swa_start``, then ``swa_scheduler``."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = make_scheduler(opt)
    swa_scheduler = torch.optim.swa_utils.SWALR(opt, swa_lr=swa[0], anneal_epochs=swa[1], anneal_strategy=swa[2])
    lrs = []
    for i in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if i > swa_start:
            swa_scheduler.step()
        else:
            scheduler.step()
    return np.array(lrs)


@pytest.mark.parametrize("case", ["cosine", "step"])
def test_documented_swa_construction_matches_torch_for_other_schedules(case):
    """The guide's construction (first schedule up to the first swa step, then SWALR from the held LR) is the
    documented loop for any first schedule, not only MultiplicativeLR."""
    epochs, swa_start = 40, 15
    first = swa_start + 1
    if case == "cosine":
        swa = (0.05, 5, "cos")
        decay = jaxsched.CosineAnnealingLR(0.1, T_max=30)
        loop = _torch_swa_loop(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30), epochs,
                               swa_start, swa)
    else:
        swa = (0.02, 7, "linear")
        decay = jaxsched.StepLR(0.1, step_size=6, gamma=0.5)
        loop = _torch_swa_loop(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=6, gamma=0.5), epochs,
                               swa_start, swa)
    with jax.enable_x64(True):
        tail = jaxsched.SWALR(float(decay(first)), swa_lr=swa[0], anneal_epochs=swa[1], anneal_strategy=swa[2])
        documented = jaxsched.LambdaLR(
            0.1, lr_lambda=lambda e: jnp.where(e <= first, decay(e), tail(e - first)) / 0.1)
        ours = np.asarray(jax.vmap(documented)(jnp.arange(epochs)))
        sequential = jaxsched.SequentialLR(
            [decay, jaxsched.SWALR(0.1, swa_lr=swa[0], anneal_epochs=swa[1], anneal_strategy=swa[2])],
            milestones=[first + 1])
        seq = np.asarray(jax.vmap(sequential)(jnp.arange(epochs)))
    assert np.abs(ours - loop).max() < 1e-12
    assert np.abs(seq - loop).max() > 1e-4        # SequentialLR is not the loop
