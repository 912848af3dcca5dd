"""Helpers shared by the torch / flash-linear-attention tests (tests/test_torch*.py); the `th` and
`st` fixtures are in conftest.py."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import pytest


def import_fla(**modules: str) -> dict[str, ModuleType]:
    """{name: module} for fla's modules given as name=dotted path; skips (with the reason) where
    one cannot be imported. fla warns at import that it found no GPU; that warning is dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: pytest.importorskip(path) for name, path in modules.items()}


def rel(a, b) -> float:
    """max |a - b| / max |b| in float64, for torch tensors or arrays."""
    a, b = (np.asarray(x.detach() if hasattr(x, "detach") else x, dtype=np.float64) for x in (a, b))
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
