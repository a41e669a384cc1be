#include "vpunn/mlp.h"

#include <algorithm>
#include <memory>
#include <system_error>
#include <thread>

#include "common.h"

namespace vpunas::vpunn {
namespace {

// A thread costs ~20-50 us to start; 256 rows of a 256-wide VPUNN net are ~1-3 ms of work.
constexpr size_t kMinRowsPerThread = 256;
// Scratch up to this many floats lives on the stack (single predictions never touch the heap).
constexpr size_t kStackScratchFloats = 4096;

}  // namespace

Mlp::Mlp(const ModelFile& f, const std::string& kernel) : kernel_(&gemm::select_kernel(kernel)) {
  if (f.layers.empty()) throw InputError("Mlp: the model has no layers");
  int prev = f.layers.front().in;
  for (size_t i = 0; i < f.layers.size(); ++i) {
    const DenseLayer& d = f.layers[i];
    if (d.in <= 0 || d.out <= 0 || d.in != prev || d.weight.size() != size_t(d.in) * size_t(d.out) ||
        d.bias.size() != size_t(d.out))
      throw InputError("Mlp: layer " + std::to_string(i) + " has inconsistent shapes");
    if (i + 1 < f.layers.size()) max_hidden_ = std::max(max_hidden_, d.out);
    prev = d.out;
    layers_.push_back(gemm::pack_dense(d, kernel_->nr));
  }
  input_size_ = f.layers.front().in;
  output_size_ = f.layers.back().out;
}

void Mlp::run_rows(const float* x, size_t n, float* y, float* scratch, size_t block) const {
  float* buf[2] = {scratch, scratch + block * size_t(max_hidden_)};
  for (size_t r0 = 0; r0 < n; r0 += block) {
    const size_t m = std::min(block, n - r0);
    const float* a = x + r0 * size_t(input_size_);
    size_t lda = size_t(input_size_);
    for (size_t li = 0; li < layers_.size(); ++li) {
      const gemm::PackedDense& L = layers_[li];
      const bool last = li + 1 == layers_.size();
      gemm::DenseArgs g;
      gemm::bind_layer(L, &g);
      g.a = a;
      g.lda = lda;
      g.m = m;
      g.c = last ? y + r0 * size_t(output_size_) : buf[li & 1];
      g.ldc = size_t(L.out);
      kernel_->dense(g);
      a = g.c;
      lda = g.ldc;
    }
  }
}

void Mlp::forward(const float* x, size_t n, float* y, int threads) const {
  if (n == 0) return;
  if (x == nullptr || y == nullptr) throw InputError("Mlp::forward: null input or output pointer");
  size_t t = threads > 0 ? size_t(threads)
                         : std::max<size_t>(1, std::min<size_t>(std::thread::hardware_concurrency(), n / kMinRowsPerThread));
  t = std::max<size_t>(1, std::min(t, (n + kBlockRows - 1) / kBlockRows));
  const size_t block = std::min(kBlockRows, (n + t - 1) / t);
  const size_t per_thread_scratch = 2 * block * size_t(max_hidden_);

  if (t == 1 && per_thread_scratch <= kStackScratchFloats) {
    float scratch[kStackScratchFloats];
    run_rows(x, n, y, scratch, block);
    return;
  }
  std::unique_ptr<float[]> scratch(new float[per_thread_scratch * t]);
  // Contiguous row ranges, whole blocks each, so no two threads touch one output row.
  const size_t blocks = (n + block - 1) / block;
  auto range = [&](size_t i) {
    const size_t b0 = blocks * i / t, b1 = blocks * (i + 1) / t;
    return std::make_pair(b0 * block, std::min(n, b1 * block));
  };
  std::vector<std::thread> workers;
  workers.reserve(t - 1);
  size_t i = 0;
  try {
    for (; i + 1 < t; ++i) {
      const auto [r0, r1] = range(i);
      float* s = scratch.get() + i * per_thread_scratch;
      workers.emplace_back([this, x, y, r0 = r0, r1 = r1, s, block] {
        run_rows(x + r0 * size_t(input_size_), r1 - r0, y + r0 * size_t(output_size_), s, block);
      });
    }
  } catch (const std::system_error&) {
    // Could not start a thread: do the remaining ranges here.
  }
  for (; i < t; ++i) {
    const auto [r0, r1] = range(i);
    run_rows(x + r0 * size_t(input_size_), r1 - r0, y + r0 * size_t(output_size_),
             scratch.get() + i * per_thread_scratch, block);
  }
  for (std::thread& w : workers) w.join();
}

}  // namespace vpunas::vpunn
