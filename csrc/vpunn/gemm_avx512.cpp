// AVX-512F dense-layer kernel: register tile of MR = 8 rows x 32 outputs (16 zmm accumulators),
// bias preloaded into the accumulators, activation fused into the (masked) store.
// No std:: templates here: their out-of-line instances would carry this ISA into other files.
#include <immintrin.h>

#include "vpunn/gemm.h"

namespace vpunas::vpunn::gemm {
namespace {

constexpr int kNr = 32;
constexpr int kMr = 8;

template <int MR>
inline void tile(const float* a, size_t lda, int k, const float* panel, const float* bias, Activation act, float* c,
                 size_t ldc, int ncols) {
  __m512 acc0[MR], acc1[MR];
  const __m512 bias0 = _mm512_loadu_ps(bias), bias1 = _mm512_loadu_ps(bias + 16);
  const float* rows[MR];
  for (int r = 0; r < MR; ++r) {
    acc0[r] = bias0;
    acc1[r] = bias1;
    rows[r] = a + size_t(r) * lda;
  }
#pragma GCC unroll 4
  for (int kk = 0; kk < k; ++kk) {
    const __m512 w0 = _mm512_loadu_ps(panel + size_t(kk) * kNr);
    const __m512 w1 = _mm512_loadu_ps(panel + size_t(kk) * kNr + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_set1_ps(rows[r][kk]);
      acc0[r] = _mm512_fmadd_ps(x, w0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(x, w1, acc1[r]);
    }
  }
  if (act == Activation::Relu) {
    const __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      acc0[r] = _mm512_max_ps(acc0[r], zero);
      acc1[r] = _mm512_max_ps(acc1[r], zero);
    }
  }
  const int n0 = ncols < 16 ? ncols : 16, n1 = ncols > 16 ? ncols - 16 : 0;
  const __mmask16 m0 = __mmask16((1u << n0) - 1u), m1 = __mmask16((1u << n1) - 1u);
  for (int r = 0; r < MR; ++r) {
    float* out = c + size_t(r) * ldc;
    _mm512_mask_storeu_ps(out, m0, acc0[r]);
    if (n1) _mm512_mask_storeu_ps(out + 16, m1, acc1[r]);
    if (act == Activation::Sigmoid) apply_activation(out, size_t(ncols), act);
  }
}

}  // namespace

void dense_avx512(const DenseArgs& g) {
  const int panels = (g.n + kNr - 1) / kNr;
  for (int p = 0; p < panels; ++p) {
    const float* panel = g.packed + size_t(p) * size_t(g.k) * kNr;
    const float* bias = g.bias + size_t(p) * kNr;
    const int ncols = g.n - p * kNr < kNr ? g.n - p * kNr : kNr;
    float* c = g.c + size_t(p) * kNr;
    size_t r = 0;
    for (; r + kMr <= g.m; r += kMr) tile<kMr>(g.a + r * g.lda, g.lda, g.k, panel, bias, g.act, c + r * g.ldc, g.ldc, ncols);
    const float* a = g.a + r * g.lda;
    c += r * g.ldc;
    switch (g.m - r) {
      case 7: tile<7>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      case 6: tile<6>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      case 5: tile<5>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      case 4: tile<4>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      case 3: tile<3>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      case 2: tile<2>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      case 1: tile<1>(a, g.lda, g.k, panel, bias, g.act, c, g.ldc, ncols); break;
      default: break;
    }
  }
}

}  // namespace vpunas::vpunn::gemm
