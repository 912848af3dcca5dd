"""streamattn.torch's RetNet pieces (MultiScaleRetention, RotaryEmbedding, FusedRMSNormGated, and
``convert`` of fla's RetNetForCausalLM), against fla 0.6's own modules evaluated on the CPU through
fla's reference math: its retention ops replaced by ``naive_retention``, its rotary kernel by
``rotary_embedding_ref`` on fla's own cos/sin tables (at fla's position offsets), its gated norm by
``rms_norm_ref`` (layernorm_gated, z = the gate), its RMSNorm by ``rms_norm_ref``; fla has no CPU
SwiGLU, so its GatedMLP is evaluated as down(silu(gate(x)) * up(x)).

Layer: float32, <= 1e-5 relative, in one call and as prefill + token-by-token decode (odd T), with
the fused swish gate, the unfused RMSNorm x gate, no gate, grouped KV heads, a feature map and the
interleaved rotary convention. Model: a tiny random RetNetForCausalLM converted; its logits within
1e-4 relative of the reference, greedy ``generate`` (40 new tokens through fla's cache) equal to
greedy decoding by recomputing the whole prefix with the reference at every step, the same state
size per layer after 2 and after 40 new tokens. Bad inputs and unsupported options: ValueErrors
naming the option, and nothing changed.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import pytest

from fla_helpers import import_fla, rel
from streamattn import MultiHeadCausalStream

pytestmark = pytest.mark.extras

PROMPT, NEW = 9, 40


@pytest.fixture
def fla(th):
    return import_fla(
        transformers="transformers", msr="fla.layers.multiscale_retention", models="fla.models",
        modules="fla.modules", layernorm="fla.modules.norm.layernorm",
        layernorm_gated="fla.modules.norm.layernorm_gated", rotary="fla.modules.rotary.ops",
        naive="fla.ops.retention.naive",
    )  # fmt: skip


@contextlib.contextmanager
def fla_reference(th, fla):
    """fla's modules on its CPU reference math while the context lasts (see the module docstring)."""
    naive = fla["naive"].naive_retention
    ref_rotary = fla["rotary"].rotary_embedding_ref
    gated_ref, norm_ref = fla["layernorm_gated"].rms_norm_ref, fla["layernorm"].rms_norm_ref
    calls = {"retention": 0, "rotary_offsets": []}

    def retention(q, k, v, initial_state=None, output_final_state=False, cu_seqlens=None, **kw):
        assert initial_state is None and cu_seqlens is None  # the reference recomputes whole sequences
        calls["retention"] += 1
        o = naive(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)
        return o, None

    def rotary(x, cos, sin, interleaved=False, inplace=False, seqlen_offsets=0, cu_seqlens=None, **kw):
        # fla's kernel reads the rows offset .. offset + T - 1 of its cos/sin tables
        off, T = int(seqlen_offsets), x.shape[1]
        calls["rotary_offsets"].append(off)
        return ref_rotary(x, cos[off : off + T], sin[off : off + T], interleaved=interleaved)

    def gated_norm(self, x, g, residual=None, prenorm=False, residual_in_fp32=False):
        assert self.activation == "swish" and residual is None
        return gated_ref(x, self.weight, self.bias, z=g, eps=self.eps)

    def norm(self, x, residual=None, prenorm=False, residual_in_fp32=False):
        return norm_ref(x, self.weight, self.bias, residual=residual, eps=self.eps, prenorm=prenorm)

    def mlp(self, x, **kw):
        return self.down_proj(th.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))

    patches = [(fla["msr"], n, retention) for n in ("chunk_retention", "fused_chunk_retention",
               "parallel_retention", "fused_recurrent_retention")]  # fmt: skip
    patches += [
        (fla["rotary"], "rotary_embedding", rotary),
        (fla["modules"].FusedRMSNormGated, "forward", gated_norm),
        (fla["modules"].RMSNorm, "forward", norm),
        (fla["modules"].GatedMLP, "forward", mlp),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, fn in patches:
        setattr(obj, name, fn)
    try:
        yield calls
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


def decode(layer, x, prefill, cache):
    """prefill tokens in one call, then one token per call, through one cache."""
    outs = []
    for a, b in [(0, prefill)] + [(i, i + 1) for i in range(prefill, x.shape[1])]:
        o, none, returned = layer(x[:, a:b], past_key_values=cache, use_cache=True)
        assert none is None and returned is cache
        outs.append(o)
    return outs


LAYER_CASES = {
    "fused swish gate": dict(num_heads=4),
    "grouped kv, relu feature map, interleaved rotary": dict(num_heads=4, num_kv_heads=2, feature_map="relu"),
    "unfused norm x silu gate, expand_k 0.5": dict(num_heads=2, fuse_norm=False, expand_k=0.5),
    "no output gate, expand_v 1": dict(num_heads=4, use_output_gate=False, expand_v=1.0),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_multiscale_retention_from_fla(th, fla, st, case):
    th.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_layer = fla["msr"].MultiScaleRetention(hidden_size=48, layer_idx=0, **LAYER_CASES[case]).eval()
    if "interleaved" in case:
        ref_layer.rotary.interleaved = True
    with th.no_grad():
        for name, p in ref_layer.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)  # not fla's ones: a weight left behind would show
        x = th.randn(2, 37, 48)
        with fla_reference(th, fla) as calls:
            ref = ref_layer(x)[0]
        assert calls["retention"] == 1 and calls["rotary_offsets"] == [0, 0]

        ours = st.MultiScaleRetention.from_fla(ref_layer)
        assert ours.layer_idx == 0 and ours.rotary.interleaved == ("interleaved" in case)
        o, _, _ = ours(x)
        assert o.dtype == th.float32 and o.shape == x.shape
        assert rel(o, ref) <= 1e-5
        # prefill 20, then one token per call: positions continue at 20, 21, ...
        cache = st.StreamCache()
        outs = decode(ours, x, 20, cache)
        assert rel(th.cat(outs, dim=1), ref) <= 1e-5
        stream = cache[0]["recurrent_state"]
        assert isinstance(stream, MultiHeadCausalStream) and stream.tokens_seen == 37
        nbytes = stream.nbytes
        ours(x[:, :1], past_key_values=cache, use_cache=True)
        assert cache[0]["recurrent_state"].nbytes == nbytes  # constant memory per layer

        # the same layer built from fla's constructor arguments loads fla's weights by name
        built = st.MultiScaleRetention(hidden_size=48, layer_idx=0, **LAYER_CASES[case])
        built.load_state_dict(ref_layer.state_dict())
        built.rotary.interleaved = "interleaved" in case
        assert rel(built(x)[0], ref) <= 1e-5


def test_rotary_and_gated_norm_match_fla(th, fla, st):
    th.manual_seed(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fla_rot = fla["modules"].RotaryEmbedding(dim=12, interleaved=True)
        fla_norm = fla["modules"].FusedRMSNormGated(24, eps=1e-6)
    q, k = th.randn(2, 7, 3, 16), th.randn(2, 7, 1, 16)  # rotary on 12 of 16 channels, GQA k
    with th.no_grad(), fla_reference(th, fla):
        fla_norm.weight.uniform_(0.5, 1.5)
        ref_q, ref_k = fla_rot(q, k, seqlen_offset=5)
        x, g = th.randn(2, 7, 24), th.randn(2, 7, 24)
        ref_y = fla_norm(x, g)
    rot = st.RotaryEmbedding.from_fla(fla_rot)
    oq, ok = rot(q, k, seqlen_offset=5)
    assert rel(oq, ref_q) <= 1e-6 and rel(ok, ref_k) <= 1e-6
    assert th.equal(oq[..., 12:], q[..., 12:])  # channels past the rotary dim pass through
    oq2, _ = rot(q, k, seqlen_offset=th.tensor([5, 5]))
    assert th.equal(oq2, oq)
    norm = st.FusedRMSNormGated.from_fla(fla_norm)
    assert rel(norm(x, g), ref_y) <= 1e-6
    y, res = norm(x, g, residual=x, prenorm=True)
    assert th.allclose(res, 2 * x) and rel(y, norm(2 * x, g)) <= 1e-6
    with pytest.raises(ValueError, match="scale_base"):
        st.RotaryEmbedding(16, scale_base=512)
    with pytest.raises(ValueError, match="offsets must all be equal"):
        rot(q, k, seqlen_offset=th.tensor([5, 6]))
    with pytest.raises(ValueError, match="cu_seqlens"):
        rot(q, k, cu_seqlens=th.tensor([0, 7]))
    with pytest.raises(ValueError, match="activation"):
        st.FusedRMSNormGated(24, activation="relu")


def test_multiscale_retention_refuses(th, fla, st):
    with pytest.raises(ValueError, match="use_short_conv"):
        st.MultiScaleRetention(hidden_size=32, num_heads=4, use_short_conv=True)
    with pytest.raises(ValueError, match="mode"):
        st.MultiScaleRetention(hidden_size=32, num_heads=4, mode="fast")
    with pytest.raises(ValueError, match="num_kv_heads"):
        st.MultiScaleRetention(hidden_size=32, num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="expand_k"):
        st.MultiScaleRetention(hidden_size=30, num_heads=2, expand_k=0.15)
    with pytest.raises(ValueError, match="feature_map='no_such_act'"):
        st.MultiScaleRetention(hidden_size=32, num_heads=4, feature_map="no_such_act")
    with pytest.raises(ValueError, match="even"):
        st.MultiScaleRetention(hidden_size=36, num_heads=4)  # head_k_dim 9
    layer = st.MultiScaleRetention(hidden_size=32, num_heads=4)
    x = th.randn(1, 5, 32)
    with th.no_grad():
        with pytest.raises(ValueError, match="padding"):
            layer(x, attention_mask=th.tensor([[0, 1, 1, 1, 1]]))
        with pytest.raises(ValueError, match="cu_seqlens"):
            layer(x, cu_seqlens=th.tensor([0, 5]))
        with pytest.raises(ValueError, match="hidden_size"):
            layer(th.randn(5, 32))
        with pytest.raises(ValueError, match="layer_idx"):
            layer(x, past_key_values=st.StreamCache(), use_cache=True)
    # an fla layer with a short convolution or XPos rotary is refused by from_fla
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = fla["msr"].MultiScaleRetention(hidden_size=32, num_heads=4, use_short_conv=True)
        xpos = fla["msr"].MultiScaleRetention(hidden_size=32, num_heads=4)
    xpos.rotary.scale_base = 512.0
    with pytest.raises(ValueError, match="use_short_conv"):
        st.MultiScaleRetention.from_fla(conv)
    with pytest.raises(ValueError, match="scale_base"):
        st.MultiScaleRetention.from_fla(xpos)


def tiny_retnet(th, fla, **extra):
    th.manual_seed(0)
    config = fla["models"].RetNetConfig(
        hidden_size=64, num_heads=4, num_hidden_layers=2, vocab_size=101, hidden_ratio=2, **extra
    )
    model = fla["models"].RetNetForCausalLM(config).eval()
    with th.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    model.generation_config.eos_token_id = None  # exactly NEW tokens
    model.generation_config.pad_token_id = 0
    return model


@pytest.mark.parametrize("extra", [{}, {"num_kv_heads": 2, "fuse_norm": False}], ids=["fused", "gqa-unfused"])
def test_convert_retnet(th, fla, st, extra):
    model = tiny_retnet(th, fla, **extra)
    reference = copy.deepcopy(model)
    assert st.convert(model) is model
    assert not any(type(mod).__module__.startswith("fla") for mod in model.modules() if not _container(mod))
    assert isinstance(model.model.layers[1].attn, st.MultiScaleRetention)

    g = th.Generator().manual_seed(1)
    ids = th.randint(3, 101, (1, PROMPT), generator=g)
    with th.no_grad():
        out = model.generate(ids, max_new_tokens=NEW, do_sample=False, return_dict_in_generate=True)
        seq = out.sequences
        assert seq.shape == (1, PROMPT + NEW)
        assert len(set(seq[0, PROMPT:].tolist())) > 1  # not a constant sequence

        # reference evaluation: fla's model recomputed on the whole prefix at every step; the
        # converted model's logits on the same prefix (no cache) within 1e-4
        expected, worst = ids, 0.0
        with fla_reference(th, fla):
            for _ in range(NEW):
                ref = reference(expected, use_cache=False).logits
                worst = max(worst, rel(model(expected, use_cache=False).logits, ref))
                expected = th.cat([expected, ref[:, -1].argmax(-1, keepdim=True)], dim=1)
        assert worst <= 1e-4
        assert th.equal(seq, expected)

        # the cache: one stream per layer, fed every token but the last, of a size independent of
        # the number of tokens generated
        cache = out.past_key_values
        streams = [cache[i]["recurrent_state"] for i in range(2)]
        assert all(isinstance(s, MultiHeadCausalStream) and s.tokens_seen == PROMPT + NEW - 1 for s in streams)
        short = model.generate(ids, max_new_tokens=2, do_sample=False, return_dict_in_generate=True)
        assert th.equal(short.sequences, seq[:, : PROMPT + 2])
        for i, s in enumerate(streams):
            assert short.past_key_values[i]["recurrent_state"].nbytes == s.nbytes


def _container(mod) -> bool:
    return type(mod).__name__ in ("RetNetForCausalLM", "RetNetModel", "RetNetBlock")


def test_convert_retnet_refuses(th, fla, st):
    # a layer fla has no CPU equivalent of here (fla's softmax Attention of hybrid configs needs
    # flash-attn even to be built; GatedLinearAttention stands for it)
    model = tiny_retnet(th, fla)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fla.layers import GatedLinearAttention
    model.model.layers[1].attn = GatedLinearAttention(hidden_size=64, num_heads=4, layer_idx=1)
    before = [type(mod) for mod in model.modules()]
    with pytest.raises(ValueError, match=r"'model\.layers\.1\.attn' is fla's GatedLinearAttention"):
        st.convert(model)
    assert [type(mod) for mod in model.modules()] == before  # nothing replaced
    # an option the layer does not support, reported with the module's path
    model = tiny_retnet(th, fla)
    model.model.layers[1].attn.rotary.scale_base = 512.0
    before = [type(mod) for mod in model.modules()]
    with pytest.raises(ValueError, match=r"'model\.layers\.1\.attn'.*scale_base"):
        st.convert(model)
    assert [type(mod) for mod in model.modules()] == before
