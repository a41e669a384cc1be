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

// Row-tile height as a type (no std:: templates in these files, see above).
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

// ---- Zero-skipping single-row kernel (see SparseSet in gemm.h).

// Sum of the present products j in [LO, LO + N) of one (block, lane) of VPUNN's tree, M = bit mask of
// the present inputs: the balanced tree ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)) with absent
// leaves removed and single-child nodes passed through. wv[j] = weights of input j (loaded when present).
template <class S, unsigned M, int LO, int N>
struct PrunedTree {
  static constexpr bool any = (M & (((1u << N) - 1u) << LO)) != 0;
  static typename S::V eval(const typename S::V* xb, const typename S::V* wv) {
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

// For R rows at once (sharing each weight load), acc_r[v] += pruned tree of one (block, lane), for every
// output vector v. x4[r][4 j] is input j of the lane in row r, w + j * ldj its weight row (ldj = 4 rows of
// W^T); row r's accumulators are at acc + r * acc_stride. M is the union of the rows' nonzero inputs:
// a row's own zeros inside M add +-0 products, which is exact too (the unpruned sum is VPUNN's).
template <int R>
struct TreeBlock {
  using Fn = void (*)(const float* const* x4, const float* w, size_t ldj, float* acc, size_t acc_stride, int nvec);
};

template <class S, int R, unsigned M>
void tree_block(const float* const* x4, const float* w, size_t ldj, float* acc, size_t acc_stride, int nvec) {
  using V = typename S::V;
  constexpr int W = S::W;
  V xb[R][8];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 8; ++j) xb[r][j] = S::bcast((M >> j) & 1u ? x4[r][4 * j] : 0.0f);
  for (int v = 0; v < nvec; ++v) {
    V wv[8];  // absent entries are never read (zero keeps the compiler's uninitialised-use check quiet)
    for (int j = 0; j < 8; ++j) wv[j] = (M >> j) & 1u ? S::load(w + size_t(j) * ldj + size_t(v) * W) : S::zero();
    for (int r = 0; r < R; ++r) {
      float* a = acc + size_t(r) * acc_stride + size_t(v) * W;
      S::store(a, S::add(S::load(a), PrunedTree<S, M, 0, 8>::eval(xb[r], wv)));
    }
  }
}

// One entry per mask, built at compile time (no std:: templates here, see the top of this file).
template <class S, int R, unsigned M>
constexpr void fill_tree_table(typename TreeBlock<R>::Fn* t) {
  t[M] = &tree_block<S, R, M>;
  if constexpr (M > 1) fill_tree_table<S, R, M - 1>(t);
}

template <class S, int R>
struct TreeTable {
  typename TreeBlock<R>::Fn fn[256] = {};
  constexpr TreeTable() { fill_tree_table<S, R, 255>(fn); }
};

template <class S, int R>
constexpr TreeTable<S, R> kTreeTable{};

// s_r[v] += x_r[k] * wt[k][v] over the listed inputs k, C vectors of R rows in registers at a time.
template <class S, int R, int C>
inline void sequential_chunk(const float* const* x, const int32_t* idx, int nz, const float* wt, size_t ld,
                             float* s, size_t s_stride) {
  using V = typename S::V;
  constexpr int W = S::W;
  V acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = S::load(s + size_t(r) * s_stride + c * W);
  for (int q = 0; q < nz; ++q) {
    const int k = idx[q];
    const float* w = wt + size_t(k) * ld;
    V wv[C];
    for (int c = 0; c < C; ++c) wv[c] = S::load(w + c * W);
    for (int r = 0; r < R; ++r) {
      const V xb = S::bcast(x[r][k]);
      for (int c = 0; c < C; ++c) acc[r][c] = S::add(acc[r][c], S::mul(xb, wv[c]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) S::store(s + size_t(r) * s_stride + c * W, acc[r][c]);
}

template <class S, int R>
inline void sequential_part(const float* const* x, const int32_t* idx, int nz, const float* wt, int nvec, float* s,
                            size_t s_stride) {
  constexpr int W = S::W;
  constexpr int C = R == 1 ? 4 : R <= 3 ? 2 : 1;
  const size_t ld = size_t(nvec) * W;
  int v = 0;
  for (; v + C <= nvec; v += C) sequential_chunk<S, R, C>(x, idx, nz, wt + v * W, ld, s + v * W, s_stride);
  for (; v < nvec; ++v) sequential_chunk<S, R, 1>(x, idx, nz, wt + v * W, ld, s + v * W, s_stride);
}

// x != +-0 from the bits (NaN counts as nonzero), without a branch or a floating-point compare.
inline bool is_nonzero(float x) {
  uint32_t b;
  __builtin_memcpy(&b, &x, sizeof b);
  return (b & 0x7FFFFFFFu) != 0;
}

// One order set of one layer for R rows: dot products in VPUNN's order over the inputs that are nonzero
// in any of the rows, then bias and activation, written to the set's output columns.
template <class S, int R>
inline void sparse_rows(const SparseSetArgs& g, const float* const* x, float* const* y) {
  using V = typename S::V;
  constexpr int W = S::W;
  const int nvec = g.nvec;
  const size_t ld = size_t(nvec) * W, stride = 5 * ld;  // per row: [ld] dot products, 4 lanes x [ld]
  float* s = g.scratch;
  int k0 = 0;
  if (g.tree) {
    const int nb = g.k / 32;
    for (int r = 0; r < R; ++r)
      for (size_t i = 0; i < 4 * ld; ++i) s[size_t(r) * stride + ld + i] = 0.0f;
    for (int i = 0; i < nb; ++i) {
      for (int l = 0; l < 4; ++l) {
        unsigned m = g.skip_zeros ? 0u : 0xFFu;
        const float* x4[R];
        for (int r = 0; r < R; ++r) {
          x4[r] = x[r] + 32 * i + l;
          for (int j = 0; j < 8; ++j) m |= unsigned(is_nonzero(x4[r][4 * j])) << j;
        }
        if (m)
          kTreeTable<S, R>.fn[m](x4, g.wt + size_t(32 * i + l) * ld, 4 * ld, s + ld + size_t(l) * ld, stride, nvec);
      }
    }
    for (int r = 0; r < R; ++r) {
      float* sr = s + size_t(r) * stride;
      for (int v = 0; v < nvec; ++v) {
        const float* a = sr + ld + size_t(v) * W;
        S::store(sr + size_t(v) * W,
                 S::add(S::add(S::load(a), S::load(a + ld)), S::add(S::load(a + 2 * ld), S::load(a + 3 * ld))));
      }
    }
    k0 = 32 * nb;
  } else {
    for (int r = 0; r < R; ++r)
      for (size_t i = 0; i < ld; ++i) s[size_t(r) * stride + i] = 0.0f;
  }
  int nz = 0;
  for (int k = k0; k < g.k; ++k) {  // branch-free: the pattern of zeros is unpredictable
    bool any = !g.skip_zeros;
    for (int r = 0; r < R; ++r) any = any || is_nonzero(x[r][k]);
    g.index[nz] = k;
    nz += int(any);
  }
  if (nz) sequential_part<S, R>(x, g.index, nz, g.wt, nvec, s, stride);

  for (int r = 0; r < R; ++r) {
    const float* sr = s + size_t(r) * stride;
    for (int v = 0; v < nvec; ++v) {
      V out = S::add(S::load(sr + size_t(v) * W), S::load(g.bias + size_t(v) * W));
      if (g.act == Activation::Relu) out = S::relu(out);
      const int first = v * W, count = g.n - first < W ? g.n - first : W;
      if (g.act != Activation::Sigmoid && g.first_col >= 0 && count == W) {
        S::store(y[r] + g.first_col + first, out);
        continue;
      }
      alignas(64) float tmp[W];
      S::store(tmp, out);
      if (g.act == Activation::Sigmoid)
        for (int j = 0; j < count; ++j) tmp[j] = sigmoid(tmp[j]);
      for (int j = 0; j < count; ++j) y[r][g.cols[first + j]] = tmp[j];
    }
  }
}

template <class S>
inline void sparse_impl(const SparseSetArgs& g) {
  switch (g.rows) {
    case 4: return sparse_rows<S, 4>(g, g.x, g.y);
    case 3: return sparse_rows<S, 3>(g, g.x, g.y);
    case 2: return sparse_rows<S, 2>(g, g.x, g.y);
    default: return sparse_rows<S, 1>(g, g.x, g.y);
  }
}

}  // namespace
}  // namespace vpunas::vpunn::gemm
