// Latency kernels over a LUT matrix F [N blocks x M candidates] (row-major, ms):
//   * expected latency E = sum_i sum_j p_ij F_ij with p_i = softmax(alpha_i) over the valid candidates
//     of block i, and its gradient dE/dalpha_ij = p_ij (F_ij - E_i), E_i = sum_j p_ij F_ij;
//   * discrete queries: B architectures given as chosen candidate indices [B x N] -> B latencies,
//     and the number of them within a latency target.
// `mask` (nullable, 1 = valid) marks the ragged candidate lists; masked entries of alpha and F are
// ignored (any value, NaN included). All inputs are validated; bad input throws vpunas::InputError.
// Plain C++17, no Python; every function is re-entrant (no shared mutable state).
#pragma once
#include <cstdint>

namespace vpunas {
namespace latency {

// Forward (and, when grad_alpha != nullptr, the gradient of E w.r.t. alpha, computed in the same pass).
// probs: output [N x M] (nullable), grad_alpha: output [N x M] (nullable). Returns E.
template <class T>
double expected_latency(const T* alpha, const T* F, const uint8_t* mask, int64_t n_blocks, int64_t n_cands,
                        T* probs, T* grad_alpha);

// Validates F (finite on valid entries) and mask (each block has a valid candidate).
void check_lut_matrix(const double* F, const uint8_t* mask, int64_t n_blocks, int64_t n_cands, const char* who);

// Discrete latencies: out[b] = sum_i F[i, choices[b, i]]. IndexT: int8/uint8/int16/int32/int64.
// n_threads <= 0: use the hardware concurrency for large batches.
template <class IndexT>
void discrete_latency(const IndexT* choices, int64_t batch, const double* F, const uint8_t* mask,
                      int64_t n_blocks, int64_t n_cands, double* out, int n_threads);

// Number of architectures whose latency is <= target_ms.
template <class IndexT>
int64_t count_within(const IndexT* choices, int64_t batch, const double* F, const uint8_t* mask, int64_t n_blocks,
                     int64_t n_cands, double target_ms, int n_threads);

}  // namespace latency
}  // namespace vpunas
