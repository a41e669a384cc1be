// The dense-layer kernel body shared by the per-ISA files. Each including file defines a traits struct S
// (vector type V of S::W floats, zero/load/bcast/mul/add/relu/store) and instantiates dense_impl<S, MR>.
// Everything here has internal linkage (unnamed namespace): instances compiled with AVX flags must never be
// merged by the linker with the portable ones. The summation order is VPUNN's, see gemm.h; the including
// files switch floating-point contraction off so no multiply-add is fused into an FMA.
#pragma once
#include <cstddef>

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

}  // namespace
}  // namespace vpunas::vpunn::gemm
