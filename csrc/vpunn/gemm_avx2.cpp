// AVX2 dense-layer kernel: panels of 8 outputs (one ymm), register tiles of 2 rows, VPUNN's summation order.
// No std:: templates in this file: instances compiled with -mavx2 could be picked by the linker for
// other files and then run on CPUs without AVX2.
#include <immintrin.h>

#include "vpunn/gemm_kernel_impl.h"
#include "vpunn/gemm_tree_dot1_avx.h"

namespace vpunas::vpunn::gemm {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(float x) { return _mm256_set1_ps(x); }
  static V mul(V a, V b) {
    V p = _mm256_mul_ps(a, b);
#if defined(__GNUC__)
    __asm__("" : "+x"(p));  // keeps the compiler from fusing this product into an FMA (VPUNN rounds it)
#endif
    return p;
  }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V relu(V y) { return _mm256_max_ps(_mm256_setzero_ps(), y); }  // NaN stays NaN, like VPUNN's `if (x < 0)`
  static V abs(V v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static unsigned le_mask(V a, V b) { return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_LE_OQ))); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  // Bit j set when p[j] != +-0 (NaN counts as nonzero: unordered compare).
  static unsigned nonzero8(const float* p) {
    return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), _mm256_setzero_ps(), _CMP_NEQ_UQ)));
  }
  static bool tree_dot1(const float* x, const float* w1, int nb, float* s) { return tree_dot1_avx(x, w1, nb, s); }
};

}  // namespace

void dense_avx2(const DenseArgs& g) { dense_impl<Avx2, 3>(g); }
void sparse_avx2(const SparseSetArgs& g) { sparse_impl<Avx2>(g); }

}  // namespace vpunas::vpunn::gemm
