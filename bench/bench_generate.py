#!/usr/bin/env python3
"""Decode speed of a converted fla model against fla's reference path, by context length (issue 17).

A Based model (fla 0.6 `LinearAttentionForCausalLM` with fla's Taylor feature map on q and k:
hidden 256, 4 layers, 4 heads, feature dim 16, vocab 1000, random weights, float32) after a
prompt of 512 and of 8 192 tokens:

* streamattn: `streamattn.torch.convert(model)`, then a plain greedy `model.generate`; decode
  tokens/s = new tokens / (time of generate with 1 + N new tokens - time with 1), so the prefill
  is not counted; and the bytes of state in the generation cache.
* fla reference: the unconverted model on fla's CPU reference math (its linear-attention ops
  replaced by `naive_recurrent_linear_attn`, its RMSNorm by `rms_norm_ref`, SwiGLU written out:
  fla's own kernels need a GPU), greedy decoding by recomputing the whole prefix per new token
  (the reference path keeps no cache); tokens/s over R new tokens.

Both sides on `torch.set_num_threads(2)`; the converted layers' streams use the library default.

    python bench/bench_generate.py          # writes bench/out/bench_generate.md
    python bench/bench_generate.py --quick  # contexts 64 and 256, few tokens (smoke)
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "bench_generate.md"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--new", type=int, default=32, help="new tokens timed for streamattn (default 32)")
    p.add_argument("--ref-new", type=int, default=3, help="new tokens timed for the reference (default 3)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)

    import torch

    import streamattn
    import streamattn.torch as st

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fla: no GPU found
        import fla.layers.linear_attn as linear_attn
        import fla.modules as modules
        import fla.modules.norm.layernorm as layernorm
        import fla.ops.linear_attn.naive as naive
        from fla.models import LinearAttentionConfig, LinearAttentionForCausalLM
        from fla.modules.feature_map import TaylorFeatureMap

    torch.set_num_threads(2)
    contexts = [64, 256] if args.quick else [512, 8192]
    new, ref_new, repeats = (4, 1, 1) if args.quick else (args.new, args.ref_new, args.repeats)

    torch.manual_seed(0)
    config = LinearAttentionConfig(
        hidden_size=256, num_heads=4, num_hidden_layers=4, vocab_size=1000, expand_k=0.25, norm_feature_map=True
    )
    reference = LinearAttentionForCausalLM(config).eval()
    for block in reference.model.layers:
        block.attn.feature_map_q = block.attn.feature_map_k = TaylorFeatureMap(block.attn.head_k_dim)
    reference.generation_config.eos_token_id = None
    reference.generation_config.pad_token_id = 0
    model = st.convert(copy.deepcopy(reference))

    def op(q, k, v, initial_state=None, output_final_state=False, normalize=False, cu_seqlens=None, **kw):
        return naive.naive_recurrent_linear_attn(
            q, k, v, initial_state=initial_state, output_final_state=output_final_state, normalize=normalize
        )

    def norm_forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
        return layernorm.rms_norm_ref(x, self.weight, self.bias, residual=residual, eps=self.eps, prenorm=prenorm)

    def mlp_forward(self, x, **kw):
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))

    for name in ("chunk_linear_attn", "fused_chunk_linear_attn", "fused_recurrent_linear_attn"):
        setattr(linear_attn, name, op)
    modules.RMSNorm.forward = norm_forward
    modules.GatedMLP.forward = mlp_forward

    def generate(ids, n):
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=n, do_sample=False, return_dict_in_generate=True)
        return time.perf_counter() - t0, out

    rows = []
    for ctx in contexts:
        ids = torch.randint(3, 1000, (1, ctx), generator=torch.Generator().manual_seed(ctx))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fla's checkpointed feature map warns without grad
            ours = []
            for _ in range(repeats):
                t1, _ = generate(ids, 1)
                tn, out = generate(ids, 1 + new)
                ours.append(new / (tn - t1))
            state_bytes = sum(out.past_key_values[i]["recurrent_state"].nbytes for i in range(config.num_hidden_layers))
            seq = ids
            t0 = time.perf_counter()
            for _ in range(ref_new):
                nxt = reference(seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
                seq = torch.cat([seq, nxt], dim=1)
            ref_rate = ref_new / (time.perf_counter() - t0)
            same = torch.equal(out.sequences[0, ctx : ctx + ref_new], seq[0, ctx:])
        ours_rate = statistics.median(ours)
        kv_bytes = 2 * config.num_hidden_layers * (ctx + new) * config.hidden_size * 4
        rows.append(
            f"| {ctx:,} | {ours_rate:.1f} | {ref_rate:.2f} | {ours_rate / ref_rate:.0f}x | {state_bytes:,} | "
            f"{kv_bytes:,} | {'yes' if same else 'NO'} |"
        )
        print(rows[-1], flush=True)

    info = streamattn.build_info()
    lines = [
        "# bench/bench_generate.py",
        "",
        f"streamattn {streamattn.__version__}, ISA {info['isa_selected']}; torch {torch.__version__} on 2 threads; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; load average (1 min) {os.getloadavg()[0]:.2f}.",
        "",
        f"Based model: hidden 256, 4 layers, 4 heads, feature dim 16, float32. streamattn: median of {repeats} "
        f"greedy `generate` runs, {new} new tokens (prefill subtracted); fla reference: {ref_new} new tokens, "
        "each recomputing the prefix on fla's reference math. The state column is the converted model's "
        "whole generation cache (all layers); the last column compares with a float32 softmax KV cache of "
        "the same width (keys and values of every layer) for reference.",
        "",
        "| context | streamattn tokens/s | fla reference tokens/s | ratio | state bytes (4 layers) "
        "| float32 KV cache bytes | same tokens |",
        "|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    if not args.quick:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
