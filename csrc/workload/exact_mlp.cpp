// VPUNN-exact MLP forward pass (see exact_mlp.h).
// Multiply and add must never be fused (VPUNN's reference build does not fuse): CMake compiles this file
// with -ffp-contract=off, the x86-64 kernels target plain AVX (no FMA instructions), and clang is told
// here as well.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "workload/exact_mlp.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VPUNAS_EXACT_AVX 1
#endif

namespace vpunas {
namespace workload {
namespace {

constexpr int kV = 8;  // neurons per vector

float activate(float v, vpunn::Activation a) {
  switch (a) {
    case vpunn::Activation::Relu: return v > 0.0f ? v : 0.0f;
    case vpunn::Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-v));
    default: return v;
  }
}

// ---- portable kernels: s[j] for 8 neurons of a set, exact VPUNN order per neuron
void aligned_scalar(const float* x, int K, const float* wt, int ld, float* s) {
  float r[4][kV] = {};
  const int blocks = K / 32;
  for (int b = 0; b < blocks; ++b) {
    const int base = b * 32;
    for (int l = 0; l < 4; ++l) {
      for (int j = 0; j < kV; ++j) {
        auto p = [&](int k) { return x[k] * wt[static_cast<size_t>(k) * ld + j]; };
        float v1 = p(base + l) + p(base + 4 + l);
        const float v2 = p(base + 8 + l) + p(base + 12 + l);
        float v3 = p(base + 16 + l) + p(base + 20 + l);
        const float v4 = p(base + 24 + l) + p(base + 28 + l);
        v1 = v1 + v2;
        v3 = v3 + v4;
        v1 = v1 + v3;
        r[l][j] = r[l][j] + v1;
      }
    }
  }
  for (int j = 0; j < kV; ++j) s[j] = (r[0][j] + r[1][j]) + (r[2][j] + r[3][j]);
  for (int k = blocks * 32; k < K; ++k)
    for (int j = 0; j < kV; ++j) s[j] = s[j] + x[k] * wt[static_cast<size_t>(k) * ld + j];
}

void sequential_scalar(const float* x, int K, const float* wt, int ld, float* s) {
  for (int j = 0; j < kV; ++j) s[j] = 0.0f;
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < kV; ++j) s[j] = s[j] + x[k] * wt[static_cast<size_t>(k) * ld + j];
}

#ifdef VPUNAS_EXACT_AVX
#define VPUNAS_P(k) _mm256_mul_ps(_mm256_set1_ps(x[k]), _mm256_loadu_ps(wt + static_cast<size_t>(k) * ld))
__attribute__((target("avx"))) void aligned_avx(const float* x, int K, const float* wt, int ld, float* out) {
  __m256 r0 = _mm256_setzero_ps(), r1 = r0, r2 = r0, r3 = r0;
  const int blocks = K / 32;
  for (int b = 0; b < blocks; ++b) {
    const int base = b * 32;
#define VPUNAS_LANE(l, r)                                                                 \
  {                                                                                       \
    __m256 v1 = _mm256_add_ps(VPUNAS_P(base + (l)), VPUNAS_P(base + 4 + (l)));            \
    const __m256 v2 = _mm256_add_ps(VPUNAS_P(base + 8 + (l)), VPUNAS_P(base + 12 + (l))); \
    __m256 v3 = _mm256_add_ps(VPUNAS_P(base + 16 + (l)), VPUNAS_P(base + 20 + (l)));      \
    const __m256 v4 = _mm256_add_ps(VPUNAS_P(base + 24 + (l)), VPUNAS_P(base + 28 + (l))); \
    v1 = _mm256_add_ps(v1, v2);                                                           \
    v3 = _mm256_add_ps(v3, v4);                                                           \
    v1 = _mm256_add_ps(v1, v3);                                                           \
    r = _mm256_add_ps(r, v1);                                                             \
  }
    VPUNAS_LANE(0, r0)
    VPUNAS_LANE(1, r1)
    VPUNAS_LANE(2, r2)
    VPUNAS_LANE(3, r3)
#undef VPUNAS_LANE
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(r0, r1), _mm256_add_ps(r2, r3));
  for (int k = blocks * 32; k < K; ++k) s = _mm256_add_ps(s, VPUNAS_P(k));
  _mm256_storeu_ps(out, s);
}

// Two 8-neuron vectors of the aligned set at once (16 neurons): each broadcast of x[k] feeds both.
#define VPUNAS_PB(k, xk, o) _mm256_mul_ps(xk, _mm256_loadu_ps(wt + static_cast<size_t>(k) * ld + (o)))
__attribute__((target("avx"))) void aligned2_avx(const float* x, int K, const float* wt, int ld, float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  const int blocks = K / 32;
  for (int blk = 0; blk < blocks; ++blk) {
    const int base = blk * 32;
#define VPUNAS_LANE2(l, ra, rb)                                                              \
  {                                                                                          \
    __m256 xs[8];                                                                            \
    for (int t = 0; t < 8; ++t) xs[t] = _mm256_set1_ps(x[base + 4 * t + (l)]);               \
    __m256 p1 = _mm256_add_ps(VPUNAS_PB(base + (l), xs[0], 0), VPUNAS_PB(base + 4 + (l), xs[1], 0));     \
    __m256 p2 = _mm256_add_ps(VPUNAS_PB(base + 8 + (l), xs[2], 0), VPUNAS_PB(base + 12 + (l), xs[3], 0)); \
    __m256 p3 = _mm256_add_ps(VPUNAS_PB(base + 16 + (l), xs[4], 0), VPUNAS_PB(base + 20 + (l), xs[5], 0)); \
    __m256 p4 = _mm256_add_ps(VPUNAS_PB(base + 24 + (l), xs[6], 0), VPUNAS_PB(base + 28 + (l), xs[7], 0)); \
    ra = _mm256_add_ps(ra, _mm256_add_ps(_mm256_add_ps(p1, p2), _mm256_add_ps(p3, p4)));   \
    p1 = _mm256_add_ps(VPUNAS_PB(base + (l), xs[0], 8), VPUNAS_PB(base + 4 + (l), xs[1], 8));            \
    p2 = _mm256_add_ps(VPUNAS_PB(base + 8 + (l), xs[2], 8), VPUNAS_PB(base + 12 + (l), xs[3], 8));       \
    p3 = _mm256_add_ps(VPUNAS_PB(base + 16 + (l), xs[4], 8), VPUNAS_PB(base + 20 + (l), xs[5], 8));      \
    p4 = _mm256_add_ps(VPUNAS_PB(base + 24 + (l), xs[6], 8), VPUNAS_PB(base + 28 + (l), xs[7], 8));      \
    rb = _mm256_add_ps(rb, _mm256_add_ps(_mm256_add_ps(p1, p2), _mm256_add_ps(p3, p4)));   \
  }
    VPUNAS_LANE2(0, a0, b0)
    VPUNAS_LANE2(1, a1, b1)
    VPUNAS_LANE2(2, a2, b2)
    VPUNAS_LANE2(3, a3, b3)
#undef VPUNAS_LANE2
  }
  __m256 sa = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  __m256 sb = _mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3));
  for (int k = blocks * 32; k < K; ++k) {
    const __m256 xk = _mm256_set1_ps(x[k]);
    sa = _mm256_add_ps(sa, VPUNAS_PB(k, xk, 0));
    sb = _mm256_add_ps(sb, VPUNAS_PB(k, xk, 8));
  }
  _mm256_storeu_ps(out, sa);
  _mm256_storeu_ps(out + 8, sb);
}
#undef VPUNAS_PB

// Four independent 8-neuron chains at once (sequential order along k inside each chain).
__attribute__((target("avx"))) void sequential4_avx(const float* x, int K, const float* wt, int ld, float* out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int k = 0; k < K; ++k) {
    const __m256 xk = _mm256_set1_ps(x[k]);
    const float* w = wt + static_cast<size_t>(k) * ld;
    s0 = _mm256_add_ps(s0, _mm256_mul_ps(xk, _mm256_loadu_ps(w)));
    s1 = _mm256_add_ps(s1, _mm256_mul_ps(xk, _mm256_loadu_ps(w + 8)));
    s2 = _mm256_add_ps(s2, _mm256_mul_ps(xk, _mm256_loadu_ps(w + 16)));
    s3 = _mm256_add_ps(s3, _mm256_mul_ps(xk, _mm256_loadu_ps(w + 24)));
  }
  _mm256_storeu_ps(out, s0);
  _mm256_storeu_ps(out + 8, s1);
  _mm256_storeu_ps(out + 16, s2);
  _mm256_storeu_ps(out + 24, s3);
}

__attribute__((target("avx"))) void sequential1_avx(const float* x, int K, const float* wt, int ld, float* out) {
  __m256 s = _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) s = _mm256_add_ps(s, VPUNAS_P(k));
  _mm256_storeu_ps(out, s);
}
#undef VPUNAS_P
#endif

}  // namespace

ExactMlp::ExactMlp(const vpunn::ModelFile& f) {
  if (f.layers.empty()) throw InputError("VPUNN model '" + f.name + "' has no layers");
  int prev = f.layers.front().in;
  for (const auto& l : f.layers) {
    if (l.in != prev || l.in <= 0 || l.out <= 0 || l.weight.size() != static_cast<size_t>(l.in) * l.out ||
        l.bias.size() != static_cast<size_t>(l.out))
      throw InputError("VPUNN model '" + f.name + "': inconsistent layer shapes");
    Layer L;
    L.in = l.in;
    L.out = l.out;
    L.act = l.act;
    // VPUNN's dot product takes the SSE path when the weight row starts 16-byte aligned.
    for (int i = 0; i < l.out; ++i) {
      NeuronSet& s = (static_cast<long>(i) * l.in) % 4 == 0 ? L.aligned : L.sequential;
      s.index.push_back(i);
    }
    for (NeuronSet* s : {&L.aligned, &L.sequential}) {
      s->count = static_cast<int>(s->index.size());
      s->padded = (s->count + 4 * kV - 1) / (4 * kV) * (4 * kV);  // whole groups of 4 vectors
      // grouped layout [group of 32 neurons][k][32]: one group's weights are one contiguous stream
      s->wt.assign(static_cast<size_t>(l.in) * s->padded, 0.0f);
      s->bias.assign(s->padded, 0.0f);
      for (int j = 0; j < s->count; ++j) {
        const int i = s->index[j], g = j / (4 * kV), c = j % (4 * kV);
        for (int k = 0; k < l.in; ++k)
          s->wt[(static_cast<size_t>(g) * l.in + k) * (4 * kV) + c] = l.weight[static_cast<size_t>(i) * l.in + k];
        s->bias[j] = l.bias[i];
      }
    }
    max_width_ = std::max({max_width_, l.in, l.out, L.aligned.padded, L.sequential.padded});
    layers_.push_back(std::move(L));
    prev = l.out;
  }
  input_size_ = f.layers.front().in;
  output_size_ = f.layers.back().out;
#ifdef VPUNAS_EXACT_AVX
  // VPUNAS_EXACT_MLP_SCALAR=1 forces the portable kernels (tests check both give identical values)
  const char* force_scalar = std::getenv("VPUNAS_EXACT_MLP_SCALAR");
  use_avx_ = __builtin_cpu_supports("avx") && !(force_scalar && force_scalar[0] == '1');
#endif
}

// Evaluates `m` (<= kBlock) workloads together: each group of 32 neurons' weights is loaded once from
// memory and reused from L1 for every workload of the block (the big models do not fit in L2).
void ExactMlp::forward_block(const float* x, size_t m, float* y, float* a, float* b, float* tmp) const {
  const size_t w = static_cast<size_t>(max_width_);
  const float* cur = x;
  size_t cur_ld = static_cast<size_t>(input_size_);
  float* bufs[2] = {a, b};
  int which = 0;
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& L = layers_[li];
    const bool last = li + 1 == layers_.size();
    float* out = last ? y : bufs[which];
    const size_t out_ld = last ? static_cast<size_t>(output_size_) : w;
    for (int set = 0; set < 2; ++set) {
      const NeuronSet& s = set == 0 ? L.aligned : L.sequential;
      if (s.count == 0) continue;
      const int ld = 4 * kV;
      for (int v = 0; v < s.padded; v += 4 * kV) {
        const float* wt = s.wt.data() + static_cast<size_t>(v) * L.in;
        for (size_t r = 0; r < m; ++r) {
          const float* xr = cur + r * cur_ld;
          float* t = tmp + r * w + v;
#ifdef VPUNAS_EXACT_AVX
          if (use_avx_) {
            if (set == 0) {
              aligned2_avx(xr, L.in, wt, ld, t);
              aligned2_avx(xr, L.in, wt + 2 * kV, ld, t + 2 * kV);
            } else {
              sequential4_avx(xr, L.in, wt, ld, t);
            }
            continue;
          }
#endif
          for (int q = 0; q < 4; ++q) {
            if (set == 0) aligned_scalar(xr, L.in, wt + q * kV, ld, t + q * kV);
            else sequential_scalar(xr, L.in, wt + q * kV, ld, t + q * kV);
          }
        }
      }
      for (size_t r = 0; r < m; ++r)
        for (int j = 0; j < s.count; ++j)
          out[r * out_ld + s.index[j]] = activate(tmp[r * w + j] + s.bias[j], L.act);
    }
    cur = out;
    cur_ld = out_ld;
    which ^= 1;
  }
}

void ExactMlp::forward(const float* x, size_t n, float* y) const {
  const size_t block = std::min(n, kBlock);
  std::vector<float> a(block * max_width_), b(a.size()), tmp(a.size());
  for (size_t r = 0; r < n; r += kBlock) {
    const size_t m = std::min(kBlock, n - r);
    forward_block(x + r * input_size_, m, y + r * output_size_, a.data(), b.data(), tmp.data());
  }
}

}  // namespace workload
}  // namespace vpunas
