"""Shared fixtures: fixed seeds only (no test draws from the OS entropy pool)."""

from __future__ import annotations

import os

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


@pytest.fixture
def th():
    """torch (skips where it cannot be imported), pinned to one thread while the test runs: the
    tests' matrices are tiny, and next to the streams' own C++ threads on a loaded 2-core machine
    torch's thread pool only adds synchronization (100x on a 64 x 256 Linear, measured once)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture
def st(th):
    """streamattn.torch."""
    import streamattn.torch as st

    return st


def pytest_report_header(config):
    info = streamattn.build_info()
    return f"streamattn {info['version']}: ISAs available {info['isas_available']}, selected {info['isa_selected']}"


# Tests of the optional integrations (torch, flash-linear-attention) are marked `extras` and skip
# with the reason where those packages are missing. CI installs them and sets
# STREAMATTN_REQUIRE_EXTRAS=1: then such a skip is a failure, so nothing is hidden by a missing extra.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("STREAMATTN_REQUIRE_EXTRAS") == "1" and report.skipped and item.get_closest_marker("extras"):
        report.outcome = "failed"
        report.longrepr = f"STREAMATTN_REQUIRE_EXTRAS=1 but this test was skipped: {report.longrepr}"
