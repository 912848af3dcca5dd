"""Shared fixtures: fixed seeds only (no test draws from the OS entropy pool)."""

from __future__ import annotations

import numpy as np
import pytest

import streamattn


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture
def each_isa(request):
    """Runs the test body once per available kernel path via the returned iterator."""
    yield streamattn.available_isas()
    streamattn._core._reset_isa_from_environment()


def pytest_report_header(config):
    info = streamattn.build_info()
    return f"streamattn {info['version']}: ISAs available {info['isas_available']}, selected {info['isa_selected']}"
