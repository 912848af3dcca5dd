"""plan(): every size, cost and guaranteed error of a streaming run, before reading any data."""

from __future__ import annotations

from typing import Literal

from . import _core
from ._core import Plan


def plan(
    n: int,
    d: int,
    dv: int | None = None,
    k: int | None = None,
    eps1: float | None = None,
    eps2: float | None = None,
    delta: float = 0.01,
    beta: float | None = None,
    degree: int | None = None,
    state: Literal["exact", "sketched"] = "exact",
    *,
    eps: float | None = None,
    sketch: Literal["ams", "gaussian"] = "ams",
    sketch_size: int | None = None,
    chunk: int = _core.CausalStream.default_chunk,
) -> Plan:
    """Sizes (g, t, state bytes, sketch size s, output-sketch rows/buckets), per-token cost and the
    guaranteed error terms of a stream of n tokens, computed by the C++ core (streamattn/stream/plan.hpp).

    beta = scale * max|q| * max|k| gives the Taylor error eps(beta, g) and the Alman-Song bound;
    a vacuous bound (eps >= 1) is flagged, with the degree that would make it non-vacuous.
    With eps (a Taylor target) and beta, the degree is the smallest even one meeting it.
    """
    return _core._plan(n, d, dv, k, eps1, eps2, delta, beta, degree, eps, state, sketch, sketch_size, chunk)
