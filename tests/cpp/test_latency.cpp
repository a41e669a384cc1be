// C++ tests of the latency kernels (no Python): values from the definition, gradients by finite
// differences, ragged masks, discrete queries over thread counts, and input errors.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "common.h"
#include "latency/expected_latency.h"

namespace lat = vpunas::latency;


template <class Fn>
static bool throws_with(Fn fn, const std::string& needle) {
  try {
    fn();
  } catch (const vpunas::InputError& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return true;
    std::fprintf(stderr, "unexpected message: %s\n", e.what());
    return false;
  }
  return false;
}

int main() {
  const int64_t N = 5, M = 4;
  std::mt19937 rng(1);
  std::normal_distribution<double> normal;
  std::vector<double> alpha(N * M), F(N * M);
  std::vector<uint8_t> mask(N * M, 1);
  for (auto& a : alpha) a = normal(rng);
  for (int64_t k = 0; k < N * M; ++k) F[k] = 1.0 + 0.5 * k;
  mask[1 * M + 3] = 0;
  mask[4 * M + 0] = 0;
  F[1 * M + 3] = std::nan("");  // masked entries may hold anything

  // value from the definition
  double want = 0;
  for (int64_t i = 0; i < N; ++i) {
    double z = 0, e = 0;
    for (int64_t j = 0; j < M; ++j) z += mask[i * M + j] ? std::exp(alpha[i * M + j]) : 0.0;
    for (int64_t j = 0; j < M; ++j) e += mask[i * M + j] ? std::exp(alpha[i * M + j]) / z * F[i * M + j] : 0.0;
    want += e;
  }
  std::vector<double> probs(N * M), grad(N * M);
  const double got = lat::expected_latency<double>(alpha.data(), F.data(), mask.data(), N, M, probs.data(), grad.data());
  CHECK(std::fabs(got - want) < 1e-12);
  CHECK(probs[1 * M + 3] == 0.0 && grad[4 * M + 0] == 0.0);

  // gradient by central differences
  for (int64_t k = 0; k < N * M; ++k) {
    if (!mask[k]) continue;
    auto a2 = alpha;
    const double h = 1e-6;
    a2[k] += h;
    const double up = lat::expected_latency<double>(a2.data(), F.data(), mask.data(), N, M, nullptr, nullptr);
    a2[k] -= 2 * h;
    const double down = lat::expected_latency<double>(a2.data(), F.data(), mask.data(), N, M, nullptr, nullptr);
    CHECK(std::fabs((up - down) / (2 * h) - grad[k]) < 1e-7);
  }

  // float32 agrees with float64
  std::vector<float> af(alpha.begin(), alpha.end()), ff(F.begin(), F.end());
  const double gotf = lat::expected_latency<float>(af.data(), ff.data(), mask.data(), N, M, nullptr, nullptr);
  CHECK(std::fabs(gotf - want) < 1e-5 * want);

  // errors
  auto bad_alpha = alpha;
  bad_alpha[2 * M + 1] = std::nan("");
  CHECK(throws_with([&] { lat::expected_latency<double>(bad_alpha.data(), F.data(), mask.data(), N, M, nullptr, nullptr); },
                    "alpha[2, 1] is NaN"));
  auto empty = mask;
  for (int64_t j = 0; j < M; ++j) empty[3 * M + j] = 0;
  CHECK(throws_with([&] { lat::expected_latency<double>(alpha.data(), F.data(), empty.data(), N, M, nullptr, nullptr); },
                    "block 3 has no valid candidate"));
  CHECK(throws_with([&] { lat::expected_latency<double>(alpha.data(), F.data(), nullptr, N, M, nullptr, nullptr); },
                    "F[1, 3] is NaN"));
  CHECK(throws_with([&] { lat::expected_latency<double>(alpha.data(), F.data(), nullptr, 0, M, nullptr, nullptr); },
                    "at least one block"));

  // discrete queries: every thread count gives the plain sum; masked / out-of-range picks are reported
  const int64_t B = 50000;
  std::vector<int32_t> choices(B * N);
  std::uniform_int_distribution<int> pick(0, M - 1);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < N; ++i) {
      int c = pick(rng);
      while (!mask[i * M + c]) c = pick(rng);
      choices[b * N + i] = c;
    }
  }
  std::vector<double> out(B);
  for (int threads : {1, 2, 3, 8}) {
    lat::discrete_latency(choices.data(), B, F.data(), mask.data(), N, M, out.data(), threads);
    int64_t within = 0;
    bool ok = true;
    for (int64_t b = 0; b < B; ++b) {
      double s = 0;
      for (int64_t i = 0; i < N; ++i) s += F[i * M + choices[b * N + i]];
      ok &= std::fabs(s - out[b]) < 1e-12;
      within += out[b] <= 20.0;
    }
    CHECK(ok);
    CHECK(lat::count_within(choices.data(), B, F.data(), mask.data(), N, M, 20.0, threads) == within);
  }
  auto bad = choices;
  bad[40000 * N + 1] = 3;  // masked candidate of block 1
  CHECK(throws_with([&] { lat::discrete_latency(bad.data(), B, F.data(), mask.data(), N, M, out.data(), 4); },
                    "architecture 40000, block 1: candidate 3 is not a valid candidate"));
  bad = choices;
  bad[123 * N + 4] = -2;
  CHECK(throws_with([&] { lat::count_within(bad.data(), B, F.data(), mask.data(), N, M, 1.0, 2); },
                    "architecture 123, block 4: candidate index -2 is out of range"));

  if (failures) {
    std::fprintf(stderr, "test_latency: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_latency: ok\n");
  return 0;
}
