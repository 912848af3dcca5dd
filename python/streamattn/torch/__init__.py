"""PyTorch front end (needs torch; ``import streamattn`` alone does not import it).

* fla 0.6-compatible functional ops (``parallel_based``, ``chunk_linear_attn``,
  ``chunk_simple_gla``, ``chunk_retention``, ... and ``power_attention``): torch tensors in and
  out, ``initial_state`` / ``output_final_state`` for prefill then decode;
* inference layers with fla's constructor arguments and forward contract
  (``BasedLinearAttention``, ``LinearAttention``, ``MultiScaleRetention``), ``from_fla(layer)``,
  and a ``StreamCache``;
* ``convert(model)``: a whole fla model (``LinearAttentionForCausalLM``, ``RetNetForCausalLM``) on
  the CPU, for ``model.generate``.

The arithmetic is the C++ core's; this package adapts layouts, dtypes, argument names and
modules. See docs/torch.md.
"""

from __future__ import annotations

from ._convert import GatedMLP, convert
from ._layers import BasedLinearAttention, LinearAttention, RMSNorm, StreamCache
from ._ops import (
    chunk_linear_attn,
    chunk_retention,
    chunk_simple_gla,
    fused_chunk_based,
    fused_chunk_linear_attn,
    fused_recurrent_linear_attn,
    fused_recurrent_retention,
    fused_recurrent_simple_gla,
    parallel_based,
    power_attention,
    retention_log_decay,
)
from ._retention import FusedRMSNormGated, MultiScaleRetention, RotaryEmbedding

__all__ = [
    "BasedLinearAttention",
    "FusedRMSNormGated",
    "GatedMLP",
    "LinearAttention",
    "MultiScaleRetention",
    "RMSNorm",
    "RotaryEmbedding",
    "StreamCache",
    "chunk_linear_attn",
    "chunk_retention",
    "chunk_simple_gla",
    "convert",
    "fused_chunk_based",
    "fused_chunk_linear_attn",
    "fused_recurrent_linear_attn",
    "fused_recurrent_retention",
    "fused_recurrent_simple_gla",
    "parallel_based",
    "power_attention",
    "retention_log_decay",
]
