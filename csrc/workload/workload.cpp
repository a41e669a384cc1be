// Enum name tables and small helpers of the DPU workload record.
#include "workload/workload.h"

namespace vpunas {
namespace workload {

const std::vector<std::string>& device_names() {
  static const std::vector<std::string> names{"VPU_2_0",        "VPU_2_1", "VPU_2_7",        "VPU_4_0",
                                              "NPU_RESERVED",   "NPU_RESERVED_W", "NPU_5_0",
                                              "NPU_RESERVED_1", "NPU_RESERVED_1_W"};
  return names;
}
const std::vector<std::string>& operation_names() {
  static const std::vector<std::string> names{"CONVOLUTION", "DW_CONVOLUTION", "ELTWISE",
                                              "MAXPOOL",     "AVEPOOL",        "CM_CONVOLUTION",
                                              "LAYER_NORM",  "ELTWISE_MUL",    "REDUCE_MS"};
  return names;
}
const std::vector<std::string>& datatype_names() {
  static const std::vector<std::string> names{"UINT8", "INT8",  "FLOAT16", "BFLOAT16", "BF8",     "HF8",
                                              "UINT4", "INT4",  "UINT2",   "INT2",     "UINT1",   "INT1",
                                              "INT32", "FLOAT32", "UINT16", "INT16",   "FLOAT4"};
  return names;
}
const std::vector<std::string>& execution_mode_names() {
  static const std::vector<std::string> names{"VECTOR",      "MATRIX",      "VECTOR_FP16", "CUBOID_16x16",
                                              "CUBOID_8x16", "CUBOID_4x16", "dCIM_32x128"};
  return names;
}
const std::vector<std::string>& layout_names() {
  static const std::vector<std::string> names{"ZMAJOR", "CMAJOR", "XYZ", "XZY",    "YXZ",
                                              "YZX",    "ZXY",    "ZYX", "INVALID"};
  return names;
}
const std::vector<std::string>& swizzling_names() {
  static const std::vector<std::string> names{"KEY_0", "KEY_1", "KEY_2", "KEY_3", "KEY_4", "KEY_5"};
  return names;
}
const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names{"NONE", "RELU", "LRELU", "ADD", "SUB", "MULT"};
  return names;
}
const std::vector<std::string>& isi_strategy_names() {
  static const std::vector<std::string> names{"Clustering", "SplitOverH", "SplitOverK"};
  return names;
}

WorkloadRecord default_workload() {
  WorkloadRecord w{};
  w.device = static_cast<int32_t>(Device::VPU_2_7);
  w.op = static_cast<int32_t>(Operation::CONVOLUTION);
  w.in_w = w.in_h = w.in_c = w.in_b = 1;
  w.out_w = w.out_h = w.out_c = w.out_b = 1;
  w.in_dtype = w.out_dtype = static_cast<int32_t>(DataType::UINT8);
  w.in_layout = w.out_layout = static_cast<int32_t>(Layout::ZXY);
  w.k_w = w.k_h = w.s_w = w.s_h = 1;
  w.exec_mode = static_cast<int32_t>(ExecutionMode::CUBOID_16x16);
  w.activation = static_cast<int32_t>(ActivationFunction::NONE);
  w.in_swz0 = w.in_swz1 = w.out_swz0 = static_cast<int32_t>(Swizzling::KEY_5);
  w.owt = 1;
  w.isi = static_cast<int32_t>(ISIStrategy::CLUSTERING);
  w.weight_dtype = kUnset;
  w.weightless_op = w.inplace_output = w.superdense = w.in_autopad = w.out_autopad = kUnset;
  return w;
}

std::string error_name(uint32_t value) {
  using namespace errors;
  if (!is_error(value)) return "";
  switch (value) {
    case ERROR_INPUT_TOO_BIG: return "ERROR_INPUT_TOO_BIG";
    case ERROR_INVALID_INPUT_CONFIGURATION: return "ERROR_INVALID_INPUT_CONFIGURATION";
    case ERROR_INVALID_INPUT_DEVICE: return "ERROR_INVALID_INPUT_DEVICE";
    case ERROR_INVALID_INPUT_OPERATION: return "ERROR_INVALID_INPUT_OPERATION";
    case ERROR_INVALID_OUTPUT_RANGE: return "ERROR_INVALID_OUTPUT_RANGE";
    case ERROR_TILE_OUTPUT: return "ERROR_TILE_OUTPUT";
    case ERROR_INVALID_LAYER_CONFIGURATION: return "ERROR_INVALID_LAYER_CONFIGURATION";
    case ERROR_INVALID_CONVERSION_TO_CYCLES: return "ERROR_INVALID_CONVERSION_TO_CYCLES";
    case ERROR_ENCODING_EXCEPTION: return "ERROR_ENCODING_EXCEPTION";
    default: return "UNKNOWN";
  }
}

}  // namespace workload
}  // namespace vpunas
