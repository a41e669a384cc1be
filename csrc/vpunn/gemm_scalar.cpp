// Portable dense-layer kernel (no ISA flags; 4-wide plain loops the compiler may map onto its baseline
// SIMD), weight packing, and the run-time choice of kernel.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common.h"
#include "vpunn/gemm_kernel_impl.h"

namespace vpunas::vpunn::gemm {
namespace {

// W = 4 is the portable kernel; W = 16 ("scalar16", never chosen automatically) runs the AVX-512
// panel layout on any CPU so tests can check that packing where no AVX-512 is available.
template <int NW>
struct Portable {
  struct V {
    float v[NW];
  };
  static constexpr int W = NW;
  static V zero() {
    V r;
    for (float& x : r.v) x = 0.0f;
    return r;
  }
  static V load(const float* p) {
    V r;
    for (int j = 0; j < NW; ++j) r.v[j] = p[j];
    return r;
  }
  static V bcast(float x) {
    V r;
    for (float& y : r.v) y = x;
    return r;
  }
  static V mul(V a, V b) {
    V r;
    for (int j = 0; j < NW; ++j) r.v[j] = a.v[j] * b.v[j];
#if defined(__GNUC__) && defined(__FP_FAST_FMAF)
    __asm__("" : "+m"(r));  // targets with FMA: keep the product rounded on its own, like VPUNN
#endif
    return r;
  }
  static V add(V a, V b) {
    V r;
    for (int j = 0; j < NW; ++j) r.v[j] = a.v[j] + b.v[j];
    return r;
  }
  static V relu(V y) {
    for (float& x : y.v)
      if (x < 0.0f) x = 0.0f;
    return y;
  }
  static void store(float* p, V v) {
    for (int j = 0; j < NW; ++j) p[j] = v.v[j];
  }
  static V abs(V v) {
    for (float& x : v.v) x = std::fabs(x);
    return v;
  }
  static V sub(V a, V b) {
    V r;
    for (int j = 0; j < NW; ++j) r.v[j] = a.v[j] - b.v[j];
    return r;
  }
  static unsigned le_mask(V a, V b) {  // bit j: a[j] <= b[j] (false for NaN)
    unsigned m = 0;
    for (int j = 0; j < NW; ++j) m |= unsigned(a.v[j] <= b.v[j]) << j;
    return m;
  }
  static unsigned nonzero8(const float* p) {  // bit j set when p[j] != +-0 (NaN counts as nonzero)
    unsigned m = 0;
    for (int j = 0; j < 8; ++j) m |= unsigned(is_nonzero(p[j])) << j;
    return m;
  }
};

void dense_scalar16(const DenseArgs& g) { dense_impl<Portable<16>, 4>(g); }
void sparse_scalar16(const SparseSetArgs& g) { sparse_impl<Portable<16>>(g); }

bool cpu_has_avx2() {
#if defined(VPUNAS_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");  // the file is built with -mfma
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

// Best first: the zero-skipping kernel of each ISA before its dense one.
std::vector<Kernel> detect_kernels() {
  std::vector<Kernel> ks;
#ifdef VPUNAS_HAVE_AVX512
  if (cpu_has_avx512f()) {
    ks.push_back({"avx512_sparse", 16, &dense_avx512, &sparse_avx512});
    ks.push_back({"avx512", 16, &dense_avx512, nullptr});
  }
#endif
#ifdef VPUNAS_HAVE_AVX2
  if (cpu_has_avx2()) {
    ks.push_back({"avx2_sparse", 8, &dense_avx2, &sparse_avx2});
    ks.push_back({"avx2", 8, &dense_avx2, nullptr});
  }
#endif
  ks.push_back({"scalar_sparse", Portable<4>::W, &dense_scalar, &sparse_scalar});
  ks.push_back({"scalar", Portable<4>::W, &dense_scalar, nullptr});
  return ks;
}

// Visit order of the inputs (position -> input): the 4-lane tree part lane by lane, block by block, the
// 8 inputs of a (block, lane) together, then the rest in order. Packed weights are stored in this order.
std::vector<int> visit_order(int k, bool tree) {
  const int nb = tree ? k / 32 : 0;
  std::vector<int> order;
  order.reserve(size_t(k));
  for (int l = 0; l < 4; ++l)
    for (int i = 0; i < nb; ++i)
      for (int j = 0; j < 8; ++j) order.push_back(32 * i + 4 * j + l);
  for (int kk = 32 * nb; kk < k; ++kk) order.push_back(kk);
  return order;
}

// Appends panels of `nr` outputs from `outs` (all tree or all sequential) to `p`.
void append_panels(const DenseLayer& layer, const std::vector<int>& outs, bool tree, int nr, PackedDense* p) {
  const int k = layer.in;
  const std::vector<int> order = visit_order(k, tree);

  for (size_t first = 0; first < outs.size(); first += size_t(nr)) {
    Panel panel;
    panel.tree = tree;
    panel.ncols = int(std::min(outs.size() - first, size_t(nr)));
    panel.w_offset = p->weights.size();
    panel.col_offset = p->cols.size();
    bool consecutive = true;
    for (int j = 1; j < panel.ncols; ++j) consecutive = consecutive && outs[first + size_t(j)] == outs[first] + j;
    panel.first_col = consecutive ? outs[first] : -1;
    p->weights.resize(p->weights.size() + size_t(k) * size_t(nr), 0.0f);
    float* w = p->weights.data() + panel.w_offset;
    for (int j = 0; j < nr; ++j) {
      const bool valid = j < panel.ncols;
      const int o = valid ? outs[first + size_t(j)] : -1;
      p->cols.push_back(o);
      p->bias.push_back(valid ? layer.bias[size_t(o)] : 0.0f);
      if (!valid) continue;
      const float* row = layer.weight.data() + size_t(o) * size_t(k);
      for (int v = 0; v < k; ++v) w[size_t(v) * size_t(nr) + size_t(j)] = row[order[size_t(v)]];
    }
    p->panels.push_back(panel);
  }
}

}  // namespace

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void dense_scalar(const DenseArgs& g) { dense_impl<Portable<4>, 2>(g); }
void sparse_scalar(const SparseSetArgs& g) { sparse_impl<Portable<4>>(g); }

std::vector<int32_t> input_positions(int k) {
  const std::vector<int> order = visit_order(k, true);
  std::vector<int32_t> pos(order.size());
  for (size_t q = 0; q < order.size(); ++q) pos[size_t(order[q])] = int32_t(q);
  return pos;
}

namespace {

// `outs`: the set's outputs, in ascending order of out_pos. `near_zero` (tree sets only): near-zero outputs
// appended after them, weights and bias scaled by 2^kNearZeroScaleLog2 (see SparseSet; exact: a power of two,
// no overflow as |w| <= 2^-30 and |b| <= 2^60).
SparseSet sparse_set(const DenseLayer& layer, const std::vector<int>& outs, bool tree, int width,
                     const std::vector<int32_t>& out_pos, const std::vector<int>& near_zero = {}) {
  SparseSet set;
  set.tree = tree;
  const int regular = int(outs.size());
  set.near_zero_first = regular;
  set.n = regular + int(near_zero.size());
  set.nvec = (set.n + width - 1) / width;
  const size_t ld = size_t(set.nvec) * size_t(width);
  set.bias.assign(ld, 0.0f);
  set.wt.assign(size_t(layer.in) * ld, 0.0f);
  set.cols.assign(size_t(set.n), -1);
  if (!near_zero.empty()) {
    set.wmax.assign(ld, 0.0f);                                      // by entry, like bias
    for (size_t e = size_t(set.n); e < ld; ++e) set.bias[e] = -1.0f;  // padding: passes the proof
  }
  const std::vector<int> order = visit_order(layer.in, true);  // storage position -> input
  auto put = [&](size_t entry, size_t o, float scale) {
    set.cols[entry] = out_pos[o];
    set.bias[entry] = layer.bias[o] * scale;
    for (size_t q = 0; q < order.size(); ++q)
      set.wt[q * ld + entry] = layer.weight[o * size_t(layer.in) + size_t(order[q])] * scale;
  };
  for (size_t j = 0; j < outs.size(); ++j) put(j, size_t(outs[j]), 1.0f);
  for (size_t j = 0; j < near_zero.size(); ++j) {
    const size_t e = size_t(set.near_zero_first) + j;
    put(e, size_t(near_zero[j]), std::ldexp(1.0f, kNearZeroScaleLog2));
    for (size_t q = 0; q < order.size(); ++q) set.wmax[e] = std::max(set.wmax[e], std::fabs(set.wt[q * ld + e]));
  }
  if (set.n == 1)
    for (size_t q = 0; q < order.size(); ++q) set.w1.push_back(set.wt[q * ld]);
  return set;
}

// VPUNN sums output o in its 4-lane tree order when o's weight row starts 16-byte aligned: (o * in) % 4 == 0.
bool in_tree_order(int o, int in) { return (int64_t(o) * in) % 4 == 0; }

// A hidden ReLU output whose weights are all tiny (see SparseSet), provable for the usual inputs: some weight
// nonzero or the bias negative (else the proof needs bias <= -k 2^-84, and fails on every row).
bool is_near_zero_output(const DenseLayer& layer, int o) {
  const float b = layer.bias[size_t(o)];
  if (layer.act != Activation::Relu || layer.in > 4096 || !(std::fabs(b) <= 0x1p60f)) return false;
  float wmax = 0.0f;
  const float* row = layer.weight.data() + size_t(o) * size_t(layer.in);
  for (int k = 0; k < layer.in; ++k) {
    if (!(std::fabs(row[k]) <= kNearZeroMaxWeight)) return false;  // also false for NaN
    wmax = std::max(wmax, std::fabs(row[k]));
  }
  return wmax > 0.0f || b < 0.0f;
}

}  // namespace

PackedSparse pack_sparse(const DenseLayer& layer, int width, const std::vector<int32_t>& out_pos, bool hidden) {
  if (out_pos.size() != size_t(layer.out)) throw InputError("pack_sparse: out_pos must have one entry per output");
  PackedSparse p;
  p.in = layer.in;
  p.out = layer.out;
  p.width = width;
  p.act = layer.act;
  p.in_pos = input_positions(layer.in);
  for (float w : layer.weight) p.skip_zeros = p.skip_zeros && std::isfinite(w);
  std::vector<int> outs(size_t(layer.out));
  for (int o = 0; o < layer.out; ++o) outs[size_t(o)] = o;
  std::sort(outs.begin(), outs.end(), [&](int a, int b) { return out_pos[size_t(a)] < out_pos[size_t(b)]; });
  std::vector<int> tree, sequential, near_zero, near_zero_tree, near_zero_sequential;
  for (int o : outs) {
    const bool t = in_tree_order(o, layer.in);
    if (hidden && p.skip_zeros && is_near_zero_output(layer, o)) {
      near_zero.push_back(o);
      (t ? near_zero_tree : near_zero_sequential).push_back(o);
    } else {
      (t ? tree : sequential).push_back(o);
    }
  }
  p.tree = sparse_set(layer, tree, true, width, out_pos, near_zero);
  p.sequential = sparse_set(layer, sequential, false, width, out_pos);
  p.near_zero_tree = sparse_set(layer, near_zero_tree, true, width, out_pos);
  p.near_zero_sequential = sparse_set(layer, near_zero_sequential, false, width, out_pos);
  bool diagonal = hidden && layer.in == layer.out;
  for (int o = 0; diagonal && o < layer.out; ++o)
    for (int k = 0; diagonal && k < layer.in; ++k) {
      const float w = layer.weight[size_t(o) * size_t(layer.in) + size_t(k)];
      diagonal = k == o ? std::isfinite(w) : w == 0.0f;
    }
  if (diagonal) {
    for (int o = 0; o < layer.out; ++o) p.diagonal.push_back(layer.weight[size_t(o) * size_t(layer.in) + size_t(o)]);
    p.diagonal_bias = layer.bias;
    p.out_pos = out_pos;
  }
  return p;
}

bool diagonal_row(const PackedSparse& layer, const float* x, const int32_t* in_idx, float* y) {
  const int n = layer.in;
  uint32_t finite = 1;
  for (int k = 0; k < n; ++k) {
    uint32_t b;
    std::memcpy(&b, &x[k], sizeof b);
    finite &= uint32_t((b & 0x7F800000u) != 0x7F800000u);
  }
  if (!finite) return false;
  for (int o = 0; o < n; ++o) {
    float v = x[in_idx[o]] * layer.diagonal[size_t(o)] + layer.diagonal_bias[size_t(o)];  // no contraction here
    if (layer.act == Activation::Relu && v < 0.0f) v = 0.0f;
    if (layer.act == Activation::Sigmoid) v = sigmoid(v);
    y[layer.out_pos[size_t(o)]] = v;
  }
  return true;
}

void bind_sparse_set(const PackedSparse& layer, const SparseSet& set, SparseSetArgs* g) {
  g->k = layer.in;
  g->skip_zeros = layer.skip_zeros;
  g->act = layer.act;
  g->tree = set.tree;
  g->n = set.n;
  g->nvec = set.nvec;
  g->in_pos = layer.in_pos.data();
  g->wt = set.wt.data();
  g->w1 = set.w1.empty() ? nullptr : set.w1.data();
  g->bias = set.bias.data();
  g->cols = set.cols.data();
  g->near_zero_first = set.near_zero_first;
  g->wmax = set.wmax.empty() ? nullptr : set.wmax.data();
}

PackedDense pack_dense(const DenseLayer& layer, int nr) {
  PackedDense p;
  p.in = layer.in;
  p.out = layer.out;
  p.nr = nr;
  p.act = layer.act;
  std::vector<int> tree, sequential;
  for (int o = 0; o < layer.out; ++o) (in_tree_order(o, layer.in) ? tree : sequential).push_back(o);
  append_panels(layer, tree, true, nr, &p);
  append_panels(layer, sequential, false, nr, &p);
  return p;
}

void bind_layer(const PackedDense& layer, DenseArgs* g) {
  g->k = layer.in;
  g->act = layer.act;
  g->weights = layer.weights.data();
  g->bias = layer.bias.data();
  g->cols = layer.cols.data();
  g->panels = layer.panels.data();
  g->npanels = layer.panels.size();
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
  static const Kernel scalar16{"scalar16", 16, &dense_scalar16, nullptr};  // test kernels, see Portable
  static const Kernel scalar16_sparse{"scalar16_sparse", 16, &dense_scalar16, &sparse_scalar16};
  if (name == scalar16.name) return scalar16;
  if (name == scalar16_sparse.name) return scalar16_sparse;
  std::string have;
  for (const Kernel& k : ks) have += std::string(have.empty() ? "" : ", ") + k.name;
  throw InputError("MLP kernel '" + name + "' is not available on this CPU/build (available: " + have + ", auto)");
}

}  // namespace vpunas::vpunn::gemm
