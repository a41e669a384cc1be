// Batched inference of a VPUNN MLP (fully connected layers) with packed weights and SIMD kernels.
// Results are bit-identical to VPUNN's own float32 inference (same summation order, see gemm.h).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "vpunn/gemm.h"
#include "vpunn/model_file.h"

namespace vpunas::vpunn {

// Immutable after construction, so any number of threads may call forward() on one object at once.
class Mlp {
 public:
  // `kernel`: "" or "auto" = best for this CPU, or one of gemm::available_kernels() by name, e.g.
  // "avx2_sparse" (row by row, skipping zero inputs) or "avx2" (dense, batched); InputError if unusable.
  // Every kernel gives the same bits.
  explicit Mlp(const ModelFile& f, const std::string& kernel = "");

  int input_size() const { return input_size_; }
  int output_size() const { return output_size_; }
  const char* kernel_name() const { return kernel_->name; }
  // Zero-skipping kernels only (else empty): per layer, the outputs proven 0 rather than evaluated (see
  // gemm::SparseSet) and whether the layer is evaluated as a diagonal one (see gemm::PackedSparse).
  std::vector<int> near_zero_outputs() const;
  std::vector<bool> diagonal_layers() const;

  // y[n * output_size()] = MLP(x[n * input_size()]), rows contiguous. threads <= 0 means "choose"
  // (1 for small n). No allocation for small n; large batches allocate one scratch block per thread.
  void forward(const float* x, size_t n, float* y, int threads = 0) const;

  // Rows pushed through all layers together: activations of a block stay in L2 while the weights of
  // every layer stream past them once per block.
  static constexpr size_t kBlockRows = 48;
  // Fewest rows worth a thread: starting one costs ~20-50 us, 256 rows of a 256-wide VPUNN net are ~1-3 ms.
  static constexpr size_t kMinRowsPerThread = 256;

 private:
  void run_rows(const float* x, size_t n, float* y, float* scratch, size_t block) const;
  void run_rows_sparse(const float* x, size_t n, float* y) const;

  std::vector<gemm::PackedDense> layers_;        // dense kernels
  std::vector<gemm::PackedSparse> sparse_layers_;  // zero-skipping kernels
  std::vector<int32_t> identity_;                 // 0, 1, .. input_size_ - 1: a diagonal first layer's inputs
  const gemm::Kernel* kernel_ = nullptr;
  int input_size_ = 0, output_size_ = 0, max_hidden_ = 1;
};

}  // namespace vpunas::vpunn
