"""plan(): every size, cost and guaranteed error of a streaming run, before reading any data."""

from __future__ import annotations

from typing import Any

from . import _core


class Plan:
    """The result of :func:`plan`: attributes for every field, ``as_dict()``, a readable repr."""

    __slots__ = ("_fields", "_text")

    def __init__(self, fields: dict[str, Any], text: str) -> None:
        self._fields = fields
        self._text = text

    def as_dict(self) -> dict[str, Any]:
        """A copy of every field (JSON-serializable)."""
        return dict(self._fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"Plan has no field {name!r}; fields: {', '.join(self._fields)}") from None

    def __repr__(self) -> str:
        return self._text


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
    state: str = "exact",
    *,
    eps: float | None = None,
    sketch_size: int | None = None,
    chunk: int = 32,
) -> Plan:
    """Sizes (g, t, state bytes, sketch size s, output-sketch rows/buckets), per-token cost and the
    guaranteed error terms of a stream of n tokens, computed by the C++ core (streamattn/stream/plan.hpp).

    beta = scale * max|q| * max|k| gives the Taylor error eps(beta, g) and the Alman-Song bound;
    a vacuous bound (eps >= 1) is flagged, with the degree that would make it non-vacuous.
    With eps (a Taylor target) and beta, the degree is the smallest even one meeting it.
    """
    fields, text = _core._plan(n, d, dv, k, eps1, eps2, delta, beta, degree, eps, state, sketch_size, chunk)
    return Plan(fields, text)
