// Expected-latency and discrete-architecture latency kernels (see expected_latency.h).
#include "latency/expected_latency.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace vpunas {
namespace latency {
namespace {

std::string where(int64_t i, int64_t j) {
  std::ostringstream s;
  s << "[" << i << ", " << j << "]";
  return s.str();
}

std::string describe(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+inf" : "-inf";
}

void check_dims(int64_t n_blocks, int64_t n_cands, const char* who) {
  if (n_blocks <= 0 || n_cands <= 0) {
    throw InputError(std::string(who) + ": the LUT matrix needs at least one block and one candidate, got " +
                     std::to_string(n_blocks) + " x " + std::to_string(n_cands));
  }
}

inline bool valid(const uint8_t* mask, int64_t k) { return mask == nullptr || mask[k] != 0; }

}  // namespace

void check_lut_matrix(const double* F, const uint8_t* mask, int64_t n_blocks, int64_t n_cands, const char* who) {
  check_dims(n_blocks, n_cands, who);
  for (int64_t i = 0; i < n_blocks; ++i) {
    int64_t n_valid = 0;
    for (int64_t j = 0; j < n_cands; ++j) {
      const int64_t k = i * n_cands + j;
      if (!valid(mask, k)) continue;
      ++n_valid;
      if (!std::isfinite(F[k])) {
        throw InputError(std::string(who) + ": latency F" + where(i, j) + " is " + describe(F[k]) +
                         "; every valid candidate needs a finite latency (mask out missing candidates)");
      }
    }
    if (n_valid == 0) {
      throw InputError(std::string(who) + ": block " + std::to_string(i) +
                       " has no valid candidate (its mask row is all false)");
    }
  }
}

template <class T>
double expected_latency(const T* alpha, const T* F, const uint8_t* mask, int64_t n_blocks, int64_t n_cands,
                        T* probs, T* grad_alpha) {
  const char* who = "expected_latency";
  check_dims(n_blocks, n_cands, who);
  std::vector<double> e(static_cast<size_t>(n_cands));  // exp(alpha - max) of one block
  double total = 0.0;
  for (int64_t i = 0; i < n_blocks; ++i) {
    const T* a = alpha + i * n_cands;
    const T* f = F + i * n_cands;
    const uint8_t* m = mask ? mask + i * n_cands : nullptr;
    double a_max = -std::numeric_limits<double>::infinity();
    int64_t n_valid = 0;
    for (int64_t j = 0; j < n_cands; ++j) {
      if (!valid(m, j)) continue;
      ++n_valid;
      if (!std::isfinite(static_cast<double>(a[j]))) {
        throw InputError(std::string(who) + ": alpha" + where(i, j) + " is " + describe(a[j]) +
                         "; architecture logits must be finite (check the learning rate of the arch optimizer)");
      }
      if (!std::isfinite(static_cast<double>(f[j]))) {
        throw InputError(std::string(who) + ": latency F" + where(i, j) + " is " + describe(f[j]) +
                         "; every valid candidate needs a finite latency (mask out missing candidates)");
      }
      a_max = std::max(a_max, static_cast<double>(a[j]));
    }
    if (n_valid == 0) {
      throw InputError(std::string(who) + ": block " + std::to_string(i) +
                       " has no valid candidate (its mask row is all false)");
    }
    double z = 0.0;
    for (int64_t j = 0; j < n_cands; ++j) {
      e[j] = valid(m, j) ? std::exp(static_cast<double>(a[j]) - a_max) : 0.0;
      z += e[j];
    }
    double e_block = 0.0;
    for (int64_t j = 0; j < n_cands; ++j) {
      e[j] /= z;
      if (e[j] != 0.0) e_block += e[j] * static_cast<double>(f[j]);
    }
    total += e_block;
    if (probs) {
      for (int64_t j = 0; j < n_cands; ++j) probs[i * n_cands + j] = static_cast<T>(e[j]);
    }
    if (grad_alpha) {
      for (int64_t j = 0; j < n_cands; ++j) {
        grad_alpha[i * n_cands + j] = e[j] == 0.0 ? T(0) : static_cast<T>(e[j] * (static_cast<double>(f[j]) - e_block));
      }
    }
  }
  return total;
}

template double expected_latency<float>(const float*, const float*, const uint8_t*, int64_t, int64_t, float*, float*);
template double expected_latency<double>(const double*, const double*, const uint8_t*, int64_t, int64_t, double*,
                                         double*);

namespace {

// Look-up plan of the discrete kernels. Blocks are taken in pairs: pair_tab[p] holds
// F[2p][a] + F[2p+1][b] at (a << shift) | b, so one load + add serves two blocks (the choice matrix
// is read anyway; the table is small enough for L1). An odd last block uses F directly. Masked entries
// are NaN in both, so an architecture that picks one sums to NaN and is reported.
struct LookupPlan {
  std::vector<double> Fw;        // F with NaN at masked entries, [n_blocks x n_cands]
  std::vector<double> pair_tab;  // [n_pairs x (1 << 2 * shift)]; empty when pairing is off
  int shift = 0;
  int64_t n_blocks = 0, n_pairs = 0;
  uint64_t n_cands = 0;
};

LookupPlan make_plan(const double* F, const uint8_t* mask, int64_t n_blocks, int64_t n_cands) {
  LookupPlan plan;
  plan.n_blocks = n_blocks;
  plan.n_cands = static_cast<uint64_t>(n_cands);
  plan.Fw.assign(F, F + n_blocks * n_cands);
  if (mask) {
    for (int64_t k = 0; k < n_blocks * n_cands; ++k) {
      if (!mask[k]) plan.Fw[k] = std::numeric_limits<double>::quiet_NaN();
    }
  }
  while ((int64_t(1) << plan.shift) < n_cands) ++plan.shift;
  const int64_t width = int64_t(1) << (2 * plan.shift);
  if (width > 1024 || n_blocks < 2) return plan;  // table would not stay in L1: plain look-ups
  plan.n_pairs = n_blocks / 2;
  plan.pair_tab.assign(static_cast<size_t>(plan.n_pairs * width), std::numeric_limits<double>::quiet_NaN());
  for (int64_t p = 0; p < plan.n_pairs; ++p) {
    const double* f0 = plan.Fw.data() + 2 * p * n_cands;
    const double* f1 = f0 + n_cands;
    double* t = plan.pair_tab.data() + p * width;
    for (int64_t a = 0; a < n_cands; ++a) {
      for (int64_t b = 0; b < n_cands; ++b) t[(a << plan.shift) | b] = f0[a] + f1[b];
    }
  }
  return plan;
}

// Latencies of R consecutive architectures starting at c (row stride n_blocks). The R sums are
// interleaved so the additions do not wait on each other. `bad` is set when an index is out of range.
template <int R, class IndexT>
inline void arch_latencies(const IndexT* c, const LookupPlan& plan, double* s, bool& bad) {
  const int64_t n_blocks = plan.n_blocks;
  const uint64_t n_cands = plan.n_cands;
  for (int r = 0; r < R; ++r) s[r] = 0.0;
  int64_t i = 0;
  if (plan.n_pairs) {
    const int shift = plan.shift;
    const uint64_t width = uint64_t(1) << (2 * shift);
    const double* tab = plan.pair_tab.data();
    for (int64_t p = 0; p < plan.n_pairs; ++p, tab += width) {
      for (int r = 0; r < R; ++r) {
        const uint64_t ka = static_cast<uint64_t>(static_cast<int64_t>(c[r * n_blocks + 2 * p]));
        const uint64_t kb = static_cast<uint64_t>(static_cast<int64_t>(c[r * n_blocks + 2 * p + 1]));
        const bool in_range = (ka < n_cands) & (kb < n_cands);
        bad |= !in_range;
        s[r] += tab[in_range ? ((ka << shift) | kb) : 0];
      }
    }
    i = 2 * plan.n_pairs;
  }
  for (; i < n_blocks; ++i) {
    const double* row = plan.Fw.data() + static_cast<uint64_t>(i) * n_cands;
    for (int r = 0; r < R; ++r) {
      const uint64_t k = static_cast<uint64_t>(static_cast<int64_t>(c[r * n_blocks + i]));
      const bool in_range = k < n_cands;
      bad |= !in_range;
      s[r] += row[in_range ? k : 0];
    }
  }
}

// Visits architectures [b0, b1) in groups of 8, calls emit(b, latency) for each; returns the index of
// the first invalid architecture of the range, or b1.
template <class IndexT, class Emit>
int64_t scan_range(const IndexT* choices, int64_t b0, int64_t b1, const LookupPlan& plan, Emit emit) {
  const int64_t n_blocks = plan.n_blocks;
  constexpr int R = 8;
  double s[R];
  int64_t b = b0;
  for (; b + R <= b1; b += R) {
    bool bad = false;
    arch_latencies<R>(choices + b * n_blocks, plan, s, bad);
    bool any_nan = false;
    for (int r = 0; r < R; ++r) any_nan |= std::isnan(s[r]);
    if (bad || any_nan) break;  // redo this group one by one below to find the culprit
    for (int r = 0; r < R; ++r) emit(b + r, s[r]);
  }
  for (; b < b1; ++b) {
    bool bad = false;
    arch_latencies<1>(choices + b * n_blocks, plan, s, bad);
    if (bad || std::isnan(s[0])) return b;
    emit(b, s[0]);
  }
  return b1;
}

// Shared driver of discrete_latency / count_within: splits the batch over threads, records the first
// invalid architecture, and throws a message naming it.
template <class IndexT, class PerRange>
void run_batch(const IndexT* choices, int64_t batch, const double* F, const uint8_t* mask, int64_t n_blocks,
               int64_t n_cands, int n_threads, const char* who, PerRange per_range) {
  check_lut_matrix(F, mask, n_blocks, n_cands, who);
  if (batch < 0) throw InputError(std::string(who) + ": negative batch size");
  if (batch == 0) return;
  const LookupPlan plan = make_plan(F, mask, n_blocks, n_cands);
  std::atomic<int64_t> first_bad{batch};
  auto work = [&](int64_t b0, int64_t b1) {
    const int64_t bad_at = per_range(choices, b0, b1, plan);
    if (bad_at < b1) {
      int64_t cur = first_bad.load();
      while (bad_at < cur && !first_bad.compare_exchange_weak(cur, bad_at)) {
      }
    }
  };
  int threads = n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t min_work_per_thread = int64_t(1) << 17;  // below this a thread costs more than it saves
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, batch * n_blocks / min_work_per_thread)));
  threads = static_cast<int>(std::min<int64_t>(threads, batch));
  if (threads <= 1) {
    work(0, batch);
  } else {
    std::vector<std::thread> pool;
    const int64_t chunk = (batch + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
      const int64_t b0 = t * chunk, b1 = std::min(batch, b0 + chunk);
      if (b0 < b1) pool.emplace_back(work, b0, b1);
    }
    for (auto& th : pool) th.join();
  }
  const int64_t b = first_bad.load();
  if (b < batch) {
    const IndexT* c = choices + b * n_blocks;
    for (int64_t i = 0; i < n_blocks; ++i) {
      const int64_t k = static_cast<int64_t>(c[i]);
      if (k < 0 || k >= n_cands) {
        throw InputError(std::string(who) + ": architecture " + std::to_string(b) + ", block " + std::to_string(i) +
                         ": candidate index " + std::to_string(k) + " is out of range [0, " +
                         std::to_string(n_cands) + ")");
      }
      if (mask && !mask[i * n_cands + k]) {
        throw InputError(std::string(who) + ": architecture " + std::to_string(b) + ", block " + std::to_string(i) +
                         ": candidate " + std::to_string(k) + " is not a valid candidate of that block (masked)");
      }
    }
    throw InputError(std::string(who) + ": architecture " + std::to_string(b) + " is invalid");
  }
}

}  // namespace

template <class IndexT>
void discrete_latency(const IndexT* choices, int64_t batch, const double* F, const uint8_t* mask, int64_t n_blocks,
                      int64_t n_cands, double* out, int n_threads) {
  run_batch(choices, batch, F, mask, n_blocks, n_cands, n_threads, "discrete_latency",
            [&](const IndexT* ch, int64_t b0, int64_t b1, const LookupPlan& plan) -> int64_t {
              return scan_range(ch, b0, b1, plan, [out](int64_t b, double v) { out[b] = v; });
            });
}

template <class IndexT>
int64_t count_within(const IndexT* choices, int64_t batch, const double* F, const uint8_t* mask, int64_t n_blocks,
                     int64_t n_cands, double target_ms, int n_threads) {
  if (std::isnan(target_ms)) throw InputError("count_within: target_ms is NaN");
  std::atomic<int64_t> total{0};
  run_batch(choices, batch, F, mask, n_blocks, n_cands, n_threads, "count_within",
            [&](const IndexT* ch, int64_t b0, int64_t b1, const LookupPlan& plan) -> int64_t {
              int64_t n = 0;
              const int64_t end = scan_range(ch, b0, b1, plan,
                                             [&n, target_ms](int64_t, double v) { n += v <= target_ms; });
              total += n;
              return end;
            });
  return total.load();
}

#define VPUNAS_INSTANTIATE(IndexT)                                                                                  \
  template void discrete_latency<IndexT>(const IndexT*, int64_t, const double*, const uint8_t*, int64_t, int64_t, \
                                         double*, int);                                                           \
  template int64_t count_within<IndexT>(const IndexT*, int64_t, const double*, const uint8_t*, int64_t, int64_t,  \
                                        double, int);
VPUNAS_INSTANTIATE(int8_t)
VPUNAS_INSTANTIATE(uint8_t)
VPUNAS_INSTANTIATE(int16_t)
VPUNAS_INSTANTIATE(int32_t)
VPUNAS_INSTANTIATE(int64_t)
#undef VPUNAS_INSTANTIATE

}  // namespace latency
}  // namespace vpunas
