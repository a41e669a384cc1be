// VPUNN-exact MLP forward pass (see exact_mlp.h). Never let the compiler fuse multiply and add here:
// VPUNN's reference build does not, and fusing changes the last bits.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "workload/exact_mlp.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VPUNAS_EXACT_AVX 1
#endif

namespace vpunas {
namespace workload {
namespace {

constexpr int kLanes = 8;  // workloads evaluated side by side

float activate(float v, vpunn::Activation a) {
  switch (a) {
    case vpunn::Activation::Relu: return v > 0.0f ? v : 0.0f;
    case vpunn::Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-v));
    default: return v;
  }
}

// One dense layer for 8 workloads; xt / yt are transposed: element k of workload s at [k * 8 + s].
template <class L>
void layer_scalar(const L& layer, const float* xt, float* yt) {
  const int K = layer.in;
  for (int i = 0; i < layer.out; ++i) {
    const float* w = layer.weight.data() + static_cast<size_t>(i) * K;
    float s[kLanes];
    if ((static_cast<long>(i) * K) % 4 == 0) {  // 16-byte aligned weight row: VPUNN's SSE dot product
      float r[4][kLanes] = {};
      const int blocks = K / 32;
      for (int b = 0; b < blocks; ++b) {
        const int base = b * 32;
        for (int l = 0; l < 4; ++l) {
          for (int j = 0; j < kLanes; ++j) {
            auto x = [&](int k) { return xt[k * kLanes + j]; };
            float v1 = x(base + l) * w[base + l] + x(base + 4 + l) * w[base + 4 + l];
            const float v2 = x(base + 8 + l) * w[base + 8 + l] + x(base + 12 + l) * w[base + 12 + l];
            float v3 = x(base + 16 + l) * w[base + 16 + l] + x(base + 20 + l) * w[base + 20 + l];
            const float v4 = x(base + 24 + l) * w[base + 24 + l] + x(base + 28 + l) * w[base + 28 + l];
            v1 = v1 + v2;
            v3 = v3 + v4;
            v1 = v1 + v3;
            r[l][j] = r[l][j] + v1;
          }
        }
      }
      for (int j = 0; j < kLanes; ++j) s[j] = (r[0][j] + r[1][j]) + (r[2][j] + r[3][j]);
      for (int k = blocks * 32; k < K; ++k)
        for (int j = 0; j < kLanes; ++j) s[j] = s[j] + xt[k * kLanes + j] * w[k];
    } else {  // unaligned row: plain sequential sum
      for (int j = 0; j < kLanes; ++j) s[j] = 0.0f;
      for (int k = 0; k < K; ++k)
        for (int j = 0; j < kLanes; ++j) s[j] = s[j] + xt[k * kLanes + j] * w[k];
    }
    for (int j = 0; j < kLanes; ++j) yt[i * kLanes + j] = activate(s[j] + layer.bias[i], layer.act);
  }
}

#ifdef VPUNAS_EXACT_AVX
// Same arithmetic, 8 workloads per AVX register. Target "avx" only: no FMA instructions exist, so none
// can be fused in.
template <class L>
__attribute__((target("avx"))) void layer_avx(const L& layer, const float* xt, float* yt) {
  const int K = layer.in;
  auto X = [xt](int k) { return _mm256_loadu_ps(xt + k * kLanes); };
  for (int i = 0; i < layer.out; ++i) {
    const float* w = layer.weight.data() + static_cast<size_t>(i) * K;
    auto W = [w](int k) { return _mm256_set1_ps(w[k]); };
    __m256 s;
    if ((static_cast<long>(i) * K) % 4 == 0) {
      __m256 r[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      const int blocks = K / 32;
      for (int b = 0; b < blocks; ++b) {
        const int base = b * 32;
        for (int l = 0; l < 4; ++l) {
          __m256 v1 = _mm256_add_ps(_mm256_mul_ps(X(base + l), W(base + l)),
                                    _mm256_mul_ps(X(base + 4 + l), W(base + 4 + l)));
          const __m256 v2 = _mm256_add_ps(_mm256_mul_ps(X(base + 8 + l), W(base + 8 + l)),
                                          _mm256_mul_ps(X(base + 12 + l), W(base + 12 + l)));
          __m256 v3 = _mm256_add_ps(_mm256_mul_ps(X(base + 16 + l), W(base + 16 + l)),
                                    _mm256_mul_ps(X(base + 20 + l), W(base + 20 + l)));
          const __m256 v4 = _mm256_add_ps(_mm256_mul_ps(X(base + 24 + l), W(base + 24 + l)),
                                          _mm256_mul_ps(X(base + 28 + l), W(base + 28 + l)));
          v1 = _mm256_add_ps(v1, v2);
          v3 = _mm256_add_ps(v3, v4);
          v1 = _mm256_add_ps(v1, v3);
          r[l] = _mm256_add_ps(r[l], v1);
        }
      }
      s = _mm256_add_ps(_mm256_add_ps(r[0], r[1]), _mm256_add_ps(r[2], r[3]));
      for (int k = blocks * 32; k < K; ++k) s = _mm256_add_ps(s, _mm256_mul_ps(X(k), W(k)));
    } else {
      s = _mm256_setzero_ps();
      for (int k = 0; k < K; ++k) s = _mm256_add_ps(s, _mm256_mul_ps(X(k), W(k)));
    }
    s = _mm256_add_ps(s, _mm256_set1_ps(layer.bias[i]));
    if (layer.act == vpunn::Activation::Relu) {
      s = _mm256_max_ps(s, _mm256_setzero_ps());  // max(x, 0): x for x > 0, else +0 (x = -0 -> 0 too)
      _mm256_storeu_ps(yt + i * kLanes, s);
    } else {
      _mm256_storeu_ps(yt + i * kLanes, s);
      if (layer.act != vpunn::Activation::None)
        for (int j = 0; j < kLanes; ++j) yt[i * kLanes + j] = activate(yt[i * kLanes + j], layer.act);
    }
  }
}
#endif

}  // namespace

ExactMlp::ExactMlp(const vpunn::ModelFile& f) {
  if (f.layers.empty()) throw InputError("VPUNN model '" + f.name + "' has no layers");
  int prev = f.layers.front().in;
  for (const auto& l : f.layers) {
    if (l.in != prev || l.in <= 0 || l.out <= 0 || l.weight.size() != static_cast<size_t>(l.in) * l.out ||
        l.bias.size() != static_cast<size_t>(l.out))
      throw InputError("VPUNN model '" + f.name + "': inconsistent layer shapes");
    layers_.push_back({l.in, l.out, l.act, l.weight, l.bias});
    max_width_ = std::max({max_width_, l.in, l.out});
    prev = l.out;
  }
  input_size_ = f.layers.front().in;
  output_size_ = f.layers.back().out;
#ifdef VPUNAS_EXACT_AVX
  use_avx_ = __builtin_cpu_supports("avx");
#endif
}

void ExactMlp::forward(const float* x, size_t n, float* y) const {
  std::vector<float> a(static_cast<size_t>(max_width_) * kLanes), b(a.size());
  for (size_t g = 0; g < n; g += kLanes) {
    const size_t m = std::min<size_t>(kLanes, n - g);
    std::fill(a.begin(), a.end(), 0.0f);
    for (size_t j = 0; j < m; ++j)
      for (int k = 0; k < input_size_; ++k) a[static_cast<size_t>(k) * kLanes + j] = x[(g + j) * input_size_ + k];
    float* cur = a.data();
    float* nxt = b.data();
    for (const Layer& l : layers_) {
#ifdef VPUNAS_EXACT_AVX
      if (use_avx_) layer_avx(l, cur, nxt);
      else layer_scalar(l, cur, nxt);
#else
      layer_scalar(l, cur, nxt);
#endif
      std::swap(cur, nxt);
    }
    for (size_t j = 0; j < m; ++j)
      for (int o = 0; o < output_size_; ++o) y[(g + j) * output_size_ + o] = cur[static_cast<size_t>(o) * kLanes + j];
  }
}

}  // namespace workload
}  // namespace vpunas
