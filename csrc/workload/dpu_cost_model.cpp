// VPUNN's DPU cost model, single-call semantics: adapt + sanitise, build the NN descriptor(s), one batched
// MLP pass per chunk of rows, then VPUNN's post-processing (dual sparsity minimum, channel extrapolation
// for wide depthwise / pooling, output range check with analytic fallback).
#include "workload/dpu_cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <exception>
#include <thread>

#include "common.h"
#include "vpunn/mlp.h"
#include "vpunn/model_file.h"
#include "workload/descriptor.h"
#include "workload/sanitizer.h"

namespace vpunas {
namespace workload {

double dpu_clock_mhz(Device device) {
  switch (device) {
    case Device::VPU_2_0: return 700.0;
    case Device::VPU_2_1: return 850.0;
    case Device::VPU_2_7: return 1300.0;
    case Device::VPU_4_0: return 1700.0;
    default: {
      const auto i = static_cast<size_t>(device);
      const std::string name = i < device_names().size() ? device_names()[i] : std::to_string(i);
      throw InputError("no DPU clock known for device " + name + " (known: VPU_2_0, VPU_2_1, VPU_2_7, VPU_4_0)");
    }
  }
}

namespace {

constexpr size_t kChunkRows = 1024;    // rows prepared + evaluated together (bounded scratch memory)

// The plan for one row: how its answer is produced and which descriptors (slots in the chunk) it needs.
enum class Plan : uint8_t { DONE, NN, DUAL_SPARSITY, EXTRAPOLATE };

struct RowPlan {
  Plan plan = Plan::DONE;
  uint32_t cycles = 0;       // final value for DONE rows
  int32_t slot[3] = {-1, -1, -1};  // descriptor slots: main (nn_raw), and the two alternatives
  WorkloadRecord adapted;    // for the analytic fallback and extrapolation
};

bool nn_value_valid(float v) { return std::isfinite(v) && v >= 0.0f && v <= 4e9f; }

// NN output -> cycles or ERROR_INVALID_OUTPUT_RANGE (VPUNN rounds the float up).
uint32_t nn_to_cycles(float v) {
  if (!nn_value_valid(v)) return errors::ERROR_INVALID_OUTPUT_RANGE;
  return static_cast<uint32_t>(std::ceil(v));
}

// VPUNN's output post-processing. VO 4 ("cycles, tuned for NPU 2.7") scales depthwise convolutions on
// NPU 4.0+ by measured factors (NPU 4.0's optimised depthwise vs 2.7); every other version passes through.
float dw_factor_npu27_to_40(const WorkloadRecord& w) {
  static constexpr float f8[5][3] = {{1.0f, 0.8f, 0.75f},   {0.5f, 0.44f, 0.69f}, {0.81f, 0.75f, 0.75f},
                                     {0.69f, 0.68f, 0.73f}, {0.60f, 0.60f, 0.65f}};
  static constexpr float f16[5][3] = {{1.0f, 1.0f, 1.0f},   {0.48f, 0.47f, 0.71f}, {0.76f, 0.74f, 0.77f},
                                      {0.69f, 0.69f, 0.73f}, {0.60f, 0.60f, 0.65f}};
  const int ch = w.in_c == 16 ? 0 : w.in_c == 32 ? 1 : w.in_c == 64 ? 2 : -1;
  if (ch < 0) return 1.0f;
  int ctx;
  if (w.s_w == 1 && w.s_h == 1) ctx = w.k_w == 3 ? 1 : ((w.k_w == 1 || w.k_h == 1) ? 0 : 2);
  else if (w.s_w == 2 || w.s_h == 2) ctx = 3;
  else ctx = 4;
  const bool wide = dtype_bytes(static_cast<DataType>(w.in_dtype)) > 1.0;
  return wide ? f16[ctx][ch] : f8[ctx][ch];
}

float post_factor(int interface_out, const WorkloadRecord& w) {
  if (interface_out == 4 && static_cast<int>(w.device) >= static_cast<int>(Device::VPU_4_0) &&
      static_cast<Operation>(w.op) == Operation::DW_CONVOLUTION)
    return dw_factor_npu27_to_40(w);
  return 1.0f;
}

uint32_t analytic_fallback(const WorkloadRecord& w) {
  return static_cast<uint32_t>(theoretical_dpu_cycles(w) & 0xFFFFFFFFull);
}

// Depthwise / pooling wider than 64 channels: VPUNN's models were trained up to 64, so it evaluates the
// 32- and 64-channel copies and extends the line through them (in 32-bit floats).
bool needs_extrapolation(const WorkloadRecord& w) {
  const auto op = static_cast<Operation>(w.op);
  return (op == Operation::DW_CONVOLUTION || op == Operation::MAXPOOL || op == Operation::AVEPOOL) && w.out_c > 64;
}

Device device_for(const std::string& path, int interface_in) {
  std::string stem = path.substr(path.find_last_of("/\\") == std::string::npos ? 0 : path.find_last_of("/\\") + 1);
  if (stem.find("2_0") != std::string::npos) return Device::VPU_2_0;
  if (stem.find("2_7") != std::string::npos) return Device::VPU_2_7;
  if (stem.find("4_0") != std::string::npos || stem.find("40_") != std::string::npos ||
      stem.find("4_1") != std::string::npos)
    return Device::VPU_4_0;
  if (interface_in == 10) return Device::VPU_2_0;
  if (interface_in == 4011 || interface_in == 4111) return Device::VPU_4_0;
  return Device::VPU_2_7;
}

}  // namespace

DpuCostModel::DpuCostModel(const std::string& path, const std::string& mlp_kernel) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      throw InputError("VPUNN model file not found: '" + path +
                       "'. Get the .vpunn files from the intel/npu-nn-cost-model repository (models/ folder) "
                       "and pass their path, or set $VPUNAS_MODEL_DIR to the folder holding them.");
    }
  }
  const vpunn::ModelFile file = vpunn::ModelFile::load(path);
  nn_name_ = file.name;
  interface_in_ = file.interface_in;
  interface_out_ = file.interface_out;
  const Encoder enc = encoder_for_interface(interface_in_);
  if (static_cast<size_t>(file.input_size()) != workload::descriptor_size(enc)) {
    throw InputError("VPUNN model '" + path + "': its network takes " + std::to_string(file.input_size()) +
                     " inputs but interface " + std::to_string(interface_in_) + " descriptors have " +
                     std::to_string(workload::descriptor_size(enc)) + " values");
  }
  if (file.output_size() < 1) throw InputError("VPUNN model '" + path + "' has no network output");
  // $VPUNAS_EXACT_MLP_SCALAR=1: the portable dense kernel (tests compare it with the default one).
  const char* portable = std::getenv("VPUNAS_EXACT_MLP_SCALAR");
  const bool use_portable = portable != nullptr && *portable != '\0' && std::string(portable) != "0";
  mlp_ = std::make_unique<vpunn::Mlp>(file, use_portable ? "scalar" : mlp_kernel);
  device_ = device_for(path, interface_in_);
}

DpuCostModel::~DpuCostModel() = default;

const char* DpuCostModel::mlp_kernel() const { return mlp_->kernel_name(); }

size_t DpuCostModel::descriptor_size() const { return workload::descriptor_size(encoder_for_interface(interface_in_)); }

namespace {

// Evaluates rows [begin, end) chunk by chunk; writes cycles and, if wanted, details.
void run_rows(const vpunn::Mlp& mlp, Encoder enc, int interface_out, const WorkloadRecord* w, size_t begin,
              size_t end, uint32_t* cycles, PredictDetail* detail) {
  const size_t dsz = descriptor_size(enc);
  const size_t out_w = static_cast<size_t>(mlp.output_size());
  const size_t cap = std::min(kChunkRows, end - begin);  // small calls get small scratch
  std::vector<RowPlan> plans(cap);
  std::vector<float> desc(cap * 3 * dsz);
  std::vector<float> nn_out(cap * 3 * out_w);
  std::vector<float> nn_first(cap * 3);
  std::vector<float> factor(cap * 3);  // output post-processing factor per descriptor
  const bool want_raw = detail != nullptr;

  for (size_t c0 = begin; c0 < end; c0 += cap) {
    const size_t m = std::min(cap, end - c0);
    int32_t slots = 0;
    auto add_desc = [&](const WorkloadRecord& r) -> int32_t {
      float* d = desc.data() + static_cast<size_t>(slots) * dsz;
      if (!encode_descriptor(enc, r, d)) return -1;
      factor[static_cast<size_t>(slots)] = post_factor(interface_out, r);
      return slots++;
    };
    for (size_t i = 0; i < m; ++i) {
      RowPlan& p = plans[i];
      p = RowPlan{};
      p.adapted = preadapt(w[c0 + i]);
      const uint32_t err = sanitize(p.adapted);
      if (err) {
        p.plan = Plan::DONE;
        p.cycles = err;
        if (want_raw) p.slot[0] = -1;
        continue;
      }
      const WorkloadRecord& a = p.adapted;
      const bool dual = a.in_sparse && a.weight_sparsity_enabled;
      const bool extrap = !dual && needs_extrapolation(a);
      if (want_raw || (!dual && !extrap)) {
        p.slot[0] = add_desc(a);
        if (p.slot[0] < 0) {  // VPUNN throws here: no slot in the interface for some value
          p.plan = Plan::DONE;
          p.cycles = errors::ERROR_ENCODING_EXCEPTION;
          continue;
        }
      }
      if (dual) {
        WorkloadRecord no_act = a, no_wts = a;
        no_act.in_sparse = 0;
        no_act.act_sparsity = 0.0f;
        no_wts.weight_sparsity_enabled = 0;
        no_wts.weight_sparsity = 0.0f;
        p.slot[1] = add_desc(no_act);
        p.slot[2] = add_desc(no_wts);
        p.plan = Plan::DUAL_SPARSITY;
      } else if (extrap) {
        WorkloadRecord c32 = a, c64 = a;
        c32.in_c = c32.out_c = 32;
        c64.in_c = c64.out_c = 64;
        p.slot[1] = add_desc(c32);
        p.slot[2] = add_desc(c64);
        p.plan = Plan::EXTRAPOLATE;
      } else {
        p.plan = Plan::NN;
      }
      if ((p.plan != Plan::NN) && (p.slot[1] < 0 || p.slot[2] < 0)) {
        p.plan = Plan::DONE;
        p.cycles = errors::ERROR_ENCODING_EXCEPTION;
      }
    }
    if (slots > 0) mlp.forward(desc.data(), static_cast<size_t>(slots), nn_out.data(), 1);  // threads: see parallel_ranges
    for (int32_t s = 0; s < slots; ++s) nn_first[static_cast<size_t>(s)] = nn_out[static_cast<size_t>(s) * out_w];
    auto processed = [&](int32_t s) {  // post-processing only touches values in the valid range
      const float v = nn_first[static_cast<size_t>(s)];
      return nn_value_valid(v) ? v * factor[static_cast<size_t>(s)] : v;
    };

    for (size_t i = 0; i < m; ++i) {
      const RowPlan& p = plans[i];
      auto raw = [&](int32_t s) { return nn_first[static_cast<size_t>(s)]; };
      uint32_t result = p.cycles;
      bool fallback = false;
      switch (p.plan) {
        case Plan::DONE:
          break;
        case Plan::NN:
          result = nn_to_cycles(processed(p.slot[0]));
          fallback = result == errors::ERROR_INVALID_OUTPUT_RANGE;
          break;
        case Plan::DUAL_SPARSITY: {
          const uint32_t a = nn_to_cycles(processed(p.slot[1])), b = nn_to_cycles(processed(p.slot[2]));
          if (errors::is_error(a) && errors::is_error(b)) fallback = true;
          else if (errors::is_error(a)) result = b;
          else if (errors::is_error(b)) result = a;
          else result = std::min(a, b);
          break;
        }
        case Plan::EXTRAPOLATE: {
          const uint32_t y32 = nn_to_cycles(processed(p.slot[1])), y64 = nn_to_cycles(processed(p.slot[2]));
          if (errors::is_error(y32) || errors::is_error(y64)) {
            fallback = true;
          } else {
            const float slope = (static_cast<float>(y64) - static_cast<float>(y32)) / 32.0f;
            const float intercept = static_cast<float>(y32) - slope * 32.0f;
            result = nn_to_cycles(slope * static_cast<float>(p.adapted.out_c) + intercept);
            fallback = result == errors::ERROR_INVALID_OUTPUT_RANGE;
          }
          break;
        }
      }
      if (fallback) result = analytic_fallback(p.adapted);
      cycles[c0 + i] = result;
      if (detail) {
        PredictDetail& d = detail[c0 + i];
        d.cycles = result;
        d.descriptor_ok = p.slot[0] >= 0 ? 1 : 0;
        d.nn_raw = p.slot[0] >= 0 ? raw(p.slot[0]) : std::numeric_limits<float>::quiet_NaN();
        d.theoretical = theoretical_dpu_cycles(p.adapted);
        ValueSource src = ValueSource::NN;
        if (p.plan == Plan::DONE) {
          src = p.cycles == errors::ERROR_ENCODING_EXCEPTION ? ValueSource::EXCEPTION : ValueSource::SANITIZER_REJECTED;
        } else if (fallback) {
          src = ValueSource::THEORETICAL_FALLBACK;
        } else if (p.plan == Plan::DUAL_SPARSITY) {
          src = ValueSource::NN_DUAL_SPARSITY_MIN;
        } else if (p.plan == Plan::EXTRAPOLATE) {
          src = ValueSource::NN_LINEAR_EXTRAPOLATION;
        }
        d.value_source = static_cast<int32_t>(src);
      }
    }
  }
}

template <class F>
void parallel_ranges(size_t n, int threads, F&& f) {
  const size_t most = std::max<size_t>(1, n / vpunn::Mlp::kMinRowsPerThread);
  size_t t = 1;
  if (most > 1)  // asking the OS for the core count costs microseconds: only when it can matter
    t = std::min(most, threads > 0 ? static_cast<size_t>(threads)
                                   : std::max<size_t>(1, std::thread::hardware_concurrency()));
  if (t <= 1) {
    f(size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errs(t);
  const size_t per = (n + t - 1) / t;
  for (size_t k = 0; k < t; ++k) {
    const size_t b = k * per, e = std::min(n, b + per);
    if (b >= e) break;
    pool.emplace_back([&, b, e, k] {
      try {
        f(b, e);
      } catch (...) {
        errs[k] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& ep : errs)
    if (ep) std::rethrow_exception(ep);
}

}  // namespace

void DpuCostModel::predict(const WorkloadRecord* w, size_t n, uint32_t* cycles, int threads) const {
  const Encoder enc = encoder_for_interface(interface_in_);
  parallel_ranges(n, threads, [&](size_t b, size_t e) { run_rows(*mlp_, enc, interface_out_, w, b, e, cycles, nullptr); });
}

void DpuCostModel::predict_detail(const WorkloadRecord* w, size_t n, PredictDetail* out, int threads) const {
  const Encoder enc = encoder_for_interface(interface_in_);
  std::vector<uint32_t> cycles(n);
  parallel_ranges(n, threads, [&](size_t b, size_t e) { run_rows(*mlp_, enc, interface_out_, w, b, e, cycles.data(), out); });
}

void DpuCostModel::descriptors(const WorkloadRecord* w, size_t n, float* out, uint8_t* ok) const {
  const Encoder enc = encoder_for_interface(interface_in_);
  const size_t dsz = workload::descriptor_size(enc);
  for (size_t i = 0; i < n; ++i) {
    WorkloadRecord a = preadapt(w[i]);
    sanitize(a);  // VPUNN describes the workload as far as its sanitiser adapted it, valid or not
    ok[i] = encode_descriptor(enc, a, out + i * dsz) ? 1 : 0;
  }
}

}  // namespace workload
}  // namespace vpunas
