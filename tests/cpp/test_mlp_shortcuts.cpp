// The exact shortcuts of the zero-skipping MLP kernels (csrc/vpunn/gemm.h) on hand-made nets whose answers are
// known: every kernel must give the dense scalar kernel's bits, which takes no shortcut.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "vpunn/gemm.h"
#include "vpunn/mlp.h"

using vpunas::vpunn::Activation;
using vpunas::vpunn::DenseLayer;
using vpunas::vpunn::Mlp;
using vpunas::vpunn::ModelFile;

namespace {

DenseLayer layer(int in, int out, std::vector<float> w, std::vector<float> b, Activation act) {
  DenseLayer d;
  d.in = in;
  d.out = out;
  d.weight = std::move(w);
  d.bias = std::move(b);
  d.act = act;
  return d;
}

std::vector<std::string> sparse_kernels() {
  std::vector<std::string> names = {"scalar16_sparse"};
  for (const auto& k : vpunas::vpunn::gemm::available_kernels())
    if (k.sparse != nullptr) names.push_back(k.name);
  return names;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Output 0 of the hidden layer is near-zero (|w| <= 2^-30). With x = (2^94, 0.99 2^94, 0.99 2^94) its products
// are -2^64, 0.99 2^64, 0.99 2^64: VPUNN's sum is 0.98 2^64 > 0, but scaled by 2^64 the first product overflows
// to -inf, and the sum stays -inf. The proof must not take that -inf for "<= 0".
void scaled_sum_overflow() {
  ModelFile f;
  f.name = "VPUNN-11-02";
  const float t = 0x1p-30f;
  f.layers.push_back(layer(3, 2, {-t, t, t, 1.0f, 1.0f, 1.0f}, {-0x1p-100f, 0.0f}, Activation::Relu));
  f.layers.push_back(layer(2, 1, {1.0f, 0.0f}, {0.0f}, Activation::None));
  const std::vector<float> x = {0x1p94f, 0x1p94f * 0.99f, 0x1p94f * 0.99f};
  float want = 0.0f;
  Mlp(f, "scalar").forward(x.data(), 1, &want, 1);
  CHECK(want > 1e19f);
  for (const std::string& k : sparse_kernels()) {
    Mlp m(f, k);
    CHECK(m.near_zero_outputs().at(0) == 1);
    float got = -1.0f;
    m.forward(x.data(), 1, &got, 1);
    CHECK(same_bits(got, want));
  }
}

// A near-zero output proven <= 0 on one row and positive (so evaluated exactly) on the next, and a diagonal
// first layer: the same bits as the dense kernel, on each row alone and on both together.
void proof_and_fallback() {
  ModelFile f;
  f.name = "VPUNN-11-02";
  const int k = 40;  // one block of 32 in VPUNN's tree order, then 8 one by one
  std::vector<float> diag(size_t(k) * k, 0.0f), hidden(size_t(2) * k, 0.0f);
  for (int i = 0; i < k; ++i) {
    diag[size_t(i) * k + i] = 0.5f + 0.01f * float(i);
    hidden[size_t(i)] = (i % 3 == 0 ? -1.0f : 0.7f) * 0x1p-33f;  // output 0: near-zero
    hidden[size_t(k + i)] = 0.1f * float(i % 5) - 0.2f;         // output 1: ordinary
  }
  f.layers.push_back(layer(k, k, diag, std::vector<float>(size_t(k), 0.0f), Activation::Relu));
  f.layers.push_back(layer(k, 2, hidden, {-0x1p-90f, 0.25f}, Activation::Relu));
  f.layers.push_back(layer(2, 1, {0x1p40f, 1.0f}, {0.5f}, Activation::None));
  std::vector<float> x(size_t(2) * k, 0.0f);
  for (int i = 0; i < k; ++i) {
    x[size_t(i)] = i % 3 == 0 ? 3.0f : 0.5f;  // output 0 < 0: proven
    x[size_t(k + i)] = i % 3 == 0 ? 0.5f : 3.0f;  // output 0 > 0: exact
  }
  float want[2];
  Mlp(f, "scalar").forward(x.data(), 2, want, 1);
  CHECK(want[1] != want[0]);
  for (const std::string& name : sparse_kernels()) {
    Mlp m(f, name);
    CHECK(m.diagonal_layers().at(0) && !m.diagonal_layers().at(1));
    CHECK(m.near_zero_outputs().at(1) == 1);
    float both[2], one[2];
    m.forward(x.data(), 2, both, 1);
    m.forward(x.data(), 1, &one[0], 1);
    m.forward(x.data() + k, 1, &one[1], 1);
    for (int r = 0; r < 2; ++r) {
      CHECK(same_bits(both[r], want[r]));
      CHECK(same_bits(one[r], want[r]));
    }
  }
}

}  // namespace

int main() {
  scaled_sum_overflow();
  proof_and_fallback();
  if (failures) std::fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
