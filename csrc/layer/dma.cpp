// Constants: VPUNN's legacy hardware tables (DPU / CMX clocks, DRAM bandwidth, DMA latency), checked
// against the golden layer files (w_fetch_cycles, ddr_io_dma_cycles).
#include "layer/dma.h"

#include <algorithm>
#include <cmath>

#include "common.h"

namespace vpunas {
namespace layer {

using workload::DataType;
using workload::Device;
using workload::ISIStrategy;
using workload::Operation;

namespace {

struct DmaHardware {
  float dpu_mhz;
  float cmx_mhz;
  float dram_mbps;
  uint32_t latency_cycles;  // max of the DRAM and CMX end latencies, in DPU cycles
  int64_t weight_align;     // weight rows are aligned to this many bytes
};

DmaHardware dma_hardware(Device device) {
  switch (device) {
    case Device::VPU_2_0:
    case Device::VPU_2_1: return {700.f, 700.f, 20000.f, 0, 16};
    case Device::VPU_2_7: return {1300.f, 975.f, 27000.f, 1242, 16};
    case Device::VPU_4_0: return {1700.f, 975.f, 45000.f, 1625, 32};
    default: throw InputError("no DMA model for device " + workload::device_names().at(static_cast<size_t>(device)));
  }
}

double dtype_size(int32_t dtype) { return workload::dtype_storage_bytes(static_cast<DataType>(dtype)); }

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

}  // namespace

uint32_t dma_cycles(Device device, int64_t bytes, DmaDirection direction) {
  (void)direction;  // the legacy model is symmetric: DDR end and CMX end, slower one wins
  const DmaHardware hw = dma_hardware(device);
  if (bytes < 0) throw InputError("negative DMA transfer size");
  const float dram_rate = hw.dpu_mhz / hw.dram_mbps;  // DPU cycles per byte, 32-bit like VPUNN
  const int64_t word = std::min<int64_t>(std::max<int64_t>(bytes, 1), 32);
  const float cmx_rate = hw.dpu_mhz / hw.cmx_mhz / static_cast<float>(word);
  const double dram_cycles = std::ceil(static_cast<double>(bytes) * static_cast<double>(dram_rate));
  const double cmx_cycles = std::ceil(static_cast<double>(bytes) * static_cast<double>(cmx_rate));
  const double total = hw.latency_cycles + std::max(dram_cycles, cmx_cycles);
  return total >= 4e9 ? workload::errors::ERROR_INVALID_OUTPUT_RANGE : static_cast<uint32_t>(total);
}

int64_t input_bytes(const workload::WorkloadRecord& w) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(w.in_w) * w.in_h * w.in_c * w.in_b * dtype_size(w.in_dtype)));
}

int64_t output_bytes(const workload::WorkloadRecord& w) {
  return static_cast<int64_t>(
      std::ceil(static_cast<double>(w.out_w) * w.out_h * w.out_c * w.out_b * dtype_size(w.out_dtype)));
}

int64_t weight_bytes(const workload::WorkloadRecord& t) {
  const DmaHardware hw = dma_hardware(static_cast<Device>(t.device));
  const double wsize = dtype_size(t.weight_dtype >= 0 ? t.weight_dtype : t.in_dtype);
  const int64_t table = 16;  // weight table entry per output channel
  const int64_t k = static_cast<int64_t>(t.k_w) * t.k_h;
  switch (static_cast<Operation>(t.op)) {
    case Operation::CONVOLUTION:
    case Operation::CM_CONVOLUTION:
      return t.out_c * (align_up(static_cast<int64_t>(std::ceil(t.in_c * k * wsize)), hw.weight_align) + table);
    case Operation::DW_CONVOLUTION:
    case Operation::AVEPOOL:
      return t.out_c * (align_up(static_cast<int64_t>(std::ceil(k * wsize)), hw.weight_align) + table);
    case Operation::ELTWISE:
    case Operation::ELTWISE_MUL: return input_bytes(t);  // the second operand plays the weights
    default: return 0;                                   // pooling without weights
  }
}

int64_t tile_cmx_bytes(const workload::WorkloadRecord& t, const workload::WorkloadRecord& layer) {
  constexpr int64_t kAlign = 16384;
  const auto op = static_cast<Operation>(t.op);
  const bool eltwise = op == Operation::ELTWISE || op == Operation::ELTWISE_MUL;
  // A tile that broadcasts its output (owt > 1) holds the whole layer output: all tiles write into it.
  // Element-wise adds count neither the broadcast nor the second operand in VPUNN's tile check (golden
  // files: a 112x112x64 add fits a 2 MB VPU 2.7 tile, a 112x112x160 add fits it split over K).
  const int64_t out = (t.owt > 1 && !eltwise) ? output_bytes(layer) : output_bytes(t);
  const int64_t weights = eltwise ? 0 : weight_bytes(t);
  const bool inplace = eltwise && t.inplace_output == 1;
  return align_up(input_bytes(t), kAlign) + align_up(weights, kAlign) + (inplace ? 0 : align_up(out, kAlign));
}

int64_t cmx_size_bytes(Device device) {
  switch (device) {
    case Device::VPU_2_0:
    case Device::VPU_2_1: return 1024 * 1024;
    case Device::VPU_2_7: return 2 * 1024 * 1024;
    case Device::VPU_4_0: return 1536 * 1024;
    default: throw InputError("no CMX size known for device " + workload::device_names().at(static_cast<size_t>(device)));
  }
}

}  // namespace layer
}  // namespace vpunas
