"""RetNet on the CPU: fla 0.6's ``MultiScaleRetention`` layer and the two triton-only modules it is
built of, in torch with fla's parameter names and arithmetic:

* ``RotaryEmbedding``: fla's rotary embedding (cos/sin of position x inverse frequency in float32,
  halves or interleaved pairs rotated, the first 2 x len(inv_freq) channels only);
* ``FusedRMSNormGated``: fla's RMS norm with a swish (or sigmoid) output gate, in float32;
* ``MultiScaleRetention``: projections, rotary embedding, the retention itself on the layer's
  MultiHeadCausalStream (one fixed log-decay per head, RetNet's), gated norm, output projection.

The torch code is glue; the retention's arithmetic is the C++ stream's (float64 state).
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable, cast

import torch
from torch import nn

from ._layers import RMSNorm, _attend, _cached_stream, _no_padding, _project
from ._ops import retention_log_decay

__all__ = ["FusedRMSNormGated", "MultiScaleRetention", "RotaryEmbedding"]

_MODES = ("chunk", "fused_chunk", "parallel", "fused_recurrent")
_BUILTIN_ACT: dict[str, Callable[[], nn.Module]] = {
    "swish": nn.SiLU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh,
}  # fmt: skip


def _activation(option: str, name: str) -> nn.Module:
    """The activation fla takes by name (transformers' ACT2FN; a few torch ones without transformers)."""
    if not isinstance(name, str):
        raise TypeError(f"{option} must be an activation name (str), got {type(name).__name__}")
    try:
        act2fn: Any = importlib.import_module("transformers.activations").ACT2FN
    except ImportError:
        if name not in _BUILTIN_ACT:
            raise ValueError(
                f"{option}={name!r} needs transformers (fla names activations by transformers' ACT2FN); "
                f"without it: {', '.join(sorted(_BUILTIN_ACT))}"
            ) from None
        return _BUILTIN_ACT[name]()
    if name not in act2fn:
        raise ValueError(f"{option}={name!r} is not an activation of transformers' ACT2FN")
    return cast(nn.Module, act2fn[name])


class RotaryEmbedding(nn.Module):
    """fla's RotaryEmbedding (no XPos) in torch, same arguments and forward contract: q, k (B, T, H, D)
    rotated at positions seqlen_offset .. seqlen_offset + T - 1; cos and sin of t x inv_freq are
    computed in float32 (t in inv_freq's dtype when pos_idx_in_fp32=False), cast to q's dtype, and
    applied in float32, as fla's kernel does. ``interleaved=False`` rotates the pairs
    (x_i, x_{i + R}) (GPT-NeoX), ``True`` the pairs (x_{2i}, x_{2i + 1}) (GPT-J)."""

    inv_freq: torch.Tensor

    def __init__(
        self,
        dim: int,
        base: float = 10000.0,
        scale_base: float | None = None,
        interleaved: bool = False,
        pos_idx_in_fp32: bool = True,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(dim, int) or dim <= 0 or dim % 2 != 0:
            raise ValueError(f"the rotary dimension must be a positive even int, got {dim!r}")
        if scale_base is not None:
            raise ValueError("RotaryEmbedding: scale_base (XPos scaling) is not supported; pass scale_base=None")
        self.dim, self.base, self.scale_base = dim, float(base), scale_base
        self.interleaved, self.pos_idx_in_fp32 = bool(interleaved), bool(pos_idx_in_fp32)
        self.register_buffer("inv_freq", self._compute_inv_freq(device), persistent=False)

    def _compute_inv_freq(self, device: torch.device | None = None) -> torch.Tensor:
        return 1.0 / (self.base ** (torch.arange(0, self.dim, 2, dtype=torch.float32, device=device) / self.dim))

    @classmethod
    def from_fla(cls, rotary: Any) -> RotaryEmbedding:
        """The same embedding as an fla RotaryEmbedding (refused with XPos scaling, scale_base)."""
        if getattr(rotary, "scale_base", None) is not None:
            raise ValueError("RotaryEmbedding: scale_base (XPos scaling) is not supported")
        out = cls(int(rotary.dim), float(rotary.base), None, bool(rotary.interleaved), bool(rotary.pos_idx_in_fp32))
        out.inv_freq = rotary.inv_freq.detach().clone()
        return out

    def cos_sin(self, offset: int, length: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin (length, dim / 2) at positions offset .. offset + length - 1, in ``dtype``."""
        inv_freq = self.inv_freq
        positions = torch.arange(offset, offset + length, dtype=torch.float64, device=inv_freq.device)
        if self.pos_idx_in_fp32:
            t = positions.float()
            if inv_freq.dtype != torch.float32:
                inv_freq = self._compute_inv_freq(inv_freq.device)
        else:
            t = positions.to(inv_freq.dtype)
        freqs = torch.outer(t, inv_freq)
        return torch.cos(freqs).to(dtype), torch.sin(freqs).to(dtype)

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x (B, T, H, D) rotated by cos, sin (T, R): the first 2R channels, the rest passed through."""
        R = cos.shape[-1]
        if x.shape[-1] < 2 * R:
            raise ValueError(f"the rotary dimension {2 * R} exceeds the head dimension {x.shape[-1]}")
        xf, c, s = x.float(), cos.float()[:, None, :], sin.float()[:, None, :]
        if self.interleaved:
            x0, x1 = xf[..., 0 : 2 * R : 2], xf[..., 1 : 2 * R : 2]
            rot = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
        else:
            x0, x1 = xf[..., :R], xf[..., R : 2 * R]
            rot = torch.cat((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
        return torch.cat((rot, xf[..., 2 * R :]), dim=-1).to(x.dtype)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        seqlen_offset: int | torch.Tensor = 0,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """fla's contract; ``seqlen_offset`` one int (or a tensor of equal offsets); ``max_seqlen`` is
        accepted and not needed (cos and sin are computed at the positions used); ``cu_seqlens``
        (packed sequences) is refused."""
        if cu_seqlens is not None:
            raise ValueError("RotaryEmbedding: cu_seqlens (packed variable-length sequences) is not supported")
        if isinstance(seqlen_offset, torch.Tensor):
            if seqlen_offset.numel() == 0 or bool((seqlen_offset != seqlen_offset.flatten()[0]).any()):
                raise ValueError("RotaryEmbedding: per-sequence offsets must all be equal (no padded batches)")
            seqlen_offset = int(seqlen_offset.flatten()[0])
        if q.dim() != 4 or k.dim() != 4 or q.shape[1] != k.shape[1]:
            raise ValueError(f"q and k must be (B, T, H, D) with one T, got {tuple(q.shape)} and {tuple(k.shape)}")
        cos, sin = self.cos_sin(int(seqlen_offset), q.shape[1], q.dtype)
        return self.rotate(q, cos, sin), self.rotate(k, cos.to(k.dtype), sin.to(k.dtype))


class FusedRMSNormGated(nn.Module):
    """fla's FusedRMSNormGated in torch (same parameters): in float32,
    y = x / sqrt(mean(x^2) + eps) * weight (+ bias) * act(g), act(g) = g sigmoid(g) for 'swish' /
    'silu', sigmoid(g) for 'sigmoid'; y in x's dtype. With ``residual`` it normalizes x + residual
    and with ``prenorm`` returns (y, x + residual), as fla's."""

    def __init__(
        self,
        hidden_size: int,
        elementwise_affine: bool = True,
        eps: float = 1e-5,
        activation: str = "swish",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation not in ("swish", "silu", "sigmoid"):
            raise ValueError(f"FusedRMSNormGated: activation must be 'swish', 'silu' or 'sigmoid', got {activation!r}")
        self.hidden_size, self.elementwise_affine, self.eps, self.activation = (
            hidden_size, elementwise_affine, eps, activation,
        )  # fmt: skip
        self.weight = nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype)) if elementwise_affine else None
        self.bias: nn.Parameter | None = None

    @classmethod
    def from_fla(cls, norm: Any) -> FusedRMSNormGated:
        w = getattr(norm, "weight", None)
        out = cls(int(norm.hidden_size), w is not None, float(norm.eps), str(norm.activation))
        if getattr(norm, "bias", None) is not None:
            out.bias = nn.Parameter(norm.bias.detach().clone())
        if w is not None:
            out.weight = nn.Parameter(w.detach().clone())
        return out

    def forward(
        self,
        x: torch.Tensor,
        g: torch.Tensor,
        residual: torch.Tensor | None = None,
        prenorm: bool = False,
        residual_in_fp32: bool = False,
    ) -> Any:
        if g.shape != x.shape:
            raise ValueError(f"the gate g must have x's shape {tuple(x.shape)}, got {tuple(g.shape)}")
        xf = x.float() if residual is None else x.float() + residual.float()
        y = xf * torch.rsqrt(xf.square().mean(dim=-1, keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight.float()
        if self.bias is not None:
            y = y + self.bias.float()
        gf = g.float()
        y = (y * gf * torch.sigmoid(gf) if self.activation != "sigmoid" else y * torch.sigmoid(gf)).to(x.dtype)
        if not prenorm:
            return y
        res_dtype = residual.dtype if residual is not None else (torch.float32 if residual_in_fp32 else x.dtype)
        return y, xf.to(res_dtype)


class MultiScaleRetention(nn.Module):
    """fla 0.6's MultiScaleRetention (same constructor arguments, parameter names and forward
    contract) on one MultiHeadCausalStream per layer:

    q, k = rotary(phi(q_proj x), phi(k_proj x)) at the positions after the tokens already seen
    (phi = the optional ``feature_map``), o = retention(q, k, v_proj x) with decay
    1 - 2^(-5 - h) on head h and scale head_k_dim^-1/2, then the gated RMS norm per head
    (``FusedRMSNormGated`` with the swish gate g_proj x; or RMSNorm times gate_fn(g_proj x) when
    ``fuse_norm=False`` or gate_fn is not 'swish'; RMSNorm only without the output gate), o_proj.
    Grouped KV heads (num_kv_heads < num_heads) are the stream's own. ``mode`` is kept for fla's
    contract: every mode is the same stream. forward returns (o, None, past_key_values); with a
    cache (``StreamCache`` or fla's Cache) and use_cache=True the layer's stream stays in it
    (a state of fixed size). Refused with a ValueError: ``use_short_conv=True``, padding in
    ``attention_mask``, ``cu_seqlens``."""

    def __init__(
        self,
        mode: str = "chunk",
        hidden_size: int = 1024,
        expand_k: float = 1.0,
        expand_v: float = 2.0,
        num_heads: int = 8,
        num_kv_heads: int | None = None,
        feature_map: str | None = None,
        use_short_conv: bool = False,
        conv_size: int = 4,
        conv_bias: bool = False,
        use_output_gate: bool = True,
        gate_fn: str = "swish",
        elementwise_affine: bool | None = True,
        norm_eps: float = 1e-5,
        fuse_norm: bool = True,
        layer_idx: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
        if use_short_conv:
            raise ValueError(
                "MultiScaleRetention: use_short_conv=True (fla's ShortConvolution on q, k, v) is not supported"
            )
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_heads <= 0 or num_kv_heads <= 0 or num_heads % num_kv_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must be a positive multiple of num_kv_heads ({num_kv_heads})")
        key_dim, value_dim = hidden_size * expand_k, hidden_size * expand_v
        if not math.isclose(key_dim, round(key_dim)) or not math.isclose(value_dim, round(value_dim)):
            raise ValueError(
                f"hidden_size * expand_k ({key_dim}) and hidden_size * expand_v ({value_dim}) must be integers"
            )
        self.mode, self.hidden_size, self.expand_k, self.expand_v = mode, hidden_size, expand_k, expand_v
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.num_kv_groups = num_heads // num_kv_heads
        self.key_dim, self.value_dim = round(key_dim), round(value_dim)
        if self.key_dim % num_heads != 0 or self.value_dim % num_heads != 0:
            raise ValueError(
                f"the key dim ({self.key_dim}) and value dim ({self.value_dim}) must be multiples of num_heads "
                f"({num_heads})"
            )
        self.head_k_dim, self.head_v_dim = self.key_dim // num_heads, self.value_dim // num_heads
        if self.head_k_dim % 2 != 0:
            raise ValueError(f"the head key dim ({self.head_k_dim}) must be even (rotary embedding)")
        self.key_dim_per_group = self.key_dim // self.num_kv_groups
        self.value_dim_per_group = self.value_dim // self.num_kv_groups
        self.use_short_conv, self.conv_size, self.conv_bias = use_short_conv, conv_size, conv_bias
        self.use_output_gate, self.layer_idx = use_output_gate, layer_idx
        self.feature_map_fn = None if feature_map is None else _activation("feature_map", feature_map)

        self.q_proj = nn.Linear(hidden_size, self.key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, self.key_dim_per_group, bias=False)
        self.v_proj = nn.Linear(hidden_size, self.value_dim_per_group, bias=False)
        if use_output_gate:
            self.g_proj = nn.Linear(hidden_size, self.value_dim, bias=False)
        self.o_proj = nn.Linear(self.value_dim, hidden_size, bias=False)
        affine = bool(elementwise_affine)
        self.fuse_norm_and_gate = gate_fn == "swish" and fuse_norm and use_output_gate
        if self.fuse_norm_and_gate:
            self.g_norm_swish_gate = FusedRMSNormGated(self.head_v_dim, elementwise_affine=affine, eps=norm_eps)
        else:
            self.g_norm = RMSNorm(self.head_v_dim, elementwise_affine=affine, eps=norm_eps, dtype=torch.float32)
            self.gate_fn = _activation("gate_fn", gate_fn)
        self.rotary = RotaryEmbedding(dim=self.head_k_dim)

    @classmethod
    def from_fla(cls, layer: Any, layer_idx: int | None = None) -> MultiScaleRetention:
        """The same layer as an fla MultiScaleRetention: its arguments, weights (dtypes kept), feature
        map and gate activation (torch modules), rotary embedding; fla's triton FusedRMSNormGated /
        RMSNorm become this module's torch ones."""
        fused = bool(layer.fuse_norm_and_gate)
        norm = layer.g_norm_swish_gate if fused else layer.g_norm
        out = cls(
            str(layer.mode), int(layer.hidden_size), float(layer.expand_k), float(layer.expand_v),
            int(layer.num_heads), int(layer.num_kv_heads), None, bool(layer.use_short_conv), int(layer.conv_size),
            bool(layer.conv_bias), bool(layer.use_output_gate), "swish", getattr(norm, "weight", None) is not None,
            float(norm.eps), fused, layer_idx if layer_idx is not None else layer.layer_idx,
        )  # fmt: skip
        out.feature_map_fn = layer.feature_map_fn
        out.rotary = RotaryEmbedding.from_fla(layer.rotary)
        if fused:
            out.g_norm_swish_gate = FusedRMSNormGated.from_fla(norm)
        else:
            out.gate_fn = layer.gate_fn
        try:
            state = {name: t.detach().clone() for name, t in layer.state_dict().items()}
            out.load_state_dict(state, assign=True)  # the fla layer's dtypes, parameter by parameter
        except RuntimeError as e:
            raise ValueError(f"MultiScaleRetention.from_fla: the fla layer's parameters do not match: {e}") from e
        return out

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool | None = False,
        output_attentions: bool | None = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None, Any]:
        if not isinstance(hidden_states, torch.Tensor) or hidden_states.dim() != 3:
            shape = tuple(hidden_states.shape) if isinstance(hidden_states, torch.Tensor) else type(hidden_states)
            raise ValueError(f"hidden_states must be a (batch, tokens, hidden_size) tensor, got {shape}")
        if hidden_states.shape[2] != self.hidden_size:
            raise ValueError(f"hidden_states has {hidden_states.shape[2]} features, the layer {self.hidden_size}")
        if kwargs.get("cu_seqlens") is not None:
            raise ValueError("cu_seqlens (packed variable-length sequences) is not supported: pass (B, T) batches")
        _no_padding(attention_mask)
        B, T, _ = hidden_states.shape
        q, k, v = _project(self, hidden_states)
        if self.feature_map_fn is not None:
            q, k = self.feature_map_fn(q), self.feature_map_fn(k)
        # positions continue after the tokens the layer's stream has already seen (fla: the cache's length)
        stream = _cached_stream(self, past_key_values)
        q, k = self.rotary(q, k, seqlen_offset=0 if stream is None else stream.tokens_seen)
        o = _attend(
            self, q * self.head_k_dim**-0.5, k, v, past_key_values, use_cache, degree=1, kernel="power", scale=1.0,
            eps=0.0, normalize=False, log_decay=retention_log_decay(self.num_heads, torch.float64),
        )  # fmt: skip
        if self.use_output_gate:
            g = self.g_proj(hidden_states)
            if self.fuse_norm_and_gate:
                o = self.g_norm_swish_gate(o, g.view(B, T, self.num_heads, self.head_v_dim)).reshape(B, T, -1)
            else:
                o = self.g_norm(o).reshape(B, T, -1) * self.gate_fn(g)
        else:
            o = self.g_norm(o).reshape(B, T, -1)
        return cast(torch.Tensor, self.o_proj(o)), None, past_key_values
