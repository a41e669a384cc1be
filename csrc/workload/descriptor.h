// NN input descriptors of VPUNN's DPU models, one encoder per input interface version.
#pragma once
#include <cstddef>
#include <cstdint>

#include "workload/workload.h"

namespace vpunas {
namespace workload {

// Which descriptor layout + model-specific adapter a model's input interface (the "VI" of its name) uses.
enum class Encoder : int32_t {
  V10,         // interface 10 (67 floats): VPU 2.0 era
  V11_NPU27,   // interface 11 (93): VPU 2.7 trained, VPU 4.0 mocked as 2.7, swizzling / owt / ISI folding
  V11_NPU40,   // interface 4011 (93): NPU 4.0 trained
  V11_COMPAT,  // interface 89 (93): v11 for 2.7-style NNs without swizzling / training-space folding
  V11_NPU41,   // interface 4111 (93): like 4011 but all swizzlings pass through
};

// Encoder of a model input interface number; throws InputError for unsupported versions.
Encoder encoder_for_interface(int interface_version);
size_t descriptor_size(Encoder e);

// Writes the descriptor of an (already adapted + sanitised) workload into out[descriptor_size(e)].
// Returns false (and leaves zeros) when VPUNN could not encode it (a value the interface has no slot for).
bool encode_descriptor(Encoder e, const WorkloadRecord& w, float* out);

}  // namespace workload
}  // namespace vpunas
