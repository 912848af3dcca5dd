"""``convert(model)``: an fla 0.6 model (``LinearAttentionForCausalLM``, ``RetNetForCausalLM``) made
to run on the CPU.

Every module of the model that fla implements with triton kernels is replaced, in place, by a
torch or streamattn module holding the same weights: the attention layers by streamattn's layers
(``from_fla``), fla's ``RMSNorm`` (also its fused residual + norm form) by
``streamattn.torch.RMSNorm``, ``GatedMLP`` by a torch ``GatedMLP`` (and, outside a retention
layer, ``FusedRMSNormGated`` and ``RotaryEmbedding`` by streamattn.torch's). A module that is
neither one of those, nor one fla writes in plain torch (the model's containers, feature maps),
nor a torch module, is refused with its name, before anything is changed.
"""

from __future__ import annotations

from typing import Any, Callable, cast

import torch
from torch import nn

from ._layers import BasedLinearAttention, LinearAttention, RMSNorm
from ._retention import FusedRMSNormGated, MultiScaleRetention, RotaryEmbedding

__all__ = ["GatedMLP", "convert"]


class GatedMLP(nn.Module):
    """fla's GatedMLP with hidden_act='swish' (SwiGLU) in torch:
    down_proj(silu(gate_proj(x)) * up_proj(x)), same parameter names."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.hidden_size, self.intermediate_size, self.hidden_act = hidden_size, intermediate_size, "swish"
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    @classmethod
    def from_fla(cls, mlp: Any) -> GatedMLP:
        if mlp.hidden_act != "swish":
            raise ValueError(f"GatedMLP with hidden_act={mlp.hidden_act!r}: only 'swish' (SwiGLU) is supported")
        out = cls(int(mlp.hidden_size), int(mlp.intermediate_size))
        for name in ("gate_proj", "up_proj", "down_proj"):
            getattr(out, name).load_state_dict(getattr(mlp, name).state_dict())
        return out.to(mlp.gate_proj.weight.dtype)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return cast(torch.Tensor, self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x)))


# fla class name -> its CPU replacement, built from the fla module.
_REPLACE: dict[str, Callable[[Any], nn.Module]] = {
    "LinearAttention": LinearAttention.from_fla,
    "BasedLinearAttention": BasedLinearAttention.from_fla,
    "MultiScaleRetention": MultiScaleRetention.from_fla,
    "RMSNorm": RMSNorm.from_fla,
    "FusedRMSNormGated": FusedRMSNormGated.from_fla,
    "RotaryEmbedding": RotaryEmbedding.from_fla,
    "GatedMLP": GatedMLP.from_fla,
}
# fla classes that are plain torch and run on the CPU as they are.
_KEEP = (
    "LinearAttentionForCausalLM",
    "LinearAttentionModel",
    "LinearAttentionBlock",
    "RetNetForCausalLM",
    "RetNetModel",
    "RetNetBlock",
    "HedgehogFeatureMap",
    "T2RFeatureMap",
    "HadamardFeatureMap",
    "DPFPFeatureMap",
    "TaylorFeatureMap",
)
_OURS = (
    LinearAttention,
    BasedLinearAttention,
    MultiScaleRetention,
    RMSNorm,
    GatedMLP,
    FusedRMSNormGated,
    RotaryEmbedding,
)


def _is_fla(module: nn.Module) -> bool:
    return type(module).__module__.split(".")[0] == "fla"


def _plan(module: nn.Module, prefix: str, todo: list[tuple[nn.Module, str, str, nn.Module]]) -> None:
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        kind = type(child).__name__
        if isinstance(child, _OURS):
            continue
        if _is_fla(child) and kind in _REPLACE:
            todo.append((module, name, path, child))
            continue
        if _is_fla(child) and kind not in _KEEP:
            raise ValueError(
                f"convert: module {path!r} is fla's {kind}, which has no CPU equivalent here; supported: "
                f"{', '.join(sorted(_REPLACE))} (replaced), {', '.join(_KEEP)} (kept as they are)"
            )
        _plan(child, path, todo)


def convert(model: nn.Module) -> nn.Module:
    """Make an fla 0.6 model run on the CPU, in place, and return it.

    For ``LinearAttentionForCausalLM`` (its ``LinearAttention`` layers with any of fla's feature
    maps; with ``TaylorFeatureMap`` on q and k it is a Based model, run on the stream's Taylor
    kernel) and ``RetNetForCausalLM`` (its ``MultiScaleRetention`` layers, with their rotary
    embedding and gated norm): attention layers, RMSNorms and GatedMLPs become streamattn.torch
    modules with the same weights; ``model.generate(...)`` then keeps one stream per layer in its
    cache — a state of fixed size, whatever the number of tokens. Refused with a ValueError naming the module: standard
    (softmax) attention layers of hybrid configs, attention residuals (``attnres_block_size``),
    options a layer does not support (e.g. ``use_short_conv``), any other fla module; nothing is
    changed then.
    """
    if getattr(getattr(model, "config", None), "attnres_block_size", None) is not None:
        raise ValueError("convert: attention residuals (config.attnres_block_size) are not supported")
    if isinstance(model, _OURS):
        return model
    todo: list[tuple[nn.Module, str, str, nn.Module]] = []
    _plan(model, "", todo)
    new = []
    for _, _, path, child in todo:
        try:
            new.append(_REPLACE[type(child).__name__](child))
        except ValueError as e:
            raise ValueError(f"convert: module {path!r}: {e}") from e
    for (parent, name, _, _), module in zip(todo, new):
        setattr(parent, name, module)
    return model
