// VPUNN's analytic DPU cycle estimate (facts from its DPUTheoreticalCostProvider and the per-device HW
// characteristics tables; our own code). Integer types follow VPUNN so that wrap-arounds match.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common.h"
#include "workload/dpu_cost_model.h"
#include "workload/sanitizer.h"

namespace vpunas {
namespace workload {
namespace {

struct Hw {
  double dpu_mhz, cmx_mhz;
  uint64_t cmx_word_bytes, cmx_read_ports, nr_macs, fp_ratio, nr_ppe, input_channels_mac;
  bool cmx_reads_modelled;
};

bool hw_of(Device d, Hw* hw) {
  switch (d) {
    case Device::VPU_2_0: *hw = {700, 700, 16, 4, 256, 4, 16, 1, false}; return true;
    case Device::VPU_2_1: *hw = {850, 850, 16, 4, 256, 4, 16, 1, false}; return true;
    case Device::VPU_2_7: *hw = {1300, 975, 16, 8, 2048, 2, 64, 8, true}; return true;
    case Device::VPU_4_0: *hw = {1700, 971, 32, 8, 2048, 2, 64, 8, true}; return true;
    // NPU 5.0 is only approximated (twice the MACs of 4.0, as VPUNN's estimate shows on one workload)
    case Device::NPU_5_0: *hw = {1950, 971, 32, 8, 4096, 2, 64, 8, true}; return true;
    // reserved devices: VPUNN's estimate there matches NPU 4.0 characteristics
    case Device::NPU_RESERVED: case Device::NPU_RESERVED_W: case Device::NPU_RESERVED_1:
    case Device::NPU_RESERVED_1_W:
      *hw = {1700, 971, 32, 8, 2048, 2, 64, 8, true}; return true;
    default: return false;
  }
}

uint64_t ceil_div(uint64_t a, uint64_t b) { return b == 0 ? 0 : (a + b - 1) / b; }

// Cycles saved because padding is treated as sparse (ZMAJOR convolutions); unsigned like VPUNN.
uint64_t padding_skip_cycles(const WorkloadRecord& w) {
  const unsigned Kw = w.k_w, Kh = w.k_h, Sw = w.s_w, Sh = w.s_h;
  const unsigned Pt = w.pad_t, Pb = w.pad_b, Pl = w.pad_l, Pr = w.pad_r;
  const unsigned in_w = w.in_w, in_h = w.in_h, out_c = w.out_c, in_c = w.in_c;
  if (Sw == 0 || Sh == 0) return 0;
  unsigned Pt_z = 0, Pb_z = 0, Pl_z = 0, Pr_z = 0;
  for (int i = static_cast<int>(Pt); i > 0; i -= static_cast<int>(Sh)) Pt_z += i;
  for (int i = static_cast<int>(Pl); i > 0; i -= static_cast<int>(Sw)) Pl_z += i;
  const unsigned Redge = in_w % Sw, Bedge = in_h % Sh;
  for (int i = static_cast<int>(Pr - Redge); i > 0; i -= static_cast<int>(Sw)) Pr_z += i;
  for (int i = static_cast<int>(Pb - Bedge); i > 0; i -= static_cast<int>(Sh)) Pb_z += i;
  const uint64_t cw = ceil_div(in_w, Sw), ch = ceil_div(in_h, Sh);
  uint64_t Pt_c = uint64_t{Pt_z} * Kw * cw, Pb_c = uint64_t{Pb_z} * Kw * cw;
  const uint64_t Pl_c = uint64_t{Pl_z} * Kh * ch, Pr_c = uint64_t{Pr_z} * Kh * ch;
  // corners were counted twice
  for (int i = Pt, j = Pl; i > 0 && j > 0; i -= Sh, j -= Sw) Pt_c -= uint64_t(i) * uint64_t(j);
  for (int i = Pt, j = static_cast<int>(Pr - Redge); i > 0 && j > 0; i -= Sh, j -= Sw) Pt_c -= uint64_t(i) * uint64_t(j);
  for (int i = static_cast<int>(Pb - Bedge), j = Pl; i > 0 && j > 0; i -= Sh, j -= Sw) Pb_c -= uint64_t(i) * uint64_t(j);
  for (int i = static_cast<int>(Pb - Bedge), j = static_cast<int>(Pr - Redge); i > 0 && j > 0; i -= Sh, j -= Sw)
    Pb_c -= uint64_t(i) * uint64_t(j);
  return (Pt_c + Pb_c + Pl_c + Pr_c) * in_c * out_c;
}

uint64_t size_in_bytes(uint64_t elements, DataType t) {
  const double b = dtype_bytes(t);
  if (b > 0) return elements * static_cast<uint64_t>(b);
  return (elements * 4 + 7) / 8;  // sub-byte: VPUNN never gets here for valid rows
}

// double -> unsigned count, saturating instead of undefined behaviour for absurd garbage sizes
uint64_t to_count(double v) {
  if (!(v > 0)) return 0;
  return v >= 1.8e19 ? ~uint64_t{0} : static_cast<uint64_t>(v);
}

// CMX read bandwidth bound of NTHW/NTK execution modes, in DPU cycles.
uint64_t cmx_read_cycles(const WorkloadRecord& w, const Hw& hw) {
  if (!hw.cmx_reads_modelled) return 0;
  double gx = 1, gy = 1, gz = 1;
  switch (static_cast<ExecutionMode>(w.exec_mode)) {
    case ExecutionMode::CUBOID_4x16: gx = 8; gy = 8; gz = 256; break;
    case ExecutionMode::CUBOID_8x16: gx = 16; gy = 8; gz = 128; break;
    case ExecutionMode::CUBOID_16x16: gx = 16; gy = 16; gz = 64; break;
    default: break;
  }
  const double wt_grids = std::ceil(static_cast<double>(static_cast<unsigned>(w.out_c)) / gz);
  const double act_grids = std::ceil(static_cast<double>(static_cast<unsigned>(w.out_h)) / gy) *
                           std::ceil(static_cast<double>(static_cast<unsigned>(w.out_w)) / gx);
  const unsigned kernel_area = static_cast<unsigned>(w.k_w) * static_cast<unsigned>(w.k_h);
  const auto dt = static_cast<DataType>(w.in_dtype);
  const auto act_elems = to_count(std::ceil(wt_grids * static_cast<unsigned>(w.out_h) *
                                                        static_cast<unsigned>(w.out_w) *
                                                        static_cast<unsigned>(w.in_c) * kernel_area));
  const auto wt_elems = to_count(std::ceil(act_grids * static_cast<unsigned>(w.out_c) *
                                                       static_cast<unsigned>(w.in_c) * kernel_area));
  const double reads = static_cast<double>(size_in_bytes(act_elems, dt) + size_in_bytes(wt_elems, dt)) /
                       static_cast<double>(hw.cmx_word_bytes * hw.cmx_read_ports);
  return to_count(std::ceil(reads * hw.cmx_mhz / hw.dpu_mhz));
}

}  // namespace

uint64_t theoretical_dpu_cycles(const WorkloadRecord& w) {
  Hw hw;
  if (!hw_of(static_cast<Device>(w.device), &hw)) return 0;
  // Garbage guard: negative sizes / strides have no meaning (VPUNN would read them as huge unsigned values).
  for (int32_t v : {w.in_w, w.in_h, w.in_c, w.in_b, w.out_w, w.out_h, w.out_c, w.out_b, w.k_w, w.k_h, w.pad_t,
                    w.pad_b, w.pad_l, w.pad_r})
    if (v < 0) return 0;
  if (w.s_w <= 0 || w.s_h <= 0) return 0;
  // the padding-skip loops step through the padding: absurd pads would take seconds
  if (w.pad_t > (1 << 20) || w.pad_b > (1 << 20) || w.pad_l > (1 << 20) || w.pad_r > (1 << 20)) return 0;
  const auto op = static_cast<Operation>(w.op);
  uint64_t cycles = uint64_t{static_cast<unsigned>(w.k_w) * static_cast<unsigned>(w.k_h)} *
                    (uint64_t{static_cast<unsigned>(w.out_w)} * static_cast<unsigned>(w.out_h) *
                     static_cast<unsigned>(w.out_c) * static_cast<unsigned>(w.out_b));
  const uint64_t mt = w.owt > 1 ? 2 : 1;
  uint64_t nr_macs = hw.nr_macs;
  if (op == Operation::ELTWISE) {
    const uint64_t in_vol = uint64_t{static_cast<unsigned>(w.in_w)} * static_cast<unsigned>(w.in_h) *
                            static_cast<unsigned>(w.in_c) * static_cast<unsigned>(w.in_b);
    cycles = ceil_div(in_vol, hw.nr_ppe / mt);
  }
  if (op == Operation::CONVOLUTION || op == Operation::CM_CONVOLUTION) {
    cycles *= static_cast<unsigned>(w.in_c);
    cycles -= padding_skip_cycles(w);
  } else {
    nr_macs /= hw.input_channels_mac;
  }
  cycles = ceil_div(cycles, nr_macs);
  const auto in_t = static_cast<DataType>(w.in_dtype);
  // 16-bit float family (VPUNN counts FLOAT32 activations there too)
  if (in_t == DataType::FLOAT16 || in_t == DataType::BFLOAT16 || in_t == DataType::FLOAT32) cycles *= hw.fp_ratio;
  return std::max(cycles, cmx_read_cycles(w, hw));
}

TheoreticalDpuModel::TheoreticalDpuModel(Device device) : device_(device) {
  if (device != Device::VPU_2_0 && device != Device::VPU_2_1 && device != Device::VPU_2_7 &&
      device != Device::VPU_4_0) {
    const auto i = static_cast<size_t>(device);
    throw InputError("no analytic DPU model for device " +
                     (i < device_names().size() ? device_names()[i] : std::to_string(i)) +
                     " (supported: VPU_2_0, VPU_2_1, VPU_2_7, VPU_4_0)");
  }
}

void TheoreticalDpuModel::predict(const WorkloadRecord* w, size_t n, uint32_t* cycles, int /*threads*/) const {
  for (size_t i = 0; i < n; ++i) {
    WorkloadRecord a = preadapt(w[i]);
    const uint32_t err = sanitize(a);
    if (err) {
      cycles[i] = err;
      continue;
    }
    const uint64_t c = theoretical_dpu_cycles(a);
    cycles[i] = c > errors::kFirstError ? errors::ERROR_INVALID_OUTPUT_RANGE : static_cast<uint32_t>(c);
  }
}

}  // namespace workload
}  // namespace vpunas
