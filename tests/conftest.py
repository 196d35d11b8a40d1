"""Shared test set-up: hypothesis profiles, and the ``slow`` marker that splits off a fast tier.

``python -m pytest`` (what CI runs) runs everything; ``python -m pytest -m "not slow"`` is the fast tier for
development. A test is slow when it trains a model, drives a browser or a subprocess that imports the whole
stack, or runs whole trajectories over many configurations. Test files mark their own slow tests with
``@pytest.mark.slow`` (or ``pytestmark``); the modules and tests listed below are marked here, in one place,
because they are slow as a whole.
"""

from __future__ import annotations

import os

import pytest
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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

#: Test modules that are slow as a whole: training runs, browsers, the cost benchmark, subprocess pipelines.
SLOW_MODULES = frozenset({
    "test_benchmarks.py",  # runs `python -m benchmarks.schedules --quick` end to end (minutes)
    "test_cifar10.py",  # trains on CIFAR-10-shaped data
    "test_cifar10_run.py",  # whole CIFAR-10 benchmark runs, in subprocesses
    "test_report_browser.py",  # the parity report in Chromium
    "test_flax_example.py",  # trains a Flax model against torch
    "test_docs_examples.py",  # every docs example, in subprocesses
    "test_porting.py",  # the porting guide's runs against torch
    "test_keras_parity.py",  # whole trajectories against Keras' schedules
    "test_timm_parity.py",  # whole trajectories against timm's schedulers
    "test_docs_site.py",  # builds the documentation site, renders plots, drives Chromium
})

#: Single slow tests in otherwise fast modules (``file::test``, parameters included in the match).
SLOW_TESTS = frozenset({
    "test_parity_harness.py::test_check_gate_passes_on_the_whole_catalogue",  # `python -m parity check`
    "test_parity_harness.py::test_report_writes_html_and_markdown",  # renders plots
    "test_parity_harness.py::test_optax_findings_are_measured",
    "test_plot_cli.py::test_command_line_writes_png",  # a subprocess importing matplotlib and jax
    "test_cli_jaxsched.py::test_version_and_errors_from_the_installed_entry_point",  # subprocesses
    # live-framework trajectories (torch, transformers, keras) and long integer ranges: minutes together
    "test_numerics.py::test_values_near_int32_max",
    "test_plateau.py::test_parity_x64",
    "test_plateau.py::test_parity_float32",
    "test_transformers.py::test_matches_transformers",
    "test_transformers.py::test_greedy_matches_transformers",
    "test_keras.py::test_from_keras_gives_the_same_schedule",
    "test_integration_equinox.py::test_equinox_training_follows_torch",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = pytest.mark.slow
    for item in items:
        name = item.path.name
        test = f"{name}::{item.originalname}" if isinstance(item, pytest.Function) else name
        if name in SLOW_MODULES or test in SLOW_TESTS or name in SLOW_TESTS:
            item.add_marker(slow)
