// Dense-layer kernels for the VPUNN MLP: C[M x N] = act(A[M x K] * W^T + bias), with W packed once at
// load time into column panels of `nr` outputs: panel p holds, for k = 0..K-1, the nr weights
// W[p*nr + j][k] (j = 0..nr-1) contiguously, zero-padded past N. Bias is padded the same way.
// Kernels are compiled per ISA (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp) and picked at run time,
// so one binary runs on any x86-64 (and the scalar one anywhere).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "vpunn/model_file.h"

namespace vpunas::vpunn::gemm {

struct DenseArgs {
  const float* a = nullptr;  // activations, row r at a + r * lda
  size_t lda = 0;
  size_t m = 0;                    // rows
  int k = 0;                       // inputs
  int n = 0;                       // outputs (valid columns)
  const float* packed = nullptr;   // packed weights, ceil(n / nr) panels of k * nr floats
  const float* bias = nullptr;     // ceil(n / nr) * nr floats
  Activation act = Activation::None;
  float* c = nullptr;  // outputs, row r at c + r * ldc; only the n valid columns are written
  size_t ldc = 0;
};

using DenseFn = void (*)(const DenseArgs&);

struct Kernel {
  const char* name;  // "scalar", "avx2", "avx512"
  int nr;            // panel width the packed weights must use
  DenseFn dense;
};

// The kernels compiled into this binary and usable on this CPU, best first (scalar always last).
const std::vector<Kernel>& available_kernels();
// The best usable kernel; `name` empty or "auto" = best, otherwise that kernel (InputError if unusable).
const Kernel& select_kernel(const std::string& name);

// Packs W [n][k] (row-major) and bias [n] into nr-wide panels.
void pack_weights(const float* w, const float* bias, int n, int k, int nr, std::vector<float>* packed,
                  std::vector<float>* packed_bias);

// Per-ISA entry points (defined only when compiled in).
void dense_scalar(const DenseArgs& args);
void dense_avx2(const DenseArgs& args);
void dense_avx512(const DenseArgs& args);

// Shared helper: applies `act` to `count` floats in place (used for sigmoid and by the scalar kernel).
void apply_activation(float* v, size_t count, Activation act);

}  // namespace vpunas::vpunn::gemm
