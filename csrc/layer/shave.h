// Costs of DSP (SHAVE) kernels as VPUNN models them, with parameters read from VPUNN's CSV files at run
// time (never compiled in):
//  * "SHAVE"  : the legacy per-operator linear model (layers_perf.csv): cycles = round(out_bytes / e) + L.
//  * "shave2" : the fitted per-device kernel models (shave_layers_vpu_2_7.csv, shave_layers_vpu_40.csv).
// Immutable after construction; thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "workload/workload.h"

namespace vpunas {
namespace layer {

namespace shave_errors {
constexpr uint32_t ERROR_SHAVE_PARAMS = 0xFFFFFFFFu - 13;
constexpr uint32_t ERROR_SHAVE_LAYOUT = 0xFFFFFFFFu - 14;
constexpr uint32_t ERROR_SHAVE_OPERATOR_MISSING = 0xFFFFFFFFu - 19;
}  // namespace shave_errors

enum class ShaveApi : int32_t { SHAVE, SHAVE2 };

// One fitted kernel of the shave2 files (both file formats folded into one record).
struct ShaveKernelParams {
  std::string kernel_type;  // ShaveModel1on1, ShaveModel2on1, ...NPU40
  float slope = 0, intercept = 0;
  float scalar_offset = 0, unroll_offset = 0;                                 // VPU 2.7 form
  float intra_block_offset = 0, vector_offset = 0;                            // NPU 4.0 form
  int displacement_size = 0, unroll_size = 1, vector_size = 1, dpu_mhz = 0, shv_mhz = 0;
  bool npu40_form = false;
  int n_inputs = 1;
};

struct LegacyShaveParams {
  bool has_model = false;  // "null" in the table: VPUNN charges one cycle per output byte
  int efficiency_milli = 0;
  int latency = 0;
};

class ShaveModel {
 public:
  // Reads the parameter files for `device` from `params_dir`; throws InputError naming a missing or
  // malformed file and what to pass instead.
  ShaveModel(workload::Device device, const std::string& params_dir);

  workload::Device device() const { return device_; }

  // Shapes of a kernel call (W, H, C, B), output type and layouts.
  struct Call {
    int64_t in_w = 1, in_h = 1, in_c = 1, in_b = 1;
    int64_t out_w = 1, out_h = 1, out_c = 1, out_b = 1;
    workload::DataType out_dtype = workload::DataType::FLOAT16;
    workload::Layout in_layout = workload::Layout::ZXY, out_layout = workload::Layout::ZXY;
  };
  // Cycles (DPU cycles at the device's nominal DPU clock) or a VPUNN error code. Throws InputError for
  // kernels VPUNN models with built-in parameters we do not have (MVN*, softmax, vpuem.*, ...).
  uint32_t cycles(ShaveApi api, const std::string& op, const Call& call) const;

  // Operator names offered under an API (sorted).
  std::vector<std::string> operators(ShaveApi api) const;
  bool has_operator(ShaveApi api, const std::string& op) const;
  // True for names VPUNN offers with built-in parameters that are not in the files (unsupported here).
  bool is_builtin_without_params(const std::string& op) const;

 private:
  uint32_t shave2_cycles(const ShaveKernelParams& p, int64_t out_bytes) const;

  workload::Device device_;
  std::map<std::string, LegacyShaveParams> legacy_;
  std::map<std::string, ShaveKernelParams> shave2_;
};

// Name aliases of the legacy table (Elu -> ELU, SoftMax -> Softmax, ...).
const std::map<std::string, std::string>& legacy_shave_aliases();

}  // namespace layer
}  // namespace vpunas
