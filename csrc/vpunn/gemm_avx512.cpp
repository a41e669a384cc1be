// AVX-512F dense-layer kernel: panels of 16 outputs (one zmm), register tiles of 4 rows, VPUNN's order.
// No std:: templates in this file (see gemm_avx2.cpp).
#include <immintrin.h>

#include "vpunn/gemm_kernel_impl.h"
#include "vpunn/gemm_tree_dot1_avx.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: spurious, from _mm512_max_ps
#endif

namespace vpunas::vpunn::gemm {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V bcast(float x) { return _mm512_set1_ps(x); }
  static V mul(V a, V b) {
    V p = _mm512_mul_ps(a, b);
#if defined(__GNUC__)
    __asm__("" : "+v"(p));  // keeps the compiler from fusing this product into an FMA (VPUNN rounds it)
#endif
    return p;
  }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V relu(V y) { return _mm512_max_ps(_mm512_setzero_ps(), y); }
  static V abs(V v) { return _mm512_abs_ps(v); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static bool tree_dot1(const float* x, const float* w1, int nb, float* s) { return tree_dot1_avx(x, w1, nb, s); }
  static unsigned le_mask(V a, V b) { return unsigned(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ)); }  // NaN: 0
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  // Bit j set when p[j] != +-0 (NaN counts as nonzero: unordered compare).
  static unsigned nonzero8(const float* p) {
    return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_setzero_ps(), _CMP_NEQ_UQ)));
  }
};

}  // namespace

void dense_avx512(const DenseArgs& g) { dense_impl<Avx512, 4>(g); }
void sparse_avx512(const SparseSetArgs& g) { sparse_impl<Avx512>(g); }

}  // namespace vpunas::vpunn::gemm
