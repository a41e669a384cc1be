// VPUNN's workload preparation before the NN: adaptation (op / channel rewrites, type folding, layout and
// swizzling translation) and the per-device validity checks (supported device and operation, CMX memory
// footprint, allowed ranges). Pure functions, no state.
#pragma once
#include <cstdint>

#include "workload/workload.h"

namespace vpunas {
namespace workload {

// Bytes per element of a data type (sub-byte types report 0: VPUNN cannot size them here).
double dtype_bytes(DataType t);

// Step 1 of a single VPUNN DPU call: AVEPOOL -> DW_CONVOLUTION, thin CONVOLUTION -> CM_CONVOLUTION on
// VPU_2_7+, input channels := output channels for channel-preserving ops.
WorkloadRecord preadapt(const WorkloadRecord& in);

// Step 2: VPUNN's sanitizer on a preadapted workload. Rewrites `w` in place (type folding, layout and
// swizzling vocabulary of the device) as far as VPUNN gets before deciding, and returns 0 when the
// workload is usable or the VPUNN error code otherwise.
uint32_t sanitize(WorkloadRecord& w);

// Derived weight tensor (input_1) of a workload as VPUNN shapes it for `device` (W, H, C, B, layout).
struct WeightTensor {
  int64_t w, h, c, b;
  Layout layout;
};
WeightTensor weight_tensor(const WorkloadRecord& w, Device device);

// CMX bytes VPUNN counts for a workload (inputs, weights, output, 16 KiB aligned).
int64_t cmx_footprint(const WorkloadRecord& w);

}  // namespace workload
}  // namespace vpunas
