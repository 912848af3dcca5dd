"""streamattn.torch layers (issue 17): from_fla(layer) gives the outputs of the fla layer evaluated
with fla's own CPU reference math (float32, <= 1e-5 relative), in one call and as prefill + token-by-
token decode through a StreamCache."""

from __future__ import annotations

import warnings

import pytest

from fla_helpers import import_fla, rel

pytestmark = pytest.mark.extras


@pytest.fixture
def fla(th):
    return import_fla(
        based="fla.layers.based",
        linear_attn="fla.layers.linear_attn",
        layernorm="fla.modules.norm.layernorm",
        naive="fla.ops.linear_attn.naive",
    )


def decode(layer, x, prefill, cache_factory, tuple_out=False):
    """prefill tokens in one call, then one token per call, through one cache."""
    cache = cache_factory()
    outs = []
    for a, b in [(0, prefill)] + [(i, i + 1) for i in range(prefill, x.shape[1])]:
        o = layer(x[:, a:b], past_key_values=cache, use_cache=True)
        outs.append(o[0] if tuple_out else o)
    return outs, cache


@pytest.mark.parametrize("mode", ["parallel", "chunk"])
def test_based_layer_from_fla(th, fla, st, mode):
    th.manual_seed(0)
    ref_layer = fla["based"].BasedLinearAttention(hidden_size=48, feature_dim=8, num_heads=4, num_key_value_heads=4)
    ref_layer.mode = mode
    x = th.randn(2, 37, 48)
    with th.no_grad():
        with warnings.catch_warnings():
            # fla's Taylor feature map runs torch.utils.checkpoint (reentrant, without grad): torch warns
            warnings.filterwarnings("ignore", message="torch.utils.checkpoint")
            warnings.filterwarnings("ignore", message="None of the inputs have requires_grad")
            ref = ref_layer.forward_reference(x)  # fla's torch math (Taylor feature map, eps 1e-12)
        ours = st.BasedLinearAttention.from_fla(ref_layer, layer_idx=0)
        o = ours(x)
        assert o.dtype == th.float32 and o.shape == x.shape
        assert rel(o, ref) <= 1e-5
        outs, cache = decode(ours, x, 20, st.StreamCache)
        assert rel(th.cat(outs, dim=1), ref) <= 1e-5
        assert cache.get_seq_length(0) == 37
        nbytes = cache[0]["recurrent_state"].nbytes
        ours(x[:, :1], past_key_values=cache, use_cache=True)
        assert cache[0]["recurrent_state"].nbytes == nbytes  # constant memory per layer
        with pytest.raises(ValueError, match="batch"):
            ours(x[:1, :1], past_key_values=cache, use_cache=True)


def _fla_linear_reference(th, fla, layer, x):
    """fla's LinearAttention.forward with its triton-only pieces replaced by fla's CPU references:
    the ops by naive_recurrent_linear_attn, RMSNorm by rms_norm_ref."""
    naive = fla["naive"].naive_recurrent_linear_attn
    mod = fla["linear_attn"]

    def op(q, k, v, initial_state=None, output_final_state=False, normalize=False, cu_seqlens=None, **kw):
        return naive(q, k, v, initial_state=initial_state, output_final_state=output_final_state, normalize=normalize)

    norm = layer.norm
    saved = (mod.chunk_linear_attn, mod.fused_chunk_linear_attn, mod.fused_recurrent_linear_attn, norm.forward)
    mod.chunk_linear_attn = mod.fused_chunk_linear_attn = mod.fused_recurrent_linear_attn = op
    norm.forward = lambda t: fla["layernorm"].rms_norm_ref(t, norm.weight, norm.bias, eps=norm.eps)
    try:
        return layer(x)[0]
    finally:
        mod.chunk_linear_attn, mod.fused_chunk_linear_attn, mod.fused_recurrent_linear_attn = saved[:3]
        del norm.forward


@pytest.mark.parametrize(
    "feature_map, normalize, kv_heads",
    [("hedgehog", True, 4), ("elu", False, 2), ("t2r", True, 4), ("identity", False, 4)],
)
def test_linear_attention_layer_from_fla(th, fla, st, feature_map, normalize, kv_heads):
    th.manual_seed(1)
    ref_layer = fla["linear_attn"].LinearAttention(
        hidden_size=32, num_heads=4, num_kv_heads=kv_heads, feature_map=feature_map,
        do_feature_map_norm=normalize, layer_idx=0,
    )  # fmt: skip
    with th.no_grad():
        ref_layer.norm.weight.uniform_(0.5, 1.5)
        x = th.randn(2, 41, 32)
        ref = _fla_linear_reference(th, fla, ref_layer, x)
        ours = st.LinearAttention.from_fla(ref_layer)
        o, _, _ = ours(x)
        assert o.dtype == th.float32 and rel(o, ref) <= 1e-5
        outs, _ = decode(ours, x, 25, st.StreamCache, tuple_out=True)
        assert rel(th.cat(outs, dim=1), ref) <= 1e-5
        with pytest.raises(ValueError, match="padding"):
            ours(x, attention_mask=th.ones(2, 41).index_fill_(1, th.tensor([0]), 0))
