// Dense-layer kernels for the VPUNN MLP: C[M x N] = act(A[M x K] * W^T + bias), bit-identical to VPUNN.
//
// VPUNN's own kernel (src/kernels/blas.cpp) computes each output as a dot product that starts at 0,
// then adds the bias. When the weight row starts 16-byte aligned (o * K % 4 == 0 for a 16-byte-aligned
// buffer) it sums with 4 SSE lanes: lane l takes elements k = 32 i + 4 j + l (j = 0..7) per block i of 32,
// combined as ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)) and added to the lane total; the lanes
// end as (l0 + l1) + (l2 + l3); the K % 32 remaining elements are added one by one. Other rows are
// summed one by one. Products and sums are rounded separately (no FMA). We keep exactly that order per
// (row, output), so our float32 results equal VPUNN's bit for bit, but vectorise across outputs
// (packed weight panels) and rows (register tiles), which VPUNN does not.
//
// Weights are packed once at load time: outputs are split into "tree" (aligned) and "sequential" sets,
// each cut into panels of `nr` outputs; a panel stores, for each k in the order the sum visits it, the nr
// weights contiguously (zero padded). Kernels are compiled per ISA (gemm_scalar.cpp, gemm_avx2.cpp,
// gemm_avx512.cpp) and picked at run time, so one binary runs on any x86-64 (and the scalar one anywhere).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "vpunn/model_file.h"

namespace vpunas::vpunn::gemm {

struct Panel {
  size_t w_offset = 0;    // first packed weight of this panel (floats)
  size_t col_offset = 0;  // first entry of this panel in PackedDense::cols / bias
  int ncols = 0;          // valid outputs (<= nr)
  int first_col = -1;     // output index of column 0 when the valid columns are consecutive, else -1
  bool tree = false;      // VPUNN's 4-lane tree order (else one-by-one)
};

struct PackedDense {
  int in = 0, out = 0, nr = 0;
  Activation act = Activation::None;
  std::vector<float> weights;  // panels, each k-major [visit order][nr]
  std::vector<float> bias;     // [panels * nr], panel order
  std::vector<int32_t> cols;   // [panels * nr] output index per panel column, -1 = padding
  std::vector<Panel> panels;
};

// Packs W [out][in] (row-major, as in the file) and bias for kernels of panel width nr.
PackedDense pack_dense(const DenseLayer& layer, int nr);

// Plain pointers only: the per-ISA files must not instantiate std:: templates (see gemm_kernel_impl.h).
struct DenseArgs {
  const float* a = nullptr;  // activations, row r at a + r * lda (in floats)
  size_t lda = 0;
  size_t m = 0;  // rows
  int k = 0;     // inputs of the layer
  Activation act = Activation::None;
  const float* weights = nullptr;  // PackedDense::weights
  const float* bias = nullptr;     // PackedDense::bias
  const int32_t* cols = nullptr;   // PackedDense::cols
  const Panel* panels = nullptr;
  size_t npanels = 0;
  float* c = nullptr;  // outputs, row r at c + r * ldc; exactly the layer's `out` columns are written
  size_t ldc = 0;
};

// Fills the layer fields of DenseArgs from a packed layer.
void bind_layer(const PackedDense& layer, DenseArgs* args);

using DenseFn = void (*)(const DenseArgs&);

// Allocator for 64-byte aligned (cache line) storage, so no vector load of the packed weights splits a line.
template <class T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheAligned<U>&) const { return false; }
};

// ---- Zero-skipping layout (the "_sparse" kernels).
// Most inputs of a VPUNN layer are exactly 0 (one-hot descriptors, ReLU outputs). A zero input gives a
// product of +-0, and skipping it is exact as long as the remaining products keep VPUNN's order and tree
// shape (a tree node with one absent child passes the other through): every accumulator starts at +0,
// so a skipped term can change at most the sign of an intermediate zero, which the +0-started
// accumulator then absorbs. It is not exact when a weight is inf/NaN (0 * inf = NaN): such layers
// evaluate every input (skip_zeros = false).
//
// Activations are stored permuted: a layer's input row holds input k at position input_positions(k),
// the order VPUNN's tree visits the inputs (lane by lane, block by block, the 8 inputs of one
// (block, lane) adjacent, then the inputs past the last full block of 32 in order). So a kernel reads
// each (block, lane) as 8 contiguous floats, and a layer writes its outputs straight into the next
// layer's order. The network's own input and output rows keep the natural order.
//
// Near-zero outputs. Training leaves some hidden ReLU neurons with every weight tiny (|w| <= 2^-30; in
// vpu_2_7.vpunn 248 of its 1030 hidden outputs). Their products with ordinary activations are subnormal, and on
// Intel cores a multiply with a subnormal input or result takes a microcode assist of ~150 cycles: these
// products cost vpu_2_7 ~40 % of its time. After the ReLU these outputs are 0 on every workload we have. So the
// tree set carries them as extra entries [near_zero_first, n) with weights and bias scaled by
// 2^kNearZeroScaleLog2 (exact, a power of two), where nothing is subnormal, and the kernel proves each of them
// <= 0 before the ReLU, which makes it +-0 (either sign is skipped by the next layer, and absorbed by VPUNN's
// +0-started sums, see above), and writes +0. The proof bounds the rounding of both sums, in any order of the k
// inputs, by 2 gamma_{k+1} sum_i |x_i| max|w| plus k subnormal roundings (gamma_n = n u / (1 - n u),
// u = 2^-24). Rows where it fails (none of the golden workloads) evaluate these outputs exactly, in VPUNN's
// order, with PackedSparse::near_zero_tree / near_zero_sequential.
constexpr int kNearZeroScaleLog2 = 64;
constexpr float kNearZeroMaxWeight = 0x1p-30f;

struct SparseSet {
  bool tree = false;    // VPUNN's 4-lane tree order (else one-by-one)
  int n = 0, nvec = 0;  // entries in the set; vectors of the kernel width covering them
  int near_zero_first = 0;  // entries from here on are near-zero outputs; n if none
  // W^T restricted to the set: [in][nvec * width], zero padded, input rows by storage position.
  std::vector<float, CacheAligned<float>> wt;
  std::vector<float, CacheAligned<float>> w1;  // n == 1 only: that output's weights by storage position
  std::vector<float> bias;    // [nvec * width]
  std::vector<int32_t> cols;  // [n] position each entry is written to in the output row (ascending in each part)
  std::vector<float> wmax;    // [nvec * width] scaled max |w| of each near-zero entry (empty if none)
};

struct PackedSparse {
  int in = 0, out = 0, width = 0;
  Activation act = Activation::None;
  bool skip_zeros = true;       // false when a weight is not finite
  std::vector<int32_t> in_pos;  // [in] storage position of each input (input_positions(in))
  SparseSet tree, sequential;   // the tree set also holds the near-zero outputs (see SparseSet)
  SparseSet near_zero_tree, near_zero_sequential;  // the near-zero outputs unscaled, for rows the proof fails
  // Diagonal hidden layers (vpu_2_7's first layer scales each input: 93x93, every off-diagonal weight 0):
  // VPUNN's sum for output o adds x_o w_oo to products that are all +-0, so output o is act(x_o w_oo + b_o)
  // (zero signs aside, see above) while every input is finite; with an inf or NaN input, x * 0 makes all of
  // VPUNN's outputs NaN, so such rows use the sets. Empty when the layer is not diagonal.
  std::vector<float> diagonal, diagonal_bias;  // [in] w_oo, b_o
  std::vector<int32_t> out_pos;                 // [out] position output o is written to (diagonal layers only)
};

// One row of a diagonal layer: y[out_pos[o]] = act(x[in_idx[o]] * w_oo + b_o) for every o, and true; or, when
// an input x[0..in) is not finite, nothing written and false.
bool diagonal_row(const PackedSparse& layer, const float* x, const int32_t* in_idx, float* y);

// Storage position of each of the k inputs of a layer (see above).
std::vector<int32_t> input_positions(int k);

// Packs one layer for sparse kernels of vector width `width`; out_pos[o] = position output o is written
// to (the next layer's input_positions, or the identity for the last layer). `hidden`: the outputs feed
// another layer (only then may near-zero outputs be written as +0 where VPUNN may hold -0).
PackedSparse pack_sparse(const DenseLayer& layer, int width, const std::vector<int32_t>& out_pos, bool hidden);

// Rows a sparse kernel call evaluates (a block: each weight vector fetched from L2 serves every row of
// the block from L1, while each row still skips only its own zero inputs).
constexpr int kSparseBlockRows = 16;

struct SparseSetArgs {
  int rows = 1;              // 1..kSparseBlockRows
  const float* x = nullptr;  // input rows (storage order), row r at x + r * ldx
  size_t ldx = 0;
  int k = 0;
  bool skip_zeros = true;
  Activation act = Activation::None;
  bool tree = false;
  int n = 0, nvec = 0;
  const int32_t* in_pos = nullptr;
  const float* wt = nullptr;
  const float* w1 = nullptr;  // SparseSet::w1 (n == 1), else null
  const float* bias = nullptr;
  const int32_t* cols = nullptr;
  float* y = nullptr;  // output rows, row r at y + r * ldy; exactly this set's positions are written
  size_t ldy = 0;
  float* scratch = nullptr;  // >= sparse_scratch_floats(rows, nvec * width)
  int32_t* index = nullptr;  // >= rows * (k + 1) ints
  // Near-zero entries [near_zero_first, n) (see SparseSet): proven <= 0 and written as +0, or, where the proof
  // fails for any of them, none written and failed[r] = 1 (else 0). Unused when near_zero_first == n.
  int near_zero_first = 0;
  const float* wmax = nullptr;
  int32_t* failed = nullptr;
};

// Scratch of one sparse kernel call: per row the dot products and the 4 lane sums of VPUNN's tree.
constexpr size_t sparse_scratch_floats(size_t rows, size_t outputs_padded) { return 5 * rows * outputs_padded; }

// Fills the set fields of SparseSetArgs.
void bind_sparse_set(const PackedSparse& layer, const SparseSet& set, SparseSetArgs* args);

using SparseSetFn = void (*)(const SparseSetArgs&);

struct Kernel {
  const char* name;   // "avx512_sparse", "avx2_sparse", "avx512", "avx2", "scalar_sparse", "scalar"
  int nr;             // panel (vector) width the packed weights must use
  DenseFn dense;      // dense kernel: batched, register tiles of rows
  SparseSetFn sparse; // non-null: this kernel evaluates row by row, skipping zero inputs
};

// Kernels compiled into this binary and usable on this CPU, best first (scalar always present, last).
const std::vector<Kernel>& available_kernels();
// `name` empty or "auto" = best, otherwise that kernel (InputError naming the usable ones if not usable).
// "scalar16" is a portable kernel with the AVX-512 panel width, for tests on CPUs without AVX-512.
const Kernel& select_kernel(const std::string& name);

// Per-ISA entry points (the SIMD ones are only called when compiled in and supported by the CPU).
void dense_scalar(const DenseArgs& args);
void dense_avx2(const DenseArgs& args);
void dense_avx512(const DenseArgs& args);
void sparse_scalar(const SparseSetArgs& args);
void sparse_avx2(const SparseSetArgs& args);
void sparse_avx512(const SparseSetArgs& args);

// VPUNN's sigmoid on one value (used by every kernel for the rare SIGMOID layers).
float sigmoid(float x);

}  // namespace vpunas::vpunn::gemm
