"""PyTorch front end: flash-linear-attention-compatible ops on the CPU streams.

Every op takes fla 0.6's arguments and returns what fla returns, computed by one
``MultiHeadCausalStream`` (batch x heads mapped onto its heads) in one pass and constant memory:

* ``parallel_based`` / ``fused_chunk_based``: Based (2nd-order Taylor kernel on the feature dim);
* ``chunk_linear_attn`` / ``fused_recurrent_linear_attn`` / ``fused_chunk_linear_attn``: linear
  attention on features the caller has already mapped (any feature map), with or without the
  normalizer;
* ``chunk_simple_gla`` / ``fused_recurrent_simple_gla``: one log-decay per head per token (``g``)
  or per head (``g_gamma``); ``chunk_retention`` / ``fused_recurrent_retention``: RetNet's decays;
* ``power_attention``: symmetric power attention, optionally gated (not an fla op).

Layout (B, T, H, D) as fla; ``head_first=True`` takes (B, H, T, D) (an extension: fla 0.6 refuses
it). The arithmetic is the C++ core's (float64 state); this module adapts layouts, dtypes and
argument names only. See docs/torch.md.
"""

from __future__ import annotations

from typing import Any, Literal, Union, cast

import torch

from .. import _core

__all__ = [
    "chunk_linear_attn",
    "chunk_retention",
    "chunk_simple_gla",
    "fused_chunk_based",
    "fused_chunk_linear_attn",
    "fused_recurrent_linear_attn",
    "fused_recurrent_retention",
    "fused_recurrent_simple_gla",
    "parallel_based",
    "power_attention",
    "retention_log_decay",
]

State = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]

_NATIVE = (torch.float32, torch.float64)
_LOW = (torch.float16, torch.bfloat16)


def _tensor(name: str, x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.device.type != "cpu":
        raise ValueError(f"{name} is on {x.device}; streamattn computes on the CPU: pass {name}.cpu()")
    if x.dtype not in _NATIVE + _LOW:
        raise TypeError(f"{name} has dtype {x.dtype}; pass a floating tensor (float32/float64, or float16/bfloat16)")
    return x.detach()


def _qkv(q: Any, k: Any, v: Any, head_first: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int, int]:
    """Checked q, k, v (float32/float64: float16/bfloat16 are computed in float32) and B, T, H."""
    if not isinstance(head_first, bool):
        raise TypeError(f"head_first must be True or False, got {type(head_first).__name__}")
    qt, kt, vt = _tensor("q", q), _tensor("k", k), _tensor("v", v)
    layout = "(B, H, T, D)" if head_first else "(B, T, H, D)"
    for name, x in (("q", qt), ("k", kt), ("v", vt)):
        if x.dim() != 4:
            raise ValueError(f"{name} must be 4-D {layout}, got shape {tuple(x.shape)}")
    if qt.dtype != kt.dtype or qt.dtype != vt.dtype:
        raise TypeError(f"q, k, v must have one dtype, got {qt.dtype}, {kt.dtype}, {vt.dtype}")
    if qt.dtype in _LOW:
        qt, kt, vt = qt.float(), kt.float(), vt.float()
    B, T, H = (qt.shape[0], qt.shape[2], qt.shape[1]) if head_first else qt.shape[:3]
    return qt, kt, vt, B, T, H


def _gate(g: Any, B: int, T: int, H: int, head_first: bool) -> torch.Tensor | None:
    if g is None:
        return None
    gt = _tensor("g", g)
    want = (B, H, T) if head_first else (B, T, H)
    if tuple(gt.shape) != want:
        raise ValueError(
            f"g must have shape {want} ({'(B, H, T)' if head_first else '(B, T, H)'}), got {tuple(gt.shape)}"
        )
    return gt


def _gamma_gate(g_gamma: Any, B: int, T: int, H: int, head_first: bool) -> torch.Tensor:
    gt = _tensor("g_gamma", g_gamma)
    if tuple(gt.shape) != (H,):
        raise ValueError(f"g_gamma must have one log-decay per head, shape ({H},), got {tuple(gt.shape)}")
    return gt.view(1, H, 1).expand(B, H, T) if head_first else gt.view(1, 1, H).expand(B, T, H)


def _run(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    B: int,
    H: int,
    out_dtype: torch.dtype,
    head_first: bool,
    degree: int,
    kernel: Literal["taylor", "power"],
    scale: float | None,
    eps: float,
    normalize: bool,
    g: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    output_final_state: bool,
    cu_seqlens: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One stream over every (batch, head): o in the layout of q, and the state [M | s] (B, H, t, dv + 1).
    With cu_seqlens, B is 1 and the N sequences packed along T each get their own stream (state (N, ...))."""
    if cu_seqlens is not None:
        return _run_varlen(
            q, k, v, B=B, H=H, out_dtype=out_dtype, head_first=head_first, degree=degree, kernel=kernel, scale=scale,
            eps=eps, normalize=normalize, g=g, initial_state=initial_state, output_final_state=output_final_state,
            cu_seqlens=cu_seqlens,
        )  # fmt: skip
    hk = 1 if head_first else 2
    Hkv = k.shape[hk]
    if Hkv == 0 or H % Hkv != 0:
        raise ValueError(f"q has {H} heads and k {Hkv}: the query heads must be a multiple of the key/value heads")
    stream = _core.MultiHeadCausalStream(
        B * H, B * Hkv, q.shape[3], v.shape[3], degree=degree, scale=scale, kernel=kernel, eps=eps, normalize=normalize
    )
    if initial_state is not None:
        st = _tensor("initial_state", initial_state)
        if st.dim() != 4 or st.shape[0] != B or st.shape[1] != H:
            raise ValueError(
                f"initial_state must be (B, H, t, dv [+ 1]) = ({B}, {H}, {stream.dim}, "
                f"{stream.dv}{' + 1' if normalize else ''}), got shape {tuple(st.shape)}"
            )
        stream.set_state(st)
    # torch tensors in: a torch tensor out (the stream's float32/float64 rows, shared, not copied)
    o = cast(torch.Tensor, stream.update(q, k, v, log_gate=g, head_first=head_first))
    if o.dtype != out_dtype:
        o = o.to(out_dtype)
    if not output_final_state:
        return o, None
    dt: Literal["float32", "float64"] = "float64" if q.dtype == torch.float64 else "float32"
    state = torch.from_numpy(stream.state(dtype=dt)).view(B, H, stream.dim, stream.dv + 1)
    return o, state


def _offsets(cu_seqlens: Any, B: int, T: int) -> list[int]:
    """fla's cu_seqlens checked: [0, ..., T] non-decreasing, one more entry than sequences, batch 1."""
    if not isinstance(cu_seqlens, torch.Tensor):
        raise TypeError(f"cu_seqlens must be a torch.Tensor of int64 offsets, got {type(cu_seqlens).__name__}")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            "cu_seqlens must be a 1-D integer tensor [0, end_1, ..., T] of N + 1 offsets, got "
            f"{cu_seqlens.dtype} of shape {tuple(cu_seqlens.shape)}"
        )
    if B != 1:
        raise ValueError(f"with cu_seqlens the batch size must be 1 (sequences packed along T), got {B}")
    offsets = [int(x) for x in cu_seqlens.cpu().tolist()]
    if offsets[0] != 0 or offsets[-1] != T or any(b < a for a, b in zip(offsets, offsets[1:])):
        raise ValueError(f"cu_seqlens must rise from 0 to T = {T} without decreasing, got {offsets}")
    return offsets


def _run_varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    B: int,
    H: int,
    head_first: bool,
    g: torch.Tensor | None,
    initial_state: torch.Tensor | None,
    output_final_state: bool,
    cu_seqlens: Any,
    **kw: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """_run on each sequence of a packed batch: (1, T, H, D) with cu_seqlens [0, ..., T]."""
    t_dim = 2 if head_first else 1
    offsets = _offsets(cu_seqlens, B, q.shape[t_dim])
    N = len(offsets) - 1
    if initial_state is not None:
        st = _tensor("initial_state", initial_state)
        if st.dim() != 4 or st.shape[0] != N:
            raise ValueError(
                f"with cu_seqlens, initial_state holds one state per sequence: ({N}, H, ...), "
                f"got shape {tuple(st.shape)}"
            )
    outs: list[torch.Tensor] = []
    states: list[torch.Tensor] = []
    for n, (a, b) in enumerate(zip(offsets, offsets[1:])):
        o, state = _run(
            q.narrow(t_dim, a, b - a), k.narrow(t_dim, a, b - a), v.narrow(t_dim, a, b - a), B=1, H=H,
            head_first=head_first, g=None if g is None else g.narrow(2 if head_first else 1, a, b - a),
            initial_state=None if initial_state is None else initial_state[n : n + 1],
            output_final_state=output_final_state, **kw,
        )  # fmt: skip
        outs.append(o)
        if state is not None:
            states.append(state)
    return torch.cat(outs, dim=t_dim), torch.cat(states, dim=0) if output_final_state else None


# ---- Based -------------------------------------------------------------------------------------


def parallel_based(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    use_norm: bool = True,
    *,
    head_first: bool = False,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> Any:
    """fla's ``parallel_based``: o = sum_{j<=i} (1 + s + s^2/2) v_j / (sum_{j<=i} (1 + s + s^2/2) + 1e-6),
    s = scale q_i.k_j (without the denominator when use_norm=False). Returns o, or (o, state) with
    output_final_state=True: state (B, H, t, dv + 1) = [M | s] over the Taylor features
    (t = C(D + 2, 2)), which ``initial_state`` accepts (prefill, then decode). head_first,
    initial_state and output_final_state are streamattn's extensions (fla's Based keeps no state)."""
    qt, kt, vt, B, _T, H = _qkv(q, k, v, head_first)
    o, state = _run(
        qt, kt, vt, B=B, H=H, out_dtype=q.dtype, head_first=head_first, degree=2, kernel="taylor", scale=scale,
        eps=1e-6 if use_norm else 0.0, normalize=use_norm, g=None, initial_state=initial_state,
        output_final_state=output_final_state, cu_seqlens=cu_seqlens,
    )  # fmt: skip
    return (o, state) if output_final_state else o


fused_chunk_based = parallel_based


# ---- Linear attention (any feature map) ----------------------------------------------------------


def chunk_linear_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: State | None = None,
    output_final_state: bool = False,
    normalize: bool = True,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, State | None]:
    """fla's ``chunk_linear_attn`` on features already mapped (q, k = phi(q), phi(k): Hedgehog, T2R,
    DPFP, ELU+1, identity, ...): o_i = scale q_i.S_i with S_i = sum_{j<=i} k_j v_j^T, divided by
    scale q_i.z_i + 1e-10 (z_i = sum_{j<=i} k_j) when normalize. The state is fla's: S (B, H, K, V),
    or (S, z) with z (B, 1, H, K) when normalize."""
    qt, kt, vt, B, _T, H = _qkv(q, k, v, head_first)
    c = qt.shape[3] ** -0.5 if scale is None else float(scale)
    init: torch.Tensor | None = None
    if initial_state is not None:
        if normalize:
            if not isinstance(initial_state, tuple) or len(initial_state) != 2:
                raise TypeError(
                    "with normalize=True, initial_state is the tuple (S, z) that output_final_state returns"
                )
            S, z = (_tensor("initial_state[0]", initial_state[0]), _tensor("initial_state[1]", initial_state[1]))
            if z.dim() != 4 or z.shape[1] != 1:
                raise ValueError(f"initial_state[1] (z) must be (B, 1, H, K), got shape {tuple(z.shape)}")
            if S.dim() != 4 or z.shape[0] != S.shape[0] or z.shape[2:] != S.shape[1:3]:
                raise ValueError(f"initial_state (S, z) must be (B, H, K, V) and (B, 1, H, K), got shapes "
                                 f"{tuple(S.shape)} and {tuple(z.shape)}")  # fmt: skip
            init = torch.cat([S, z.squeeze(1).unsqueeze(-1).to(S.dtype)], dim=-1)
        else:
            if isinstance(initial_state, tuple):
                raise TypeError("with normalize=False, initial_state is the tensor S (B, H, K, V)")
            init = initial_state
    # Scaled queries and unit-scale features (phi(x) = x): the stream's M is then fla's S itself.
    o, state = _run(
        qt * c, kt, vt, B=B, H=H, out_dtype=q.dtype, head_first=head_first, degree=1, kernel="power", scale=1.0,
        eps=1e-10 if normalize else 0.0, normalize=normalize, g=None, initial_state=init,
        output_final_state=output_final_state, cu_seqlens=cu_seqlens,
    )  # fmt: skip
    if state is None:
        return o, None
    dv = vt.shape[3]
    S_out = state[..., :dv].contiguous()
    if not normalize:
        return o, S_out
    return o, (S_out, state[..., dv].unsqueeze(1).contiguous())


def fused_recurrent_linear_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: State | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    normalize: bool = False,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, State | None]:
    """fla's ``fused_recurrent_linear_attn`` (normalize defaults to False there); reverse=True is refused."""
    if reverse:
        raise ValueError("reverse=True is not causal streaming; streamattn runs forward only")
    return chunk_linear_attn(
        q, k, v, scale, initial_state, output_final_state, normalize, head_first=head_first, cu_seqlens=cu_seqlens
    )


def fused_chunk_linear_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: State | None = None,
    output_final_state: bool = False,
    normalize: bool = True,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, State | None]:
    """fla's ``fused_chunk_linear_attn``: the same as chunk_linear_attn."""
    return chunk_linear_attn(
        q, k, v, scale, initial_state, output_final_state, normalize, head_first=head_first, cu_seqlens=cu_seqlens
    )


# ---- Scalar-gated linear attention (Simple GLA, RetNet) ------------------------------------------


def _gated(
    q: Any,
    k: Any,
    v: Any,
    g: Any,
    g_gamma: Any,
    scale: float | None,
    initial_state: Any,
    output_final_state: bool,
    head_first: bool,
    cu_seqlens: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    qt, kt, vt, B, T, H = _qkv(q, k, v, head_first)
    if g is not None and g_gamma is not None:
        raise ValueError("pass g (per token) or g_gamma (per head), not both")
    gate = _gate(g, B, T, H, head_first) if g_gamma is None else _gamma_gate(g_gamma, B, T, H, head_first)
    c = qt.shape[3] ** -0.5 if scale is None else float(scale)
    o, state = _run(
        qt * c, kt, vt, B=B, H=H, out_dtype=q.dtype, head_first=head_first, degree=1, kernel="power", scale=1.0,
        eps=0.0, normalize=False, g=gate, initial_state=initial_state, output_final_state=output_final_state,
        cu_seqlens=cu_seqlens,
    )  # fmt: skip
    return o, None if state is None else state[..., : vt.shape[3]].contiguous()


def chunk_simple_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla's ``chunk_simple_gla``: S_t = exp(g_t) S_{t-1} + k_t v_t^T, o_t = scale q_t.S_t; g (B, T, H)
    log-decays (each <= 0), or g_gamma (H,) one per head, or neither. State S (B, H, K, V)."""
    return _gated(q, k, v, g, g_gamma, scale, initial_state, output_final_state, head_first, cu_seqlens)


def fused_recurrent_simple_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    g_gamma: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla's ``fused_recurrent_simple_gla``: the same as chunk_simple_gla; reverse=True is refused."""
    if reverse:
        raise ValueError("reverse=True is not causal streaming; streamattn runs forward only")
    return _gated(q, k, v, g, g_gamma, scale, initial_state, output_final_state, head_first, cu_seqlens)


def retention_log_decay(heads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """RetNet's fixed per-head log-decays, log(1 - 2^(-5 - h)) for h = 0 .. heads - 1."""
    return torch.log1p(-torch.pow(2.0, -5.0 - torch.arange(heads, dtype=torch.float64))).to(dtype)


def chunk_retention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla's ``chunk_retention``: chunk_simple_gla with g_gamma = retention_log_decay(H)."""
    H = q.shape[1] if head_first else q.shape[2]
    return _gated(
        q, k, v, None, retention_log_decay(H), scale, initial_state, output_final_state, head_first, cu_seqlens
    )


def fused_recurrent_retention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla's ``fused_recurrent_retention``: the same as chunk_retention; reverse=True is refused."""
    if reverse:
        raise ValueError("reverse=True is not causal streaming; streamattn runs forward only")
    return chunk_retention(
        q, k, v, scale, initial_state, output_final_state, head_first=head_first, cu_seqlens=cu_seqlens
    )


# ---- Power attention ---------------------------------------------------------------------------


def power_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    degree: int = 2,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    normalize: bool = True,
    eps: float = 1e-6,
    *,
    head_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Symmetric power attention (streamattn's op): weights (scale q_i.k_j)^degree (even degree) times
    exp(g_{j+1} + ... + g_i) with g (B, T, H) log-decays or None; divided by their sum + eps when
    normalize. State (B, H, t, dv + 1) = [M | s], t = C(D + degree - 1, degree)."""
    qt, kt, vt, B, T, H = _qkv(q, k, v, head_first)
    return _run(
        qt, kt, vt, B=B, H=H, out_dtype=q.dtype, head_first=head_first, degree=degree, kernel="power", scale=scale,
        eps=eps if normalize else 0.0, normalize=normalize, g=_gate(g, B, T, H, head_first),
        initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
    )  # fmt: skip
