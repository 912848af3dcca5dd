"""streamattn: one-pass streaming approximation of softmax attention in sublinear space.

The C++ core (``streamattn._core``) holds every algorithm; this package re-exports it with a
few small conveniences. See README.md for the mathematics and the guarantees.
"""

from __future__ import annotations

from typing import Any

from . import _core
from ._core import (
    AMSSketch,
    CausalSegment,
    CausalStream,
    Certificate,
    ConcurrentUseError,
    CountSketch,
    GaussianSketch,
    KVStream,
    KWiseHash,
    MultiHeadCausalStream,
    Plan,
    PolyPrefixState,
    PolyStats,
    SparseRecovery,
    SparseRecoveryMatrix,
    SparseRecoveryPlan,
    SparseVector,
    TaylorFeatures,
    available_isas,
    choose_degree,
    exact_attention,
    get_isa,
    poly_attention,
    set_isa,
    sparse_recovery_plan,
    taylor_error,
)
from ._plan import plan

__version__: str = _core.__version__


def build_info() -> dict[str, Any]:
    """Facts about this build: version, compiler, Eigen, the ISAs compiled in, usable and selected,
    and the GEMM kernel the streams use now."""
    return _core._build_info()


__all__ = [
    "AMSSketch",
    "CausalSegment",
    "CausalStream",
    "Certificate",
    "ConcurrentUseError",
    "CountSketch",
    "GaussianSketch",
    "KVStream",
    "KWiseHash",
    "MultiHeadCausalStream",
    "Plan",
    "PolyPrefixState",
    "PolyStats",
    "SparseRecovery",
    "SparseRecoveryMatrix",
    "SparseRecoveryPlan",
    "SparseVector",
    "TaylorFeatures",
    "__version__",
    "available_isas",
    "build_info",
    "choose_degree",
    "exact_attention",
    "get_isa",
    "plan",
    "poly_attention",
    "set_isa",
    "sparse_recovery_plan",
    "taylor_error",
]
