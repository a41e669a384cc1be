#include "vpunn/mlp.h"

#include <algorithm>
#include <memory>
#include <system_error>
#include <thread>

#include "common.h"

namespace vpunas::vpunn {
namespace {

// Scratch up to this many floats lives on the stack (single predictions never touch the heap).
constexpr size_t kStackScratchFloats = 4096;
// Zero-skipping path: layers up to this many inputs keep their nonzero-input lists on the stack.
constexpr size_t kStackIndex = 1024;

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
    if (kernel_->sparse) {
      // Outputs go straight into the next layer's storage order; the last layer's in natural order.
      std::vector<int32_t> out_pos;
      if (i + 1 < f.layers.size()) {
        out_pos = gemm::input_positions(f.layers[i + 1].in);
      } else {
        out_pos.resize(size_t(d.out));
        for (int o = 0; o < d.out; ++o) out_pos[size_t(o)] = o;
      }
      sparse_layers_.push_back(gemm::pack_sparse(d, kernel_->nr, out_pos, i + 1 < f.layers.size()));
    } else {
      layers_.push_back(gemm::pack_dense(d, kernel_->nr));
    }
  }
  input_size_ = f.layers.front().in;
  for (int k = 0; k < input_size_; ++k) identity_.push_back(k);
  output_size_ = f.layers.back().out;
}

std::vector<int> Mlp::near_zero_outputs() const {
  std::vector<int> out;
  for (const gemm::PackedSparse& L : sparse_layers_) out.push_back(L.tree.n - L.tree.near_zero_first);
  return out;
}

std::vector<bool> Mlp::diagonal_layers() const {
  std::vector<bool> out;
  for (const gemm::PackedSparse& L : sparse_layers_) out.push_back(!L.diagonal.empty());
  return out;
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

// Blocks of rows, layer by layer: a layer's weights stay in L2 while the whole block uses them, and the
// kernel reuses each weight vector for every row of the block from L1. Single rows use stack scratch only.
void Mlp::run_rows_sparse(const float* x, size_t n, float* y) const {
  const size_t width = size_t(kernel_->nr);
  size_t max_vecs = 1, max_in = size_t(input_size_);
  for (const gemm::PackedSparse& L : sparse_layers_) {
    max_vecs = std::max({max_vecs, size_t(L.tree.nvec), size_t(L.sequential.nvec), size_t(L.near_zero_tree.nvec),
                         size_t(L.near_zero_sequential.nvec)});
    max_in = std::max(max_in, size_t(L.in));
  }
  const size_t block = std::min(n, size_t(gemm::kSparseBlockRows));
  const size_t hidden = std::max(size_t(max_hidden_), size_t(input_size_));  // also holds the permuted input
  const size_t floats = 2 * block * hidden + gemm::sparse_scratch_floats(block, max_vecs * width);
  const size_t index_ints = block * (max_in + 1);
  float stack_buf[kStackScratchFloats];
  int32_t stack_index[kStackIndex];
  std::vector<float> heap;
  std::vector<int32_t> heap_index;
  float* buf = stack_buf;
  int32_t* index = stack_index;
  if (floats > kStackScratchFloats) {
    heap.resize(floats);
    buf = heap.data();
  }
  if (index_ints > kStackIndex) {
    heap_index.resize(index_ints);
    index = heap_index.data();
  }
  float* act[2] = {buf, buf + block * hidden};
  float* scratch = buf + 2 * block * hidden;
  for (size_t r0 = 0; r0 < n; r0 += block) {
    const size_t m = std::min(block, n - r0);
    // The input rows in the first layer's storage order (act[1]: the first layer writes act[0]); a diagonal
    // first layer reads them as they are.
    const int32_t* pos = sparse_layers_.front().in_pos.data();
    auto to_storage_order = [&](size_t r) {
      const float* xr = x + (r0 + r) * size_t(input_size_);
      float* dst = act[1] + r * hidden;
      for (int k = 0; k < input_size_; ++k) dst[pos[k]] = xr[k];
      return dst;
    };
    const bool first_diagonal = !sparse_layers_.front().diagonal.empty();
    if (!first_diagonal)
      for (size_t r = 0; r < m; ++r) to_storage_order(r);
    const float* a = first_diagonal ? x + r0 * size_t(input_size_) : act[1];
    size_t lda = first_diagonal ? size_t(input_size_) : hidden;
    for (size_t li = 0; li < sparse_layers_.size(); ++li) {
      const gemm::PackedSparse& L = sparse_layers_[li];
      const bool last = li + 1 == sparse_layers_.size();
      float* out = last ? y + r0 * size_t(output_size_) : act[li & 1];
      const size_t ldo = last ? size_t(output_size_) : hidden;
      auto run_set = [&](const gemm::SparseSet& set, size_t r, size_t rows, int32_t* failed, const float* xr) {
        gemm::SparseSetArgs g;
        gemm::bind_sparse_set(L, set, &g);
        g.rows = int(rows);
        g.x = xr;
        g.ldx = lda;
        g.y = out + r * ldo;
        g.ldy = ldo;
        g.scratch = scratch;
        g.index = index;
        g.failed = failed;
        kernel_->sparse(g);
      };
      int32_t failed[gemm::kSparseBlockRows];
      auto run_sets = [&](size_t r, size_t rows, const float* xr) {
        if (L.tree.n > 0) run_set(L.tree, r, rows, failed, xr);
        if (L.sequential.n > 0) run_set(L.sequential, r, rows, nullptr, xr);
        if (L.tree.near_zero_first < L.tree.n) {
          // Rows whose near-zero outputs were not proven 0: those outputs exactly, in VPUNN's order.
          for (size_t q = 0; q < rows; ++q) {
            if (!failed[q]) continue;
            for (const gemm::SparseSet* set : {&L.near_zero_tree, &L.near_zero_sequential})
              if (set->n > 0) run_set(*set, r + q, 1, nullptr, xr + q * lda);
          }
        }
      };
      if (L.diagonal.empty()) {
        run_sets(0, m, a);
      } else {
        const int32_t* in_idx = li == 0 ? identity_.data() : L.in_pos.data();
        for (size_t r = 0; r < m; ++r)
          if (!gemm::diagonal_row(L, a + r * lda, in_idx, out + r * ldo))
            run_sets(r, 1, li == 0 ? to_storage_order(r) : a + r * lda);  // a non-finite input
      }
      a = out;
      lda = ldo;
    }
  }
}

void Mlp::forward(const float* x, size_t n, float* y, int threads) const {
  if (n == 0) return;
  if (x == nullptr || y == nullptr) throw InputError("Mlp::forward: null input or output pointer");
  // Asking the OS for the core count costs microseconds (a single row is ~5 us): only when it can matter.
  size_t t = threads > 0                          ? size_t(threads)
             : n < 2 * kMinRowsPerThread ? 1
                                         : std::max<size_t>(1, std::min<size_t>(std::thread::hardware_concurrency(),
                                                                                n / kMinRowsPerThread));
  t = std::max<size_t>(1, std::min(t, (n + kBlockRows - 1) / kBlockRows));
  const size_t block = std::min(kBlockRows, (n + t - 1) / t);
  const size_t per_thread_scratch = 2 * block * size_t(max_hidden_);

  if (kernel_->sparse) {  // row by row: any split of the rows works, no scratch to share
    if (t == 1) return run_rows_sparse(x, n, y);
    std::vector<std::thread> workers;
    workers.reserve(t - 1);
    size_t i = 0;
    auto range = [&](size_t k) { return std::make_pair(n * k / t, n * (k + 1) / t); };
    try {
      for (; i + 1 < t; ++i) {
        const auto [r0, r1] = range(i);
        workers.emplace_back([this, x, y, r0 = r0, r1 = r1] {
          run_rows_sparse(x + r0 * size_t(input_size_), r1 - r0, y + r0 * size_t(output_size_));
        });
      }
    } catch (const std::system_error&) {
      // Could not start a thread: do the remaining ranges here.
    }
    for (; i < t; ++i) {
      const auto [r0, r1] = range(i);
      run_rows_sparse(x + r0 * size_t(input_size_), r1 - r0, y + r0 * size_t(output_size_));
    }
    for (std::thread& w : workers) w.join();
    return;
  }
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
