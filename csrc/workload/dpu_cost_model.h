// DPU cycle models behind one interface: VPUNN's NN cost model (DpuCostModel, owns a VPUNN-exact MLP) and
// VPUNN's analytic estimate (TheoreticalDpuModel). Both are immutable after construction and
// thread-safe; predict() may be called from several threads at once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "workload/workload.h"

namespace vpunas::vpunn {
class Mlp;
}

namespace vpunas {
namespace workload {

// Nominal DPU clock of a device in MHz (VPU_2_0 700, VPU_2_7 1300, VPU_4_0 1700); throws InputError otherwise.
double dpu_clock_mhz(Device device);
// Cycles at the device's DPU clock to milliseconds.
inline double cycles_to_ms(double cycles, Device device) { return cycles / (dpu_clock_mhz(device) * 1e3); }

class DpuCycleModel {
 public:
  virtual ~DpuCycleModel() = default;
  // The device the model was made for.
  virtual Device device() const = 0;
  // Cycles (or VPUNN error code) per workload, VPUNN single-call semantics. threads <= 0: automatic.
  virtual void predict(const WorkloadRecord* w, size_t n, uint32_t* cycles, int threads = 0) const = 0;
  std::vector<uint32_t> predict(const WorkloadRecord* w, size_t n, int threads = 0) const {
    std::vector<uint32_t> out(n);
    predict(w, n, out.data(), threads);
    return out;
  }
};

// VPUNN's analytic ("theoretical") DPU cycles for the sanitised workload, 64-bit like DPUInfo reports.
uint64_t theoretical_dpu_cycles(const WorkloadRecord& w);

class TheoreticalDpuModel : public DpuCycleModel {
 public:
  explicit TheoreticalDpuModel(Device device);
  Device device() const override { return device_; }
  // Checks the workload like VPUNN (error codes), then the analytic estimate (clipped to error range).
  void predict(const WorkloadRecord* w, size_t n, uint32_t* cycles, int threads = 0) const override;
  using DpuCycleModel::predict;

 private:
  Device device_;
};

// Diagnostic output of one workload (what VPUNN's DPUInfo + intermediate values show).
struct PredictDetail {
  uint32_t cycles;           // final single-call answer
  uint64_t theoretical;      // analytic estimate of the adapted workload
  float nn_raw;              // NN output for the descriptor (NaN if none)
  int32_t value_source;      // ValueSource
  int32_t descriptor_ok;     // 1 if a descriptor was built
};
enum class ValueSource : int32_t {
  NN, NN_LINEAR_EXTRAPOLATION, NN_DUAL_SPARSITY_MIN, THEORETICAL_FALLBACK, SANITIZER_REJECTED, EXCEPTION
};

class DpuCostModel : public DpuCycleModel {
 public:
  // Loads a .vpunn file; throws InputError for a missing/corrupt file or unsupported interface version.
  // `mlp_kernel`: "" = the fastest (see vpunn::Mlp); any kernel gives the same bits.
  explicit DpuCostModel(const std::string& path, const std::string& mlp_kernel = "");
  ~DpuCostModel() override;
  DpuCostModel(const DpuCostModel&) = delete;
  DpuCostModel& operator=(const DpuCostModel&) = delete;

  Device device() const override { return device_; }
  void predict(const WorkloadRecord* w, size_t n, uint32_t* cycles, int threads = 0) const override;
  using DpuCycleModel::predict;

  // Same as predict, plus details per row (n entries).
  void predict_detail(const WorkloadRecord* w, size_t n, PredictDetail* out, int threads = 0) const;
  // NN input vectors of the adapted workloads, n x descriptor_size(); ok[i] = 0 where none can be built
  // (row left zero). Returns nothing else: error codes come from predict.
  void descriptors(const WorkloadRecord* w, size_t n, float* out, uint8_t* ok) const;

  size_t descriptor_size() const;
  int interface_in() const { return interface_in_; }
  int interface_out() const { return interface_out_; }
  const std::string& nn_name() const { return nn_name_; }
  const char* mlp_kernel() const;

 private:
  std::unique_ptr<vpunn::Mlp> mlp_;  // VPUNN-order (bit-exact) packed MLP
  std::string nn_name_;
  int interface_in_ = 0;
  int interface_out_ = 0;
  Device device_ = Device::VPU_2_7;
};

}  // namespace workload
}  // namespace vpunas
