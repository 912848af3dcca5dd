// A decode loop for a Based-style layer (polynomial attention) embedded in a C++ program: the
// whole context lives in a constant-size state per head, so decoding token 10^6 costs what
// token 10 does. Prefills a prompt for every head at once, decodes token by token, parks the
// conversation as bytes and resumes it, and prints tokens/s.
//
// Build against an installed streamattn:
//   cmake -S cpp/examples -B build-ex -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build-ex
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "streamattn/stream/multi_head_stream.hpp"

int main() {
  using namespace streamattn;
  using Clock = std::chrono::steady_clock;
  // Based's shape: 16 query heads over 4 kv heads, feature dim 16, value dim 64, Taylor degree 2,
  // scale 1/sqrt(16), and fla's 1e-6 added to the normalizer.
  const Index heads = 16, kv_heads = 4, d = 16, dv = 64, prompt = 4096, decode = 2000;
  MultiHeadCausalStream layer(heads, kv_heads, d, dv, /*degree=*/2, /*scale=*/0.25, /*chunk=*/256,
                              /*max_bytes=*/0, FeatureKernel::taylor, Normalizer{1e-6, true});

  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](Index rows, Index cols) {
    RowMatrix<float> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(gen);
    return m;
  };

  // Prefill: the prompt's q, k, v for every head (in a model these come from the projections).
  std::vector<RowMatrix<float>> Qs, Ks, Vs;
  for (Index h = 0; h < heads; ++h) Qs.push_back(random(prompt, d));
  for (Index g = 0; g < kv_heads; ++g) {
    Ks.push_back(random(prompt, d));
    Vs.push_back(random(prompt, dv));
  }
  std::vector<MatrixRef<float>> q, k, v;
  for (auto& m : Qs) q.emplace_back(m);
  for (auto& m : Ks) k.emplace_back(m);
  for (auto& m : Vs) v.emplace_back(m);
  RowMatrix<double> prefill_out;
  auto t0 = Clock::now();
  layer.update(q, k, v, nullptr, &prefill_out);
  const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Decode: one token per step for every head; the next token's q, k, v would come from the model.
  const RowMatrix<float> qs = random(heads, d), ks = random(kv_heads, d), vs = random(kv_heads, dv);
  RowMatrix<double> out(heads, dv);
  double checksum = 0.0;
  t0 = Clock::now();
  for (Index t = 0; t < decode; ++t) {
    layer.step(qs, ks, vs, out);
    checksum += out(0, 0);
  }
  const double decode_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Park the conversation and resume it: the same bytes, the same next output.
  const std::vector<std::uint8_t> parked = layer.to_bytes();
  MultiHeadCausalStream resumed = MultiHeadCausalStream::from_bytes(parked.data(), parked.size());
  RowMatrix<double> a(heads, dv), b(heads, dv);
  layer.step(qs, ks, vs, a);
  resumed.step(qs, ks, vs, b);

  std::printf("%s\n", layer.repr().c_str());
  std::printf("prefill: %lld tokens x %lld heads in %.3f s = %.0f tokens/s\n", static_cast<long long>(prompt),
              static_cast<long long>(heads), prefill_s, static_cast<double>(prompt) / prefill_s);
  std::printf("decode:  %lld steps x %lld heads in %.3f s = %.0f tokens/s (%.1f us/step)\n",
              static_cast<long long>(decode), static_cast<long long>(heads), decode_s,
              static_cast<double>(decode) / decode_s, 1e6 * decode_s / static_cast<double>(decode));
  std::printf("state: %zu bytes for %llu tokens; parked %zu bytes, resumed bit for bit: %s (checksum %.6f)\n",
              layer.nbytes(), static_cast<unsigned long long>(layer.tokens_seen()), parked.size(),
              a == b ? "yes" : "NO", checksum);
  return a == b ? 0 : 1;
}
