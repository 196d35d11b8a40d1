"""The porting guide (docs/porting.md): every trap's code runs against live torch (and optax, Keras) and its
assertions hold; one test per section, each in a fresh interpreter."""

from __future__ import annotations

import pytest
from test_docs_examples import DOCS, blocks, run_blocks

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
