"""Inference layers with the constructor arguments and forward contract of fla 0.6's
``BasedLinearAttention`` and ``LinearAttention``, running on one MultiHeadCausalStream per layer.

Weights come from an fla layer (``from_fla``) or the usual nn.Module loading. Generation keeps
the layer's stream itself in the cache (``StreamCache``, or fla's ``Cache``: any object with
``len``, ``[layer_idx]`` and ``update(layer_idx=..., recurrent_state=...)``): constant memory per
layer, the state stays float64 between tokens and is never converted.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, cast

import torch
from torch import nn

from .. import _core

__all__ = ["BasedLinearAttention", "LinearAttention", "RMSNorm", "StreamCache"]


class StreamCache:
    """A generation cache of streams, one per layer index (the protocol of fla's Cache that the
    layers use): ``cache[i]["recurrent_state"]`` is layer i's MultiHeadCausalStream."""

    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, layer_idx: int) -> dict[str, Any]:
        return self.states[layer_idx]

    def update(self, recurrent_state: Any = None, layer_idx: int = 0, offset: int = 1, **kwargs: Any) -> dict[str, Any]:
        while len(self.states) <= layer_idx:
            self.states.append({"recurrent_state": None, "offset": 0})
        entry = self.states[layer_idx]
        if recurrent_state is not None:
            entry["recurrent_state"] = recurrent_state
        entry["offset"] += offset
        return entry

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.states[layer_idx]["offset"]) if len(self.states) > layer_idx else 0


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight (+ bias), in torch: the CPU equivalent of fla's RMSNorm
    (same parameters, same names)."""

    def __init__(
        self,
        hidden_size: int,
        elementwise_affine: bool = True,
        bias: bool = False,
        eps: float = 1e-5,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size, self.eps = hidden_size, eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=dtype)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(hidden_size, dtype=dtype)) if elementwise_affine and bias else None

    @classmethod
    def from_fla(cls, norm: Any) -> RMSNorm:
        w, b = getattr(norm, "weight", None), getattr(norm, "bias", None)
        out = cls(int(norm.hidden_size), w is not None, b is not None, float(norm.eps))
        out.load_state_dict(norm.state_dict())
        return out

    def forward(
        self,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        prenorm: bool = False,
        residual_in_fp32: bool = False,
    ) -> Any:
        """fla's contract: with ``residual``, normalizes x + residual; with ``prenorm``, returns
        (normalized, x + residual) (the sum in float32 when ``residual_in_fp32``)."""
        dtype = x.dtype
        if residual is not None:
            x = (x + residual).to(dtype)
        y = x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        y = y.to(dtype)
        if not prenorm:
            return y
        return y, (x.float() if residual_in_fp32 else x)


class _LayerStream(_core.MultiHeadCausalStream):
    """A layer's stream as a cache entry: fla's Cache reads ``.device`` from the states it holds."""

    device = torch.device("cpu")


def _no_padding(attention_mask: torch.Tensor | None) -> None:
    if attention_mask is not None and not bool(attention_mask.bool().all()):
        raise ValueError(
            "attention_mask marks padding: a causal stream reads every token in order; pass unpadded "
            "sequences (one sequence, or sequences of equal length)"
        )


def _project(layer: Any, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v of a layer with fla's q/k/v_proj: (B, T, heads, head_k_dim), (B, T, kv heads, head_k_dim),
    (B, T, kv heads, head_v_dim)."""
    B, T, _ = hidden_states.shape
    kv_heads = getattr(layer, "num_kv_heads", layer.num_heads)
    q = layer.q_proj(hidden_states).view(B, T, layer.num_heads, layer.head_k_dim)
    k = layer.k_proj(hidden_states).view(B, T, kv_heads, layer.head_k_dim)
    v = layer.v_proj(hidden_states).view(B, T, kv_heads, layer.head_v_dim)
    return q, k, v


def _cached_stream(layer: nn.Module, past_key_values: Any) -> _core.MultiHeadCausalStream | None:
    """The stream the cache holds for this layer (None before its first cached call)."""
    if past_key_values is None:
        return None
    layer_idx = getattr(layer, "layer_idx", None)
    if layer_idx is None:
        raise ValueError("a layer used with a cache needs a layer_idx (pass layer_idx= to the constructor)")
    if len(past_key_values) <= layer_idx:
        return None
    stream = past_key_values[layer_idx].get("recurrent_state")
    if stream is not None and not isinstance(stream, _core.MultiHeadCausalStream):
        raise TypeError(
            f"the cache of layer {layer_idx} holds a {type(stream).__name__}, not a streamattn stream: "
            "use a fresh cache for a converted model"
        )
    return stream


def _attend(
    layer: nn.Module,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    past_key_values: Any,
    use_cache: bool | None,
    *,
    degree: int,
    kernel: Literal["taylor", "power"],
    scale: float,
    eps: float,
    normalize: bool,
    log_decay: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T, H, .) q, k, v through the layer's stream (the cached one when there is one) -> (B, T, H, dv);
    ``log_decay`` (H,): one fixed log-decay per query head (the state decays by exp(log_decay) per token)."""
    dtype = q.dtype
    if dtype not in (torch.float32, torch.float64):
        q, k, v = q.float(), k.float(), v.float()
    q, k, v = q.detach(), k.detach(), v.detach()
    B, T, H, D = q.shape
    layer_idx = getattr(layer, "layer_idx", None)
    stream = _cached_stream(layer, past_key_values)
    if stream is not None and stream.heads != B * H:
        raise ValueError(
            f"the cached stream has {stream.heads} heads, this batch needs {B} x {H}: a cache serves one batch size"
        )
    if stream is None:
        stream = _LayerStream(
            B * H,
            B * k.shape[2],
            D,
            v.shape[3],
            degree=degree,
            scale=scale,
            kernel=kernel,
            eps=eps,
            normalize=normalize,
        )
    gate = None if log_decay is None else log_decay.to(q.dtype).view(1, 1, H).expand(B, T, H)
    o = cast(torch.Tensor, stream.update(q, k, v, log_gate=gate))
    if past_key_values is not None and use_cache:
        past_key_values.update(recurrent_state=stream, layer_idx=layer_idx, offset=q.shape[1])
    return o.to(dtype)


class BasedLinearAttention(nn.Module):
    """fla's BasedLinearAttention (same arguments and weights): Taylor 2nd-order kernel on the
    feature dim, o_proj(sum_j (1 + s + s^2/2) v_j / (sum_j (1 + s + s^2/2) + eps)), s = q.k/sqrt(feature_dim).
    eps is fla's causal kernels' own: 1e-6 for mode='parallel', 1e-10 for 'chunk'/'fused_chunk'.
    forward returns the output tensor, as fla's; past_key_values/use_cache (and layer_idx) are
    streamattn's extension for generation. causal=False is refused (a stream is causal)."""

    def __init__(
        self,
        hidden_size: int,
        feature_dim: int = 16,
        num_key_value_heads: int = 12,
        num_heads: int = 12,
        feature_name: str = "taylor_exp",
        eps: float = 1e-12,
        causal: bool = True,
        mode: str = "parallel",
        layer_idx: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("parallel", "chunk", "fused_chunk"):
            raise ValueError(f"mode must be 'parallel', 'chunk' or 'fused_chunk', got {mode!r}")
        if feature_name != "taylor_exp":
            raise ValueError(f"feature_name must be 'taylor_exp', got {feature_name!r}")
        if not causal:
            raise ValueError("causal=False is not a stream: streamattn's layers are causal")
        if num_heads != num_key_value_heads or hidden_size % num_heads != 0:
            raise ValueError("num_heads must equal num_key_value_heads and divide hidden_size")
        self.hidden_size, self.feature_dim, self.mode, self.eps = hidden_size, feature_dim, mode, eps
        self.num_heads = self.num_key_value_heads = num_heads
        self.head_k_dim, self.head_v_dim = feature_dim, hidden_size // num_heads
        self.causal, self.layer_idx, self.feature_name = causal, layer_idx, feature_name
        self.q_proj = nn.Linear(hidden_size, num_heads * feature_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, num_heads * feature_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, num_heads * self.head_v_dim, bias=False)
        self.o_proj = nn.Linear(num_heads * self.head_v_dim, hidden_size, bias=False)

    @classmethod
    def from_fla(cls, layer: Any, layer_idx: int | None = None) -> BasedLinearAttention:
        """The same layer (arguments and weights) as an fla BasedLinearAttention."""
        out = cls(
            int(layer.hidden_size), int(layer.feature_dim), int(layer.num_key_value_heads), int(layer.num_heads),
            str(layer.feature_name), float(layer.eps), bool(layer.causal), str(layer.mode),
            layer_idx if layer_idx is not None else getattr(layer, "layer_idx", None),
        )  # fmt: skip
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            getattr(out, name).load_state_dict(getattr(layer, name).state_dict())
        return out.to(layer.q_proj.weight.dtype)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool | None = False,
        **kwargs: Any,
    ) -> torch.Tensor:
        _no_padding(attention_mask)
        B, T, _ = hidden_states.shape
        q, k, v = _project(self, hidden_states)
        o = _attend(
            self, q, k, v, past_key_values, use_cache, degree=2, kernel="taylor", scale=self.head_k_dim**-0.5,
            eps=1e-6 if self.mode == "parallel" else 1e-10, normalize=True,
        )  # fmt: skip
        return cast(torch.Tensor, self.o_proj(o.reshape(B, T, -1)))


class LinearAttention(nn.Module):
    """fla's LinearAttention on a stream: any of fla's feature maps (taken from the fla layer),
    the normalizer when do_feature_map_norm, GQA, the output RMSNorm. Build it with
    ``from_fla(layer)``; forward(hidden_states, attention_mask, past_key_values, use_cache) returns
    (o, None, past_key_values) as fla's does."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: int,
        head_k_dim: int,
        head_v_dim: int,
        feature_map_q: Callable[[torch.Tensor], torch.Tensor],
        feature_map_k: Callable[[torch.Tensor], torch.Tensor],
        norm: nn.Module,
        do_feature_map_norm: bool = False,
        norm_q: bool = False,
        norm_k: bool = False,
        layer_idx: int | None = None,
    ) -> None:
        super().__init__()
        if num_heads % num_kv_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")
        self.hidden_size, self.num_heads, self.num_kv_heads = hidden_size, num_heads, num_kv_heads
        self.head_k_dim, self.head_v_dim, self.layer_idx = head_k_dim, head_v_dim, layer_idx
        self.do_feature_map_norm, self.norm_q, self.norm_k = do_feature_map_norm, norm_q, norm_k
        self.feature_map_q, self.feature_map_k = feature_map_q, feature_map_k
        self.q_proj = nn.Linear(hidden_size, num_heads * head_k_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * head_k_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * head_v_dim, bias=False)
        self.o_proj = nn.Linear(num_heads * head_v_dim, hidden_size, bias=False)
        self.norm = norm

    @property
    def taylor(self) -> bool:
        """fla's TaylorFeatureMap on q and k (a Based layer): phi(q).phi(k) = 1 + s + s^2/2 with
        s = q.k/sqrt(head_k_dim), computed on the stream's Taylor kernel without forming phi."""
        maps = (self.feature_map_q, self.feature_map_k)
        return not self.norm_q and not self.norm_k and all(type(f).__name__ == "TaylorFeatureMap" for f in maps)

    @classmethod
    def from_fla(cls, layer: Any, layer_idx: int | None = None) -> LinearAttention:
        """The same layer as an fla LinearAttention: its projections, feature maps (torch modules) and
        output norm (fla's RMSNorm becomes streamattn.torch.RMSNorm with the same weights)."""
        norm = layer.norm
        if type(norm).__name__ == "RMSNorm" and not isinstance(norm, RMSNorm):
            norm = RMSNorm.from_fla(norm)
        group = int(layer.num_heads) // int(layer.num_kv_heads)
        out = cls(
            int(layer.hidden_size), int(layer.num_heads), int(layer.num_kv_heads), int(layer.head_k_dim),
            int(layer.head_v_dim), layer.feature_map_q, layer.feature_map_k, norm, bool(layer.do_feature_map_norm),
            bool(layer.norm_q), bool(layer.norm_k), layer_idx if layer_idx is not None else layer.layer_idx,
        )  # fmt: skip
        if group > 1 and layer.k_proj.weight.shape[0] != out.k_proj.weight.shape[0]:
            raise ValueError("unexpected k_proj shape in the fla layer")
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            getattr(out, name).load_state_dict(getattr(layer, name).state_dict())
        return out.to(layer.q_proj.weight.dtype)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool | None = False,
        output_attentions: bool | None = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None, Any]:
        _no_padding(attention_mask)
        B, T, _ = hidden_states.shape
        q, k, v = _project(self, hidden_states)
        if self.taylor:
            # fla scales phi(q) by K^-1/2 with K = dim phi = (D + 1)(D + 2)/2 and adds 1e-10 to q.z
            D, nf = self.head_k_dim, (self.head_k_dim + 1) * (self.head_k_dim + 2) // 2
            o = _attend(
                self, q, k, v, past_key_values, use_cache, degree=2, kernel="taylor", scale=D**-0.5,
                eps=1e-10 * nf**0.5 if self.do_feature_map_norm else 0.0, normalize=self.do_feature_map_norm,
            )  # fmt: skip
            if not self.do_feature_map_norm:
                o = o * nf**-0.5
            o = self.norm(o)
            return cast(torch.Tensor, self.o_proj(o.reshape(B, T, -1))), None, past_key_values
        q, k = self.feature_map_q(q), self.feature_map_k(k)
        if self.norm_q:
            q = q / (q.sum(-1, True) + 1e-4)
        if self.norm_k:
            k = k / (k.sum(-1, True) + 1e-4)
        # fla scales the queries by K^-1/2 (K = the feature-mapped dim) and divides by q.sum(k) + 1e-10
        o = _attend(
            self, q * q.shape[-1] ** -0.5, k, v, past_key_values, use_cache, degree=1, kernel="power", scale=1.0,
            eps=1e-10 if self.do_feature_map_norm else 0.0, normalize=self.do_feature_map_norm,
        )  # fmt: skip
        o = self.norm(o)
        return cast(torch.Tensor, self.o_proj(o.reshape(B, T, -1))), None, past_key_values
