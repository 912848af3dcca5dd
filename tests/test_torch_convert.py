"""streamattn.torch.convert (issue 17): a small random fla LinearAttentionForCausalLM — a Based model
(fla's TaylorFeatureMap on q and k, with and without the normalizer) and a Hedgehog one with grouped
KV heads — converted to run on the CPU:

(a) its logits equal those of the unconverted fla model evaluated on the CPU through fla's own
    reference paths (its ops replaced by ``naive_recurrent_linear_attn``, its RMSNorms by
    ``rms_norm_ref``; fla has no CPU SwiGLU, so its GatedMLP is evaluated as
    down(silu(gate(x)) * up(x)) here), float32, <= 1e-5 relative;
(b) a plain greedy ``model.generate`` of 64 tokens gives the tokens of greedy decoding by the
    unconverted model on those reference paths, recomputed on the whole prefix at every step, and
    the logits of every step within 1e-4 relative of the reference's;
(c) the cache holds one stream per layer whose size does not grow with the tokens generated.
"""

from __future__ import annotations

import copy
import warnings

import pytest

from fla_helpers import import_fla, rel
from streamattn import MultiHeadCausalStream

pytestmark = pytest.mark.extras

PROMPT, NEW = 12, 64


@pytest.fixture
def fla(th):
    return import_fla(
        transformers="transformers", linear_attn="fla.layers.linear_attn", models="fla.models",
        modules="fla.modules", feature_map="fla.modules.feature_map", layernorm="fla.modules.norm.layernorm",
        naive="fla.ops.linear_attn.naive",
    )  # fmt: skip


def tiny_model(th, fla, kind, **extra):
    th.manual_seed(0)
    m = fla["models"]
    if kind.startswith("based"):
        cfg = dict(feature_map="identity", norm_feature_map=kind == "based", num_kv_heads=4)
    else:
        cfg = dict(feature_map="hedgehog", norm_feature_map=False, num_kv_heads=2)
    config = m.LinearAttentionConfig(
        hidden_size=64, num_heads=4, num_hidden_layers=2, vocab_size=101, hidden_ratio=2, **cfg, **extra
    )
    model = m.LinearAttentionForCausalLM(config).eval()
    with th.no_grad():
        for layer in model.model.layers:
            attn = layer.attn
            if kind.startswith("based") and type(attn).__name__ == "LinearAttention":
                attn.feature_map_q = attn.feature_map_k = fla["feature_map"].TaylorFeatureMap(attn.head_k_dim)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)  # not fla's ones: a weight left behind would show
    model.generation_config.eos_token_id = None  # exactly NEW tokens
    model.generation_config.pad_token_id = 0
    return model


def fla_reference_logits(th, fla, monkeypatch, model, ids):
    """The unconverted model on fla's CPU reference paths (see the module docstring)."""
    naive = fla["naive"].naive_recurrent_linear_attn
    ref_norm = fla["layernorm"].rms_norm_ref

    def op(q, k, v, initial_state=None, output_final_state=False, normalize=False, cu_seqlens=None, **kw):
        return naive(q, k, v, initial_state=initial_state, output_final_state=output_final_state, normalize=normalize)

    def norm_forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
        return ref_norm(x, self.weight, self.bias, residual=residual, eps=self.eps, prenorm=prenorm)

    def mlp_forward(self, x, **kw):
        return self.down_proj(th.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))

    for name in ("chunk_linear_attn", "fused_chunk_linear_attn", "fused_recurrent_linear_attn"):
        monkeypatch.setattr(fla["linear_attn"], name, op)
    monkeypatch.setattr(fla["modules"].RMSNorm, "forward", norm_forward)
    monkeypatch.setattr(fla["modules"].GatedMLP, "forward", mlp_forward)
    with warnings.catch_warnings():
        # fla's Taylor feature map runs torch.utils.checkpoint (reentrant, without grad): torch warns
        warnings.filterwarnings("ignore", message="torch.utils.checkpoint")
        warnings.filterwarnings("ignore", message="None of the inputs have requires_grad")
        logits = model(ids, use_cache=False).logits
    monkeypatch.undo()
    return logits


@pytest.mark.parametrize("kind", ["based", "based_unnormalized", "hedgehog"])
def test_convert_linear_attention_model(th, fla, st, monkeypatch, kind):
    model = tiny_model(th, fla, kind)
    reference = copy.deepcopy(model)
    assert st.convert(model) is model
    kinds = {type(mod).__name__: type(mod).__module__ for mod in model.modules()}
    assert all(kinds[n].startswith("streamattn") for n in ("LinearAttention", "RMSNorm", "GatedMLP"))
    assert isinstance(model.model.layers[0].attn, st.LinearAttention)
    assert model.model.layers[0].attn.taylor == kind.startswith("based")

    g = th.Generator().manual_seed(1)
    ids = th.randint(3, 101, (1, PROMPT), generator=g)
    with th.no_grad():
        # (a) logits: the converted model against fla's reference math
        ref = fla_reference_logits(th, fla, monkeypatch, reference, ids)
        logits = model(ids, use_cache=False).logits
        assert logits.dtype == th.float32 and logits.shape == (1, PROMPT, 101)
        assert rel(logits, ref) <= 1e-5

        # (b) greedy generate (prefill + one token per step through the cache) against greedy decoding
        # by the unconverted model on fla's reference math, recomputed on the whole prefix at every
        # step; the logits of every generated step within 1e-4 relative of the reference's
        out = model.generate(ids, max_new_tokens=NEW, do_sample=False, return_dict_in_generate=True, output_logits=True)
        seq = out.sequences
        assert seq.shape == (1, PROMPT + NEW)
        expected = ids
        for step in range(NEW):
            ref_last = fla_reference_logits(th, fla, monkeypatch, reference, expected)[:, -1]
            assert rel(out.logits[step], ref_last) <= 1e-4
            expected = th.cat([expected, ref_last.argmax(-1, keepdim=True)], dim=1)
        assert th.equal(seq, expected)
        assert len(set(seq[0, PROMPT:].tolist())) > 1  # not a constant sequence

        # (c) the cache: one stream per layer, fed every token but the last, of a size that does not
        # depend on how many tokens were generated
        cache = out.past_key_values
        streams = [cache[i]["recurrent_state"] for i in range(len(model.model.layers))]
        assert all(isinstance(s, MultiHeadCausalStream) for s in streams)
        assert cache.get_seq_length(0) == PROMPT + NEW - 1
        short = model.generate(ids, max_new_tokens=2, do_sample=False, return_dict_in_generate=True)
        assert th.equal(short.sequences, seq[:, : PROMPT + 2])
        for i, s in enumerate(streams):
            assert short.past_key_values[i]["recurrent_state"].nbytes == s.nbytes


def test_convert_refuses_unsupported_modules(th, fla, st):
    # layer 1's attention is fla's GatedLinearAttention, which convert does not support
    model = tiny_model(th, fla, "hedgehog")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fla.layers import GatedLinearAttention
    model.model.layers[1].attn = GatedLinearAttention(hidden_size=64, num_heads=4, layer_idx=1)
    before = [type(mod) for mod in model.modules()]
    with pytest.raises(ValueError, match=r"'model\.layers\.1\.attn' is fla's GatedLinearAttention.*supported"):
        st.convert(model)
    assert [type(mod) for mod in model.modules()] == before  # nothing replaced
    # an MLP with an activation there is no CPU module for
    model = tiny_model(th, fla, "hedgehog")
    model.model.layers[1].mlp.hidden_act = "powlu"
    before = [type(mod) for mod in model.modules()]
    with pytest.raises(ValueError, match=r"'model\.layers\.1\.mlp'.*hidden_act='powlu'.*'swish'"):
        st.convert(model)
    assert [type(mod) for mod in model.modules()] == before
    with pytest.raises(ValueError, match="attnres_block_size"):
        st.convert(tiny_model(th, fla, "hedgehog", attnres_block_size=2))
