// Portable dense-layer kernel (no ISA flags; the compiler may still use the baseline SIMD, e.g. SSE2),
// weight packing, and the run-time choice of kernel.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "vpunn/gemm.h"

namespace vpunas::vpunn::gemm {
namespace {

constexpr int kNr = 16;
constexpr int kMr = 4;

template <int MR>
void tile(const float* a, size_t lda, int k, const float* panel, const float* bias, Activation act, float* c,
          size_t ldc, int ncols) {
  float acc[MR][kNr];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < kNr; ++j) acc[r][j] = bias[j];
  for (int kk = 0; kk < k; ++kk) {
    const float* w = panel + size_t(kk) * kNr;
    for (int r = 0; r < MR; ++r) {
      const float x = a[size_t(r) * lda + size_t(kk)];
      for (int j = 0; j < kNr; ++j) acc[r][j] += x * w[j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* out = c + size_t(r) * ldc;
    std::copy(acc[r], acc[r] + ncols, out);
    apply_activation(out, size_t(ncols), act);
  }
}

bool cpu_has_avx2_fma() {
#if defined(VPUNAS_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512f() {
#if defined(VPUNAS_HAVE_AVX512) && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

std::vector<Kernel> detect_kernels() {
  std::vector<Kernel> ks;
#ifdef VPUNAS_HAVE_AVX512
  if (cpu_has_avx512f()) ks.push_back({"avx512", 32, &dense_avx512});
#endif
#ifdef VPUNAS_HAVE_AVX2
  if (cpu_has_avx2_fma()) ks.push_back({"avx2", 16, &dense_avx2});
#endif
  ks.push_back({"scalar", kNr, &dense_scalar});
  return ks;
}

}  // namespace

void apply_activation(float* v, size_t count, Activation act) {
  if (act == Activation::Relu) {
    for (size_t i = 0; i < count; ++i) v[i] = v[i] < 0.0f ? 0.0f : v[i];
  } else if (act == Activation::Sigmoid) {
    for (size_t i = 0; i < count; ++i) v[i] = 1.0f / (1.0f + std::exp(-v[i]));
  }
}

void dense_scalar(const DenseArgs& g) {
  const int panels = (g.n + kNr - 1) / kNr;
  for (int p = 0; p < panels; ++p) {
    const float* panel = g.packed + size_t(p) * size_t(g.k) * kNr;
    const float* bias = g.bias + size_t(p) * kNr;
    const int ncols = std::min(kNr, g.n - p * kNr);
    float* c = g.c + size_t(p) * kNr;
    size_t r = 0;
    for (; r + kMr <= g.m; r += kMr) tile<kMr>(g.a + r * g.lda, g.lda, g.k, panel, bias, g.act, c + r * g.ldc, g.ldc, ncols);
    for (; r < g.m; ++r) tile<1>(g.a + r * g.lda, g.lda, g.k, panel, bias, g.act, c + r * g.ldc, g.ldc, ncols);
  }
}

void pack_weights(const float* w, const float* bias, int n, int k, int nr, std::vector<float>* packed,
                  std::vector<float>* packed_bias) {
  const size_t panels = size_t((n + nr - 1) / nr);
  packed->assign(panels * size_t(k) * size_t(nr), 0.0f);
  packed_bias->assign(panels * size_t(nr), 0.0f);
  for (int o = 0; o < n; ++o) {
    const size_t p = size_t(o / nr), j = size_t(o % nr);
    float* panel = packed->data() + p * size_t(k) * size_t(nr);
    for (int kk = 0; kk < k; ++kk) panel[size_t(kk) * size_t(nr) + j] = w[size_t(o) * size_t(k) + size_t(kk)];
    (*packed_bias)[size_t(o)] = bias[o];
  }
}

const std::vector<Kernel>& available_kernels() {
  static const std::vector<Kernel> kernels = detect_kernels();  // CPU features never change
  return kernels;
}

const Kernel& select_kernel(const std::string& name) {
  const auto& ks = available_kernels();
  if (name.empty() || name == "auto") return ks.front();
  for (const Kernel& k : ks)
    if (name == k.name) return k;
  std::string have;
  for (const Kernel& k : ks) have += std::string(have.empty() ? "" : ", ") + k.name;
  throw InputError("MLP kernel '" + name + "' is not available on this CPU/build (available: " + have + ", auto)");
}

}  // namespace vpunas::vpunn::gemm
