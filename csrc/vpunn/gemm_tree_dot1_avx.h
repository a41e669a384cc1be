// VPUNN's tree sum for a one-output layer (the last layer of every VPUNN net) with AVX2 instructions, shared
// by the AVX2 and AVX-512 kernels (include only from files compiled with AVX2 enabled). Products are rounded
// before they are added (see the mul barrier), like VPUNN's.
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace vpunas::vpunn::gemm {
namespace {

inline __m256 mul_rounded(__m256 a, __m256 b) {
  __m256 p = _mm256_mul_ps(a, b);
#if defined(__GNUC__)
  __asm__("" : "+x"(p));  // keeps the compiler from fusing this product into an FMA
#endif
  return p;
}

// *s = VPUNN's tree sum of x[k] * w1[k] over the 32 * nb inputs of the full blocks (storage order: group
// l * nb + i = lane l of block i, 8 adjacent inputs). Per block, the 4 lanes' groups are multiplied as
// 4 vectors; two rounds of pairwise adds (hadd) and one add of the 128-bit halves give each group's
// ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)), one lane per float of the lane accumulator.
inline bool tree_dot1_avx(const float* x, const float* w1, int nb, float* s) {
  __m128 acc = _mm_setzero_ps();
  const size_t stride = size_t(8) * size_t(nb);  // floats from lane l to lane l + 1
  for (int i = 0; i < nb; ++i) {
    const size_t o = size_t(8) * size_t(i);
    const __m256 p0 = mul_rounded(_mm256_loadu_ps(x + o), _mm256_loadu_ps(w1 + o));
    const __m256 p1 = mul_rounded(_mm256_loadu_ps(x + o + stride), _mm256_loadu_ps(w1 + o + stride));
    const __m256 p2 = mul_rounded(_mm256_loadu_ps(x + o + 2 * stride), _mm256_loadu_ps(w1 + o + 2 * stride));
    const __m256 p3 = mul_rounded(_mm256_loadu_ps(x + o + 3 * stride), _mm256_loadu_ps(w1 + o + 3 * stride));
    // [g0 p01, g0 p23, g1 p01, g1 p23 | g0 p45, g0 p67, g1 p45, g1 p67], then the same for g2, g3
    const __m256 h01 = _mm256_hadd_ps(p0, p1), h23 = _mm256_hadd_ps(p2, p3);
    const __m256 q = _mm256_hadd_ps(h01, h23);  // [g0..g3 (p01 + p23) | g0..g3 (p45 + p67)]
    acc = _mm_add_ps(acc, _mm_add_ps(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1)));
  }
  const __m128 h = _mm_hadd_ps(acc, acc);  // [l0 + l1, l2 + l3, ..]
  _mm_store_ss(s, _mm_add_ss(h, _mm_movehdup_ps(h)));
  return true;
}

}  // namespace
}  // namespace vpunas::vpunn::gemm
