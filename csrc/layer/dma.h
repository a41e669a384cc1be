// VPUNN's analytic ("theoretical", legacy) DMA model for 1-D transfers between DDR and a tile's CMX,
// the weight footprint a tile fetches, and the CMX footprint of a tile layer.
#pragma once
#include <cstdint>

#include "workload/workload.h"

namespace vpunas {
namespace layer {

enum class DmaDirection { DDR_TO_CMX, CMX_TO_DDR };

// DPU cycles to move `bytes` contiguous bytes (latency + the slower of the two ends).
uint32_t dma_cycles(workload::Device device, int64_t bytes, DmaDirection direction);

// Bytes of weights (+ weight table) of a tile layer, as fetched from DDR when not prefetched.
int64_t weight_bytes(const workload::WorkloadRecord& tile);

// Bytes of the full input / output activation tensors (batch included).
int64_t input_bytes(const workload::WorkloadRecord& w);
int64_t output_bytes(const workload::WorkloadRecord& w);

// CMX bytes a tile layer needs (input, weights, output; each aligned to 16 KiB); `layer` is the unsplit
// layer (a broadcasting tile holds its whole output).
int64_t tile_cmx_bytes(const workload::WorkloadRecord& tile, const workload::WorkloadRecord& layer);
// Usable CMX of one tile.
int64_t cmx_size_bytes(workload::Device device);

}  // namespace layer
}  // namespace vpunas
