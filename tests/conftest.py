"""Shared test set-up: hypothesis profiles, and the ``slow`` marker that splits off a fast tier.

``python -m pytest`` (the README's test command, which CI runs) runs everything; ``python -m pytest -m "not
slow"`` is the fast tier for development. A test is slow when it trains a model, drives a browser or a
subprocess that imports the whole stack, or runs whole trajectories over many configurations. Slow tests are
marked in their own files, one way only: ``@pytest.mark.slow`` on a test, or ``pytestmark = pytest.mark.slow``
for a whole module.

Hypothesis runs the ``ci`` profile unless ``HYPOTHESIS_PROFILE`` names another, so the README's command and CI
draw the same examples: 25 per test (fewer where a test sets its own budget), derandomized. ``dev`` draws 60
fresh examples per test, ``thorough`` 500.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
