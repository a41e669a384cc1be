// The dense-layer kernel body shared by the per-ISA files. Each including file defines a traits struct S
// (vector type V of S::W floats, zero/load/bcast/mul/add/relu/store) and instantiates dense_impl<S, MR>.
// Everything here has internal linkage (unnamed namespace): instances compiled with AVX flags must never be
// merged by the linker with the portable ones. The summation order is VPUNN's, see gemm.h; the including
// files switch floating-point contraction off so no multiply-add is fused into an FMA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "vpunn/gemm.h"

namespace vpunas::vpunn::gemm {
namespace {

// Dot products (before bias) of MR rows with the W columns of one panel, in VPUNN's order.
template <class S, int MR>
inline void panel_dots(const float* const* row, int k, const Panel& p, const float* w, typename S::V* s) {
  using V = typename S::V;
  constexpr int W = S::W;
  int k0 = 0;
  if (p.tree) {
    const int nb = k / 32;
    V lane[4][MR];
    for (int l = 0; l < 4; ++l) {
      V acc[MR];
      for (int r = 0; r < MR; ++r) acc[r] = S::zero();
      const float* wl = w + size_t(l) * size_t(nb) * 8 * W;
      for (int i = 0; i < nb; ++i) {
        // Pairs of weight vectors stay in registers while every row of the tile uses them; per row only
        // the running partial sums t (p0..p3) and v (p4..p7) stay live.
        const float* wp = wl + size_t(i) * 8 * W;
        const float* x[MR];
        for (int r = 0; r < MR; ++r) x[r] = row[r] + 32 * i + l;
        V t[MR], v[MR];
        V wa = S::load(wp), wb = S::load(wp + W);
        for (int r = 0; r < MR; ++r) t[r] = S::add(S::mul(S::bcast(x[r][0]), wa), S::mul(S::bcast(x[r][4]), wb));
        wa = S::load(wp + 2 * W), wb = S::load(wp + 3 * W);
        for (int r = 0; r < MR; ++r)
          t[r] = S::add(t[r], S::add(S::mul(S::bcast(x[r][8]), wa), S::mul(S::bcast(x[r][12]), wb)));
        wa = S::load(wp + 4 * W), wb = S::load(wp + 5 * W);
        for (int r = 0; r < MR; ++r) v[r] = S::add(S::mul(S::bcast(x[r][16]), wa), S::mul(S::bcast(x[r][20]), wb));
        wa = S::load(wp + 6 * W), wb = S::load(wp + 7 * W);
        for (int r = 0; r < MR; ++r) {
          v[r] = S::add(v[r], S::add(S::mul(S::bcast(x[r][24]), wa), S::mul(S::bcast(x[r][28]), wb)));
          acc[r] = S::add(acc[r], S::add(t[r], v[r]));
        }
      }
      for (int r = 0; r < MR; ++r) lane[l][r] = acc[r];
    }
    for (int r = 0; r < MR; ++r) s[r] = S::add(S::add(lane[0][r], lane[1][r]), S::add(lane[2][r], lane[3][r]));
    k0 = 32 * nb;
    w += size_t(4) * size_t(nb) * 8 * W;
  } else {
    for (int r = 0; r < MR; ++r) s[r] = S::zero();
  }
  for (int kk = k0; kk < k; ++kk, w += W) {
    const V wk = S::load(w);
    for (int r = 0; r < MR; ++r) s[r] = S::add(s[r], S::mul(S::bcast(row[r][kk]), wk));
  }
}

// Adds bias, applies the activation and writes the MR x W tile of panel p at rows r0.. .
template <class S, int MR>
inline void store_tile(const DenseArgs& g, const Panel& p, size_t r0, const typename S::V* s) {
  using V = typename S::V;
  constexpr int W = S::W;
  const V bias = S::load(g.bias + p.col_offset);
  for (int r = 0; r < MR; ++r) {
    V y = S::add(s[r], bias);
    if (g.act == Activation::Relu) y = S::relu(y);
    float* out = g.c + (r0 + size_t(r)) * g.ldc;
    alignas(64) float tmp[W];
    if (g.act != Activation::Sigmoid && p.first_col >= 0 && p.ncols == W) {
      S::store(out + p.first_col, y);
      continue;
    }
    S::store(tmp, y);
    if (g.act == Activation::Sigmoid)
      for (int j = 0; j < p.ncols; ++j) tmp[j] = sigmoid(tmp[j]);
    const int32_t* cols = g.cols + p.col_offset;
    for (int j = 0; j < p.ncols; ++j) out[cols[j]] = tmp[j];
  }
}

template <class S, int MR>
inline void panel_rows(const DenseArgs& g, const Panel& p, size_t r0) {
  using V = typename S::V;
  const float* row[MR];
  for (int r = 0; r < MR; ++r) row[r] = g.a + (r0 + size_t(r)) * g.lda;
  V s[MR];
  panel_dots<S, MR>(row, g.k, p, g.weights + p.w_offset, s);
  store_tile<S, MR>(g, p, r0, s);
}

// Two sequential (one-by-one) panels at once: twice the independent add chains, so the adds' latency
// no longer limits the layers with K % 4 != 0.
template <class S, int MR>
inline void panel_pair_rows(const DenseArgs& g, const Panel& p0, const Panel& p1, size_t r0) {
  using V = typename S::V;
  constexpr int W = S::W;
  const float* row[MR];
  for (int r = 0; r < MR; ++r) row[r] = g.a + (r0 + size_t(r)) * g.lda;
  V s0[MR], s1[MR];
  for (int r = 0; r < MR; ++r) s0[r] = s1[r] = S::zero();
  const float* w0 = g.weights + p0.w_offset;
  const float* w1 = g.weights + p1.w_offset;
  for (int kk = 0; kk < g.k; ++kk) {
    const V a = S::load(w0 + size_t(kk) * W), b = S::load(w1 + size_t(kk) * W);
    for (int r = 0; r < MR; ++r) {
      const V x = S::bcast(row[r][kk]);
      s0[r] = S::add(s0[r], S::mul(x, a));
      s1[r] = S::add(s1[r], S::mul(x, b));
    }
  }
  store_tile<S, MR>(g, p0, r0, s0);
  store_tile<S, MR>(g, p1, r0, s1);
}

// Row-tile height or chunk width as a type (no std:: templates in these files, see above).
template <int N>
struct Rows {
  static constexpr int value = N;
};

template <class S, int MR, class Tile>
inline void over_rows(const DenseArgs& g, Tile&& tile) {
  size_t r = 0;
  for (; r + MR <= g.m; r += MR) tile(Rows<MR>(), r);
  if constexpr (MR > 2) {
    for (; r + 2 <= g.m; r += 2) tile(Rows<2>(), r);
  }
  for (; r < g.m; ++r) tile(Rows<1>(), r);
}

// Whole layer: panel-outer (its weights stay in L1), rows inner in register tiles of MR (then smaller).
template <class S, int MR>
inline void dense_impl(const DenseArgs& g) {
  for (size_t pi = 0; pi < g.npanels; ++pi) {
    const Panel& p = g.panels[pi];
    if (!p.tree && pi + 1 < g.npanels && !g.panels[pi + 1].tree) {
      const Panel& q = g.panels[++pi];
      over_rows<S, MR>(g, [&](auto mr, size_t r) { panel_pair_rows<S, decltype(mr)::value>(g, p, q, r); });
    } else {
      over_rows<S, MR>(g, [&](auto mr, size_t r) { panel_rows<S, decltype(mr)::value>(g, p, r); });
    }
  }
}

// ---- Zero-skipping block kernel (see SparseSet in gemm.h).
// Loop order: lane, block of 32 inputs, row. The weights of one (block, lane) group (8 adjacent rows of
// W^T) are fetched from L2 once and then serve every row of the call from L1; each row prunes the
// group's add tree to its own nonzero inputs, with the tree code specialised per 8-bit presence mask.

#if defined(__GNUC__)
#define VPUNAS_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define VPUNAS_ALWAYS_INLINE inline
#endif

// Sum of the present products j in [LO, LO + N) of one (block, lane) of VPUNN's tree, M = bit mask of
// the present inputs: the balanced tree ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)) with absent
// leaves removed and single-child nodes passed through. wv[j] = weights of input j (loaded when present).
// Always inlined: with 256 masks per kernel GCC's inliner gave up on the portable kernel (a call per tree
// node made it 6x slower than the dense one).
template <class S, unsigned M, int LO, int N>
struct PrunedTree {
  static constexpr bool any = (M & (((1u << N) - 1u) << LO)) != 0;
  static VPUNAS_ALWAYS_INLINE typename S::V eval(const typename S::V* xb, const typename S::V* wv) {
    if constexpr (N == 1) {
      return S::mul(xb[LO], wv[LO]);
    } else {
      using L = PrunedTree<S, M, LO, N / 2>;
      using R = PrunedTree<S, M, LO + N / 2, N / 2>;
      if constexpr (L::any && R::any) return S::add(L::eval(xb, wv), R::eval(xb, wv));
      else if constexpr (L::any) return L::eval(xb, wv);
      else return R::eval(xb, wv);
    }
  }
};

// acc[v] += pruned tree of one (block, lane) of one row, for every output vector v: x8[j] is input j of
// the group, w + j * ld its weight row.
using TreeBlockFn = void (*)(const float* x8, const float* w, size_t ld, float* acc, int nvec);

template <class S, unsigned M>
void tree_block(const float* x8, const float* w, size_t ld, float* acc, int nvec) {
  using V = typename S::V;
  constexpr int W = S::W;
  V xb[8];
  for (int j = 0; j < 8; ++j) xb[j] = S::bcast((M >> j) & 1u ? x8[j] : 0.0f);
#pragma GCC unroll 2
  for (int v = 0; v < nvec; ++v) {
    V wv[8];  // absent entries are never read (zero keeps the compiler's uninitialised-use check quiet)
    for (int j = 0; j < 8; ++j) wv[j] = (M >> j) & 1u ? S::load(w + size_t(j) * ld + size_t(v) * W) : S::zero();
    float* a = acc + size_t(v) * W;
    S::store(a, S::add(S::load(a), PrunedTree<S, M, 0, 8>::eval(xb, wv)));
  }
}

// One entry per mask, built at compile time (no std:: templates here, see the top of this file).
template <class S, unsigned M>
constexpr void fill_tree_table(TreeBlockFn* t) {
  t[M] = &tree_block<S, M>;
  if constexpr (M > 1) fill_tree_table<S, M - 1>(t);
}

template <class S>
struct TreeTable {
  TreeBlockFn fn[256] = {};
  constexpr TreeTable() { fill_tree_table<S, 255>(fn); }
};

template <class S>
constexpr TreeTable<S> kTreeTable{};

// s[v] += x[p] * wt[p][v] over the listed input positions p, C vectors in registers.
template <class S, int C>
inline void sequential_chunk(const float* x, const int32_t* idx, int nz, const float* wt, size_t ld, float* s) {
  using V = typename S::V;
  constexpr int W = S::W;
  V acc[C];
  for (int c = 0; c < C; ++c) acc[c] = S::load(s + c * W);
  for (int q = 0; q < nz; ++q) {
    const int p = idx[q];
    const float* w = wt + size_t(p) * ld;
    const V xb = S::bcast(x[p]);
    for (int c = 0; c < C; ++c) acc[c] = S::add(acc[c], S::mul(xb, S::load(w + c * W)));
  }
  for (int c = 0; c < C; ++c) S::store(s + c * W, acc[c]);
}

// x != +-0 from the bits (NaN counts as nonzero), without a branch or a floating-point compare.
inline bool is_nonzero(float x) {
  uint32_t b;
  __builtin_memcpy(&b, &x, sizeof b);
  return (b & 0x7FFFFFFFu) != 0;
}

// One-output tree sets (the last layer of every VPUNN net): a traits struct may provide
// S::tree_dot1(x, w1, nb, s) = VPUNN's 4-lane tree sum over the first 32 * nb inputs of one row (x and w1 by
// storage position), vectorised across the 8 inputs of a group instead of across outputs.
template <class S>
inline auto tree_dot1(int, const float* x, const float* w1, int nb, float* s) -> decltype(S::tree_dot1(x, w1, nb, s)) {
  return S::tree_dot1(x, w1, nb, s);
}
template <class S>
inline bool tree_dot1(long, const float*, const float*, int, float*) {
  return false;
}

// One vector of finished dot products: at `a`, or, when the lanes were left for the output pass (`fused`), VPUNN's
// (l0 + l1) + (l2 + l3) of the 4 lane sums at a, a + lane_stride, ...
template <class S>
inline typename S::V dot_vector(const float* a, size_t lane_stride, bool fused) {
  if (!fused) return S::load(a);
  return S::add(S::add(S::load(a), S::load(a + lane_stride)),
                S::add(S::load(a + 2 * lane_stride), S::load(a + 3 * lane_stride)));
}

// Upper bound of sum_p |x[p]| over the k storage positions of a row: float sums per vector lane (each of at
// most k terms, so below the exact sum by at most gamma_k of it), combined in double, times 1 + 2 gamma_k.
// NaN or inf inputs give NaN or inf, and every comparison with that fails.
template <class S>
inline double abs_sum_bound(const float* x, int k) {
  using V = typename S::V;
  constexpr int W = S::W;
  V acc = S::zero();
  int p = 0;
  for (; p + W <= k; p += W) acc = S::add(acc, S::abs(S::load(x + p)));
  alignas(64) float lanes[W];
  S::store(lanes, acc);
  double sum = 0.0;
  for (int j = 0; j < W; ++j) sum += double(lanes[j]);
  for (; p < k; ++p) sum += double(__builtin_fabsf(x[p]));
  const double ku = double(k) * 0x1p-24;
  return sum * (1.0 + 2.0 * ku / (1.0 - ku));
}

// The near-zero proof for one row (see SparseSet): d = the dot product of an entry with the weights scaled by
// 2^s, b = its scaled bias. VPUNN's unscaled sum (times 2^s) and ours are each within gamma_{k+1} S plus k
// subnormal roundings (2^-150 2^s each) of the exact scaled sum, S = sum |x_i| |w_i| 2^s <= abs_sum * wmax, so
// d + b + B <= 0 with B = 2 gamma_{k+1} S + k 2^-84 (s = 64) proves VPUNN's dot + bias <= 0: its ReLU output is
// +-0. Checked in float as fl(d + b) <= -fl(fl(R wmax) + slack) with R and slack rounded up by 2^-18 relative,
// which covers the float roundings of the check (each <= 2^-24 relative). Writes +0 to every near-zero entry and
// returns true, or writes nothing and returns false.
template <class S>
inline bool prove_near_zero_row(const SparseSetArgs& g, const float* x, const float* dots, size_t lane_stride,
                                bool fused, float* y) {
  using V = typename S::V;
  constexpr int W = S::W;
  static_assert(kNearZeroScaleLog2 == 64, "the slack below assumes a 2^64 scale");
  const double k1u = double(g.k + 1) * 0x1p-24;
  const double margin = 1.0 + 0x1p-18;
  const V rounding = S::bcast(float(2.0 * k1u / (1.0 - k1u) * abs_sum_bound<S>(x, g.k) * margin));
  const V slack = S::bcast(float(double(g.k) * 0x1p-84 * margin));
  const V lowest = S::bcast(-0x1.fffffep127f);
  const int first_vec = g.near_zero_first / W;
  for (int v = first_vec; v < g.nvec; ++v) {
    const V lhs = S::add(dot_vector<S>(dots + size_t(v) * W, lane_stride, fused), S::load(g.bias + size_t(v) * W));
    const V bound = S::add(S::mul(rounding, S::load(g.wmax + size_t(v) * W)), slack);
    // Lanes to prove: entries in [near_zero_first, n) (the padding past n has bias -1 and wmax 0, so it passes).
    const int skip = v == first_vec ? g.near_zero_first - v * W : 0;
    const unsigned need = ((1u << W) - 1u) & ~((1u << skip) - 1u);
    // A partial sum that overflowed leaves d infinite (or NaN), and the bound no longer holds: d must be finite.
    const unsigned proven = S::le_mask(lhs, S::sub(S::zero(), bound)) & S::le_mask(lowest, lhs);
    if ((proven & need) != need) return false;
  }
  for (int e = g.near_zero_first; e < g.n; ++e) y[g.cols[e]] = 0.0f;
  return true;
}

// Sets of at most this many output vectors evaluate whole groups (see sparse_impl).
constexpr int kDenseGroupMaxVecs = 4;

// One order set of one layer for a block of rows: dot products in VPUNN's order over each row's nonzero
// inputs, then bias and activation, written to the set's output positions.
template <class S>
inline void sparse_impl(const SparseSetArgs& g) {
  using V = typename S::V;
  constexpr int W = S::W;
  const int nvec = g.nvec, rows = g.rows;
  const size_t ld = size_t(nvec) * W;
  float* dots = g.scratch;                       // [rows][ld]
  float* lanes = g.scratch + size_t(rows) * ld;  // [4][rows][ld]
  auto row_x = [&](int r) { return g.x + size_t(r) * g.ldx; };
  const int nb = g.tree ? g.k / 32 : 0;
  bool tree_done = false;
  if (g.tree && g.n == 1 && g.w1 != nullptr) {
    for (int r = 0; r < rows; ++r) {
      float* d = dots + size_t(r) * ld;
      for (size_t i = 0; i < ld; ++i) d[i] = 0.0f;
      tree_done = tree_dot1<S>(0, row_x(r), g.w1, nb, d);
      if (!tree_done) break;
    }
  }
  if (g.tree && !tree_done) {
    // Narrow sets (e.g. the 1-output last layer where S has no tree_dot1) evaluate every product of a
    // group: a call then does too little work to pay for a mispredicted per-mask target, and one target is
    // always predicted. Exact: that is VPUNN's own unpruned sum.
    const bool sparse_groups = g.skip_zeros && nvec > kDenseGroupMaxVecs;
    for (int l = 0; l < 4; ++l) {
      float* lane = lanes + size_t(l) * size_t(rows) * ld;
      for (size_t i = 0; i < size_t(rows) * ld; ++i) lane[i] = 0.0f;
      for (int i = 0; i < nb; ++i) {
        const size_t group = size_t(8 * (l * nb + i));  // storage position of the group's first input
        const float* w = g.wt + group * ld;
        // Every row's tree function first, then the calls: each call's target is known long before the
        // call issues, so a mispredicted target costs a short refetch instead of a pipeline drain.
        TreeBlockFn fn[kSparseBlockRows];
        int live[kSparseBlockRows];
        int calls = 0;
        for (int r = 0; r < rows; ++r) {
          const unsigned m = sparse_groups ? S::nonzero8(row_x(r) + group) : 0xFFu;
          fn[calls] = kTreeTable<S>.fn[m];
          live[calls] = r;
          calls += int(m != 0);
        }
        for (int q = 0; q < calls; ++q) fn[q](row_x(live[q]) + group, w, ld, lane + size_t(live[q]) * ld, nvec);
      }
    }
  }
  // Layers with K % 32 == 0 (no one-by-one inputs) combine the lanes in the output pass below instead.
  const int span = g.k - 32 * nb;
  const bool fused = g.tree && !tree_done && span == 0;
  const size_t lane_stride = size_t(rows) * ld;
  if (g.tree && !tree_done && !fused) {
    for (size_t i = 0; i < size_t(rows) * ld; i += W) {
      const float* a = lanes + i;
      S::store(dots + i, S::add(S::add(S::load(a), S::load(a + lane_stride)),
                                S::add(S::load(a + 2 * lane_stride), S::load(a + 3 * lane_stride))));
    }
  } else if (!g.tree) {
    for (size_t i = 0; i < size_t(rows) * ld; ++i) dots[i] = 0.0f;
  }

  // The one-by-one part, inputs k = 32 nb .. k-1 in order: each row's nonzero positions (branch-free: the
  // pattern of zeros is unpredictable), then output chunks outer, rows inner, so a chunk's weights stay
  // in L1 for the whole block.
  const int k0 = 32 * nb;
  int32_t* nzs = g.index;         // [rows]
  int32_t* idx = g.index + rows;  // [rows][span]
  bool any_nz = false;
  for (int r = 0; r < rows; ++r) {
    const float* x = row_x(r);
    int32_t* ir = idx + size_t(r) * size_t(span);
    int nz = 0;
    for (int k = k0; k < g.k; ++k) {
      const int p = g.in_pos[k];
      ir[nz] = p;
      nz += int(!g.skip_zeros || is_nonzero(x[p]));
    }
    nzs[r] = nz;
    any_nz = any_nz || nz > 0;
  }
  if (any_nz) {
    // Chunks of up to 8 vectors: 8 independent add chains per row keep the adds' latency hidden.
    int v = 0;
    auto chunks = [&](auto c) {
      constexpr int C = decltype(c)::value;
      for (; v + C <= nvec; v += C)
        for (int r = 0; r < rows; ++r)
          sequential_chunk<S, C>(row_x(r), idx + size_t(r) * size_t(span), nzs[r], g.wt + v * W, ld,
                                 dots + size_t(r) * ld + v * W);
    };
    chunks(Rows<8>());
    chunks(Rows<4>());
    chunks(Rows<2>());
    chunks(Rows<1>());
  }

  const int regular_vecs = (g.near_zero_first + W - 1) / W;
  for (int r = 0; r < rows; ++r) {
    const float* sr = (fused ? lanes : dots) + size_t(r) * ld;
    float* y = g.y + size_t(r) * g.ldy;
    if (g.near_zero_first < g.n) g.failed[r] = !prove_near_zero_row<S>(g, row_x(r), sr, lane_stride, fused, y);
    for (int v = 0; v < regular_vecs; ++v) {
      V out = S::add(dot_vector<S>(sr + size_t(v) * W, lane_stride, fused), S::load(g.bias + size_t(v) * W));
      if (g.act == Activation::Relu) out = S::relu(out);
      const int first = v * W, count = g.near_zero_first - first < W ? g.near_zero_first - first : W;
      const int32_t* cols = g.cols + first;
      if (g.act != Activation::Sigmoid && count == W && cols[W - 1] - cols[0] == W - 1) {
        S::store(y + cols[0], out);  // ascending positions W apart at the ends: contiguous
        continue;
      }
      alignas(64) float tmp[W];
      S::store(tmp, out);
      if (g.act == Activation::Sigmoid)
        for (int j = 0; j < count; ++j) tmp[j] = sigmoid(tmp[j]);
      for (int j = 0; j < count; ++j) y[cols[j]] = tmp[j];
    }
  }
}

}  // namespace
}  // namespace vpunas::vpunn::gemm
