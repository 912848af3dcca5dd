// A toy decode loop with a constant-memory attention state: streamattn::KVStream replaces the
// KV cache. The "model" is a set of fixed random projections; each step appends the new token's
// key/value to the state and answers its query in O(t * dv), whatever the context length.
// Half-way the state is checkpointed to bytes and the loop resumes from them, bit for bit.
#include <cstdio>
#include <random>

#include "streamattn/streamattn.hpp"

int main() {
  using namespace streamattn;
  const Index d_model = 32, d = 8, dv = 16, prompt = 512, steps = 64;
  std::mt19937_64 gen(2026);
  std::normal_distribution<double> nd(0.0, 1.0);
  auto random = [&](Index r, Index c, double s) {
    RowMatrix<double> m(r, c);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = s * nd(gen);
    return m;
  };
  const RowMatrix<double> Wq = random(d_model, d, 0.1), Wk = random(d_model, d, 0.1), Wv = random(d_model, dv, 0.3),
                          Wo = random(dv, d_model, 0.3);

  KVStream kv(d, dv, /*degree=*/2, /*scale=*/1.0 / std::sqrt(static_cast<double>(d)));
  // Prefill: the prompt's keys and values in one block.
  RowMatrix<double> x = random(prompt, d_model, 1.0);
  kv.add(MatrixRef<double>(RowMatrix<double>(x * Wk)), MatrixRef<double>(RowMatrix<double>(x * Wv)));
  std::printf("prefill %lld tokens, state %zu bytes\n", static_cast<long long>(prompt), kv.nbytes());

  auto decode = [&](KVStream& state, RowMatrix<double> h, Index from, Index to, bool print) {
    for (Index step = from; step < to; ++step) {
      const RowMatrix<double> k = h * Wk, v = h * Wv, q = h * Wq;
      state.add(MatrixRef<double>(k), MatrixRef<double>(v));
      const RowMatrix<double> o = state.query(MatrixRef<double>(q));
      h = (o * Wo).array().tanh().matrix();  // the next token's hidden state
      if (print && (step % 16 == 0 || step == to - 1))
        std::printf("step %3lld: tokens %llu, state %zu bytes\n", static_cast<long long>(step),
                    static_cast<unsigned long long>(state.tokens_seen()), state.nbytes());
    }
    return h;
  };
  const RowMatrix<double> h_mid = decode(kv, x.bottomRows(1), 0, steps / 2, true);
  const std::vector<std::uint8_t> checkpoint = kv.to_bytes();  // park the conversation ...
  const RowMatrix<double> h_end = decode(kv, h_mid, steps / 2, steps, true);

  KVStream resumed = KVStream::from_bytes(checkpoint.data(), checkpoint.size());  // ... and resume it
  const RowMatrix<double> h_resumed = decode(resumed, h_mid, steps / 2, steps, false);
  const bool same = h_resumed == h_end && resumed.to_bytes() == kv.to_bytes();
  std::printf("checkpoint of %zu bytes at token %llu; resumed run identical bit for bit: %s\n", checkpoint.size(),
              static_cast<unsigned long long>(prompt + steps / 2), same ? "yes" : "NO");
  return same ? 0 : 1;
}
