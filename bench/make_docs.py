#!/usr/bin/env python3
"""Assemble docs/benchmarks.md from the measured tables in bench/out/*.md.

    python bench/make_docs.py            # (re)write docs/benchmarks.md
    python bench/make_docs.py --check    # exit 1 if docs/benchmarks.md is not what this script writes

Every section below names one file of bench/out/ (written by the command its intro names) and,
optionally, the subsections of it to keep. The file is copied as it is, except that its headings
are moved under the section's heading and its relative image links point into bench/out/. Each
section's fixed text says which command produced the table and how to read it; each included
file carries its own context line (machine, ISA, versions, command), and the script refuses a
section whose text does not say which ISA ran.

The output depends on nothing but these files, so running the script twice gives the same bytes.
Re-running a benchmark rewrites its bench/out/<name>.md; then run this script (and update the
section's reading notes below if the figures they quote have changed).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TARGET = ROOT / "docs" / "benchmarks.md"
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
IMAGE = re.compile(r"(!\[[^\]]*\]\()(?!https?:|/|\.\./)([^)\s]+)(\))")
ISA_MENTION = re.compile(r"\bISA\b|avx|scalar path", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    title: str
    source: str  # file in bench/out
    intro: str  # the command and what was measured
    notes: str = ""  # how to read the table (figures quoted from it)
    keep: tuple[str, ...] = ()  # subsection title prefixes to keep (empty: the whole file)


SECTIONS: tuple[Section, ...] = (
    Section(
        "Hashing and sketch updates",
        "bench_hash.md",
        """Command: `python bench/bench_hash.py` (after `pip install ".[bench]"`; writes
`bench/out/bench_hash.md`). The C++ side also has a Google Benchmark binary
(`-DSTREAMATTN_BUILD_BENCHMARKS=ON`, then `build/cpp/bench/streamattn_bench`: `BM_KWiseHash*`,
`BM_*SketchUpdateRows`).""",
        """Reading it. 4-wise hashing runs 4.2–4.8× the scalar path on AVX2 and 4.9–6× on AVX-512
(F + DQ; IFMA is not used, see docs/design.md §3) over several runs, so issue 16's ≥ 3× on AVX2
holds: the key is split at bit 30 so that a Horner step needs 16 vector instructions instead of
21, and four vectors of keys stay in registers. The scalar path's rate moves most between runs
(the machine is shared), so the ratios spread. For CountSketch updates the ≥ 10× target over numpy holds for
vector streams (30×) and is missed for wide matrices (3–6×), where the hashes are amortized over
the columns and both sides are bound by the scatter into the table.""",
    ),
    Section(
        "Sparse recovery: measured success",
        "test_sparse_recovery.md",
        """Command: the C++ tests, `streamattn_tests "[stats]"` (n = 10^4, part of ctest) and
`streamattn_tests "[slow]"` (n = 10^6, its own CI step); the cases and scenarios are in
`tests/cpp/recovery/`.""",
        """Reading it. The one miss at n = 10^6 is the failure mode the rule for r is about: with
k = 64 heavies and r = 9 rows, a zero coordinate picked up heavy counters in more than half its
rows and displaced the smallest heavy. The decoders return the same support whenever both succeed
on exactly sparse input (exact and turnstile: 200/200, and 199/200 in that one cell), and on Zipf
inputs in 198–200 of 200; on noise-dominated inputs (k-sparse + noise, flat) they differ, since
the standard decoder may pick noise coordinates that the sublinear one never sees, and each meets
the bound on its own.""",
    ),
    Section(
        "Sparse recovery: size needed for 99 % success",
        "sparse_recovery_sizing.md",
        """Command: `sparse_recovery_sizing --table 200 10000`, a binary of the benchmark build
(`-DSTREAMATTN_BUILD_BENCHMARKS=ON`); the scenarios are those of section 2.""",
        """Reading it. About 5–6·k/ε buckets suffice where the rule takes 8·k/ε (≈ 1.3–1.6×
margin), and the measured constant in front of k/ε · log₂ n is 2.6–4.9 counters (plus the bit
counters, r_bit·L per bucket, for the sublinear decoder).""",
    ),
    Section(
        "Sparse recovery: decode time and update throughput",
        "sparse_recovery_bench.md",
        """Command: `python bench/sparse_recovery_bench.py --standard-limit 30` (prints both tables;
beyond the first standard decode over the limit, standard times would be extrapolated and marked
"~" — none was here).""",
        """Reading it. The sublinear decoder's time grows only with log n (rows and bits): 1.4× from
2^20 to 2^30 (target ≤ 3×), while the standard decoder is linear in n: 44 s at 2^30, measured. The
standard decoder hashes only the buckets of every coordinate; a coordinate's signs are hashed and
its median taken only when more than half of its counters exceed the current k-th magnitude. (An
earlier table, before that change and on a busier machine, had 125 s at 2^28.) A SparseRecovery
update hashes exactly like a CountSketch of the same r × b and adds to popcount(index) bit
counters in each bit row; with large b the bit counters (r_bit·b·L doubles, 5.4 MB at k = 64,
ε = 0.1) leave the cache, which is where the 0.33–0.6× comes from.""",
    ),
    Section(
        "Streams: memory vs n",
        "bench_stream.md",
        """Command: `python bench/bench_stream.py` (default sweep; `--only rss` for this section alone).
Each n is one process, `streamattn run --json --n N --d 8 --probes 8`; peak RSS is the process's
VmHWM.""",
        """Reading it. The peak is flat (1.7 % between 2^14 and 2^24 tokens, within the ≤ 5 %
target) and the state is 5040 bytes at every n; the ~17 MiB above the after-import mark are the
first blocks' buffers and the numpy generator, paid once. This section was measured before the
streams ran on the per-ISA GEMM kernels: its tokens/s are those of Eigen's products
(`streamattn run` now does 2^20 tokens at d = 16 in 1.3 s, 8e5 tokens/s); the memory figures, the
point of the section, do not depend on it.""",
        keep=("Memory vs n",),
    ),
    Section(
        "Streams: causal throughput",
        "bench_stream_throughput.md",
        """Command: `python bench/bench_stream.py --only throughput`, on the per-ISA GEMM kernels with
the default chunk of 32. Cells marked "-" were skipped because the predicted time exceeded
`--max-seconds` (12 s) or the state `--max-state-bytes`; the target cell n = 65 536, d = 32 is
always measured.""",
        """Reading it. The target (≥ 10× torch SDPA at n = 65 536, d = 32, g = 2) is met in this run:
21.7× (11.3× on Eigen's products with chunk 64; 5.9× with chunk 256 on a busier machine; timings
on these shared cores move by 2× between runs). streamattn runs on one thread against torch on
two; its cost per token is flat in n while SDPA's grows linearly, so the ratio keeps rising with
n. g = 4 is not a throughput option at these widths: d = 32 has t = C(36, 4) = 58 905 features
and runs at about 1 700 tokens/s, and d = 64 has t = 814 385 (a 417 MB state, skipped).""",
    ),
    Section(
        "Streams: single-query latency of a keys-first stream",
        "bench_stream_kv.md",
        """Command: `python bench/bench_stream.py --only kv` (run again after adding a warm-up; the
default run's table, without warm-up, showed the same flat 1.3–3 µs).""",
        """Reading it. The exact caches grow linearly in time and memory (1 GiB of float32 keys and
values at 2^24); numpy's 24 ms at 2^16–2^20 is its threaded BLAS GEMV waking up on a busy
machine. KVStream's 3 240-byte state answers in ~1.3 µs at every n, most of it the Python
call.""",
    ),
    Section(
        "Streams: exact vs sketched keys-first state",
        "bench_stream.md",
        """Command: `python bench/bench_stream.py` (default sweep; `--only sketched` for this section
alone).""",
        """Reading it. The sketched layout is never better than the exact state here: its bytes are
`s·(t + dv) + t` floats against `t·dv + t`, its error falls like 1/√s (0.30 → 0.019 from s = 16
to 4096) while the exact state's error is the Taylor error alone (2.6e-6), and every key costs s
hash evaluations. It exists so that the paper's construction can be measured, not as a
recommendation.""",
        keep=("Exact vs sketched",),
    ),
    Section(
        "Streams: error vs degree and β",
        "bench_stream_error.md",
        """Command: `python bench/bench_stream.py --only error` (deterministic: the same table on
every machine up to the last digit).""",
        """Reading it. Where the bound is finite it holds with one to two orders of magnitude to
spare. It is vacuous from β ≈ 1.2 at g = 2 and for every degree ≤ 8 at β ≥ 4, where the true
error of g = 2 reaches 0.5–0.8 (outputs are in [−1, 1]): there the method is not an approximation
of softmax attention in any useful sense, and the certificate is what shows it. The certificate
is a 16-row sample: it equals the true error on its rows, and the maximum over all 2048 rows is
4–20× larger.""",
    ),
    Section(
        "Models: Based and power attention",
        "bench_models.md",
        """Command: `python bench/bench_models.py` (needs torch and flash-linear-attention's
reference, `pip install torch==2.13.0 ".[reference]"`; writes `bench/out/bench_models.md`). The
prefill counts useful flops per token (4·t·dv for the state's two products, chunk·(d + dv) for
the causal half of the intra-chunk scores and their product with V, per head) against the rate
of streamattn's own GEMM kernel on the state product measured in the same run
([design.md §5](design.md#5-benchmarks-methodology)).""",
        """Reading it. At n = 65 536 the stream runs 1.95× the best PyTorch chunked form for Based
and 2.93× for power p = 2 at d = 64 in this run, and 4.35× / 3.58× at n = 32 768 in the same run:
the host was slow in parts of it (the stream's Based rate at 2^16 was 189 k tokens/s here, 258 k
in the run just before it and 429 k in the run of the stop before, the sides being timed one
after the other, not interleaved). The run just before (same code, same evening) gave 2.86× /
2.96× at 2^16; three runs of the previous stop 3.25× / 4.80×, 2.99× / 3.68× and 2.75× / 2.65×.
Targets: ≥ 2× met in every cell but this run's Based 2^16; ≥ 4× met only in single cells and
runs. Across n the ratios move between 1.9× and 5.3× from run to run (both sides take 3–10 ms at
small n, and each side's rate moves by a third or more between runs). Since the previous stop the
multi-head input check (one pass over Q, K, V before the heads run) is split over the threads:
alternating processes (4 heads, n = 65 536, medians of 5) gave Based 319–352 k tokens/s against
284–327 k before.
float32 inputs take the float32 compute path (float32 products added into a float64 state,
design.md §2.5) on the library's own GEMM micro-kernels; the last column compares the useful
flops with the float64 kernel's rate on the state product, so above 100 % is possible: 30–76 %
for Based in this run (the rest is feature maps, the intra-chunk kernel and normalization around
GEMMs of 153 × 64), 70–93 % for power p = 2 (t = 2080). The symmetric features (153 for Based vs the 273
of the full outer product) do the rest. Against flash-linear-attention's CPU path
(`naive_parallel_based`, O(n²) memory; beyond 2^13 it does not fit) the stream is 19× faster at
2^10 and 194× at 2^13. Decode is flat: a step does the same work after 2^20 tokens as after 2^10
(79,560 bytes of state per head), where a KV-cache softmax step reads 335 MB. The two step rows
differ only by the machine: with torch loaded in the process a step's time moves between about 7
and 12 µs from one measurement to the next at either n (this run: 7.1 µs at 2^10, 7.8 µs at 2^20;
the run before 10.4 / 7.3 µs), with older builds as well; in a process
without torch it took 6.6–6.9 µs at both n.""",
    ),
    Section(
        "Numerics at scale",
        "bench_numerics.md",
        """Command: `python bench/bench_numerics.py` (its time is dominated by the longdouble
reference; `--n 1000000 --json` is a quick version). `tests/test_numerics.py` runs a
2^20-token version in the test suite.""",
        """Reading it. Both states stay within 1e-9 of the reference with a wide margin, and the
constant feature counts the tokens exactly (s[0] − n = 0). On the float32 compute path the
state error is 3.9e-10 at 10^8 tokens, within the same 1e-9.""",
    ),
    Section(
        "float32 compute path against PyTorch",
        "bench_float32.md",
        """Command: `python bench/bench_float32.py` (then `--isa avx2 --append` for the AVX2 table;
needs torch). n = 65 536 float32 tokens, one thread for everything, the variants interleaved.""",
        """Reading it. "state products" is 4·t·dv flops per token over the whole stream time (a
lower bound on the products' own rate); "torch f32 GEMM" is a single-thread float32 GEMM of the
state product's shape measured in the same run. See docs/design.md §2.5 for the float32 path.
The "2 threads" table puts torch at `torch.set_num_threads(2)` against `CausalStream(threads=2)`
in the same run; its load column and torch's own 2/1 scaling say whether the second core was
free (here torch scaled 0.76× / 1.87× at d = 32 / 64 on avx512 and 0.81× / 1.50× on avx2). In the
run above (after the float32 rows were written in place, docs/design.md "Threads inside one
stream") the stream is 2.59× / 2.90× the best torch form on one thread at d = 32 / 64 and
4.22× / 2.71× on two on the avx512 path; on avx2 2.77× / 2.79× on one thread and 2.90× / 2.22× on
two. The run before (the feature-block split) gave 3.69× / 2.94× and 3.10× / 3.00× (avx512),
2.63× / 2.55× and 2.65× / 2.26× (avx2); the one before that 2.96× / 3.07× and 2.45× / 3.09×
(avx512): both sides move with the machine (torch's own d = 32 rate on one thread went from
145.6 k to 191.4 k tokens/s between the last two runs). The stream's own 2/1 scaling at its best
chunk was 1.75× (avx512) and 1.20× (avx2) at d = 64, where the state (t × dv = 137 280 entries)
is split by feature blocks, and 1.24× / 0.85× at d = 32 (35 904 entries: split by rows, both
threads read all of M; a d = 32 chunk's products are 2–4 times smaller and the hand-offs weigh
more). The best d = 64 chunk on two threads was 128 in this run (64 in the one before); float32
chunks are split over threads only
from 2^19 multiply-adds per product.""",
    ),
    Section(
        "Cost of the torch path",
        "bench_torch.md",
        """Command: `python bench/bench_torch.py` (needs torch). Based prefill from float32 torch tensors:
the bare stream on arrays already in its (B·H, T, D) heads layout, the hand-written glue, and
`streamattn.torch.parallel_based` in fla's (B, T, H, D) layout and with `head_first=True`, run in
turn on the same tensors, in a new random order every round (ISA in the table's context line).""",
        """Reading it. `MultiHeadCausalStream.update` takes the 4-D layouts itself (C++
`update_layout`), tile by tile (256 rows) over all heads, so that the heads' rows of one tile are
read close together in time. Rows whose features are adjacent, as in fla's layout, are read in place
(the stream copies each chunk's rows into its own buffers anyway); only arrays strided along their
features or of the other dtype are packed into per-thread tiles first. Seven runs on the shared
2-core machine gave (B, T, H, D) 0.98–1.06× the bare stream with 2 threads (median 1.02×) and
`head_first` 0.94–1.06× (median 1.00×). The same command with `--fixed-order` (every round bare,
hand glue, fla's layout, `head_first`) gave 1.01–1.13× (median 1.07×) for fla's layout: in that
order it always runs right after the hand glue, which writes ~75 MB of copies and rows just
before. Earlier figures (1.08–1.31×, median 1.19×, each head's rows then packed into a tile) were
taken in that fixed order, so most of that gap was the order. Side by side in one process, reading
in place instead of packing saved 0–4 % of the time (1.01× the bare stream against 1.02–1.05×
when each path ran right after the hand glue).""",
    ),
    Section(
        "Generation: a converted fla model against fla's reference path",
        "bench_generate.md",
        """Command: `python bench/bench_generate.py` (needs torch and the reference extra). A Based
`LinearAttentionForCausalLM` (hidden 256, 4 layers, 4 heads, feature dim 16) converted by
`streamattn.torch.convert` and decoded with a plain greedy `generate`, against the same model on
fla's CPU reference math (fla's own kernels need a GPU), after prompts of 512 and 8 192 tokens.""",
        """Reading it. The converted model keeps 1.27 MB of state for its 4 layers at any context
(318 KB per layer), where a float32 KV cache of the same width needs 4.5 MB at 512 tokens and
67 MB at 8 192. fla's reference path keeps no cache: each new token recomputes the prefix, so it
slows with the context (3.7 tokens/s at 512, 0.26 at 8 192), while streamattn decodes at 191 and
144 tokens/s. Its own step is flat in the context (bench_models: 7.0 µs per head after 2^20
tokens); the drop from 512 to 8 192 is the generation loop's per-token work on the growing
sequence (transformers' `generate` extends the ids and attention mask at every step) and the
noise of subtracting two timed runs that include the prefill. The greedy tokens of both agree.""",
    ),
    Section(
        "Threads inside one stream",
        "bench_threads.md",
        """Command: `python bench/bench_threads.py --repeats 9`. One `CausalStream` at n = 65 536, d = 64, g = 2,
`threads=1` against `threads=2`, float32 and float64 inputs, interleaved runs; rows compared bit
for bit.""",
        """Reading it. Each chunk is two hand-offs to the pool. absorb splits the state's rows: each
thread makes its own feature columns of the chunk's keys and adds their product into its rows of
the state. outputs splits the chunk's rows, except for a large state (t × dv ≥ 2^16, so here):
then the inter-chunk product is split by four fixed feature blocks of the state, each thread
taking the blocks whose rows it updates in absorb, and the partial products are added in block
order — the state never crosses cores, and the bits do not depend on the thread count
(docs/design.md, "Threads inside one stream"). The ratio needs a second core that is free: the
load average printed with the table says how busy the machine was (2 logical CPUs shared with
other work). The ceiling column is what the second core adds to this very work with nothing
shared: two `threads=1` streams side by side in the same rounds, 2 × t(one) / t(two). This run:
the default chunk (64 at t = 2 145) scaled 1.43× in float32 and 1.60× in float64 against
ceilings of 1.93× and 1.91× (74 % and 84 % of them), chunk 128 1.52× / 1.67×, `prefill` (not
chunked) 1.63× / 1.82×. Runs before this one (without the ceiling column): 1.45× / 1.61× at the
default chunk, 1.66× / 1.78× in a quiet minute, 1.33× / 1.46× in a slow one; before the feature
blocks the default chunk scaled 1.19× / 1.42× (and 1.22× / 1.29× before that). The 1.7× target
at the default chunk is reached by float64 in some runs, by float32 in none so far. The C++ benchmark `BM_CausalChunk`
(`streamattn_bench --benchmark_filter=CausalChunk --benchmark_repetitions=5`, built with
`-DSTREAMATTN_BUILD_BENCHMARKS=ON`) times a chunk's two hand-offs apart on 1 and 2 threads. On
avx512 (medians of 5, d = 64, chunk 64), float32: outputs 331 → 216 µs (1.53×), absorb 329 → 214
µs (1.54×), the chunk 660 → 430 µs; float64: outputs 484 → 332 µs (1.46×), absorb 440 → 276 µs
(1.59×), the chunk 924 → 614 µs. Before the feature blocks the float32 absorb gained nothing from
the second thread (422 → 438 µs); since each thread reads only its own rows of the state, it gains
as much as outputs (the likely cause: the other core's half of M's float32 copy, read by every
thread for its outputs, pushed its own rows out of its cache).""",
    ),
    Section(
        "Chunk size by shape",
        "bench_chunk.md",
        """Command: `python bench/bench_chunk.py` (then `--isa avx2 --append` for the AVX2 table).
`CausalStream.update` over n = 32 768 tokens at chunks 16 to 256, for feature counts t = 45 to
2 145 (Based's head is d = 16, dv = 64), float32 and float64 inputs, one and two threads; every
chunk of a row in turn, round by round.""",
        """Reading it. The default chunk is chosen from t alone (32 below 256 features, 64 from 256 on;
docs/design.md, "Chunk size"), so that rows and state stay the same for any thread count and
ISA. Short chunks win for small feature maps (the intra-chunk work grows with the chunk); with
thousands of features the state's traffic per chunk dominates and 64 wins on one thread, 64 to
128 on two. Rows within a few percent of each other swap places from run to run on this shared
machine; the avx2 float64 row at t = 561 (chunk 16 best by 18 %) is the largest gap to the
chosen chunk in these runs.""",
    ),
    Section(
        "Dask: causal attention and sketches over worker processes",
        "bench_dask.md",
        """Command: `python bench/bench_dask.py` (needs the `dask` extra; writes
`bench/out/bench_dask.md`; `--quick` for n = 2^18). One sequence of n = 2^22 tokens in 16 row
blocks through `streamattn.dask.causal_attention` on a process-based `LocalCluster` of 1 and 2
workers, against one in-process `CausalStream` in the same run; a CountSketch through
`streamattn.dask.sketch` against in-process `update_rows`. Cost model and limits:
[dask.md](dask.md#cost-model-and-where-it-stops-scaling).""",
        """Reading it. The 2 cores of this machine were shared with other jobs during the run (load
average 4.7–7.2), so no variant had a core to itself and the 2-process runs could not show
scaling: 0.48–0.49× the in-process stream, about what one process reaches (0.43–0.48×). What the
table does show is the work of the parallel algorithm, whatever the load: the task time of one
worker (9.2 s against 4.35–4.93 s for the stream) is the rows (the stream's own work), every
block's segment (its keys absorbed a second time: 44 % of a block's rows here) and the
generation and holding of the blocks in the worker; the scan is 0.03 % of the work (15
compositions of 85 µs each). On P free cores the model of [dask.md](dask.md#cost-model-and-where-it-stops-scaling)
therefore caps causal attention at about rows/(rows + segment) ≈ 0.7·P times one stream. The
sketch (0.52 s for 2^22 rows in-process) is too cheap per row for Dask's per-task latency and
the process boundary at this size: 0.40× on one process, 0.56× on two.""",
    ),
)

PREAMBLE = """# Benchmarks

*Generated by `python bench/make_docs.py` from the files in `bench/out/`; do not edit by hand
(`python bench/make_docs.py --check` fails when this file is stale).*

Every table below is the output of one command on one machine, copied unchanged with its context
line (machine, ISA, versions). Most were measured on 2 cores shared with other jobs: read the
ratios, which come from one run with the variants side by side, not the absolute times. How the
benchmarks are measured, and what the GEMM-peak fractions mean, is in
[design.md §5](design.md#5-benchmarks-methodology).
"""


def split_fences(lines: list[str]) -> list[bool]:
    """For each line: is it inside (or a fence of) a fenced code block?"""
    inside, flags = False, []
    for line in lines:
        fence = line.lstrip().startswith("```")
        flags.append(inside or fence)
        if fence:
            inside = not inside
    return flags


def select(lines: list[str], keep: tuple[str, ...]) -> list[str]:
    """The file's preamble plus the subsections (one level below its top heading) whose title
    starts with one of `keep`."""
    if not keep:
        return lines
    code = split_fences(lines)
    levels = [len(m.group(1)) for i, line in enumerate(lines) if not code[i] and (m := HEADING.match(line))]
    if len(levels) < 2:
        raise SystemExit("cannot select subsections of a file without subsections")
    sub = sorted(set(levels))[1]
    out, take, found = [], True, set()
    for i, line in enumerate(lines):
        m = None if code[i] else HEADING.match(line)
        if m and len(m.group(1)) <= sub and len(m.group(1)) > levels[0]:
            title = m.group(2).strip()
            hit = next((k for k in keep if title.startswith(k)), None)
            take = hit is not None
            if hit:
                found.add(hit)
        if take:
            out.append(line)
    missing = [k for k in keep if k not in found]
    if missing:
        raise SystemExit(f"no subsection starting with {missing} found")
    return out


def render_source(section: Section, level: int) -> str:
    path = OUT / section.source
    if not path.is_file():
        raise SystemExit(
            f"bench/out/{section.source} is missing (section {section.title!r}); "
            "run the command its section names, or restore the file"
        )
    lines = select(path.read_text(encoding="utf-8").splitlines(), section.keep)
    code = split_fences(lines)
    heads = [len(m.group(1)) for i, line in enumerate(lines) if not code[i] and (m := HEADING.match(line))]
    shift = level - min(heads) if heads else 0
    out: list[str] = []
    for i, line in enumerate(lines):
        line = line.rstrip()
        if not code[i]:
            m = HEADING.match(line)
            if m:
                line = "#" * min(6, len(m.group(1)) + shift) + " " + m.group(2).strip()
            line = IMAGE.sub(lambda g: f"{g.group(1)}../bench/out/{g.group(2)}{g.group(3)}", line)
        if line == "" and (not out or out[-1] == ""):
            continue  # one blank line at most, none at the start
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def slug(text: str) -> str:
    s = re.sub(r"[^\w\- ]", "", text.lower()).strip()
    return re.sub(r" ", "-", s)


def render() -> str:
    parts = [PREAMBLE.rstrip(), ""]
    toc = [f"{i}. [{s.title}](#{slug(f'{i} {s.title}')})" for i, s in enumerate(SECTIONS, 1)]
    parts += ["\n".join(toc), ""]
    for i, s in enumerate(SECTIONS, 1):
        body = render_source(s, level=3)
        text = f"{s.intro}\n{body}\n{s.notes}"
        if not ISA_MENTION.search(text):
            raise SystemExit(f"section {s.title!r} does not say which ISA ran (bench/out/{s.source})")
        parts += [f"## {i} {s.title}", "", s.intro.strip(), "", body, ""]
        if s.notes:
            parts += [s.notes.strip(), ""]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/benchmarks.md is stale; write nothing")
    a = ap.parse_args(argv)
    text = render()
    rel = TARGET.relative_to(ROOT)
    if a.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else ""
        if current == text:
            print(f"{rel} is up to date")
            return 0
        diff = difflib.unified_diff(
            current.splitlines(), text.splitlines(), f"{rel} (on disk)", f"{rel} (generated)", lineterm="", n=1
        )
        print("\n".join(list(diff)[:60]))
        print(f"{rel} is stale: run `python bench/make_docs.py`", file=sys.stderr)
        return 1
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    if TARGET.is_file() and TARGET.read_text(encoding="utf-8") == text:
        print(f"{rel} unchanged")
    else:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
