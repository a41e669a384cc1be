// DPU workload as VPUNN describes it: enums (with VPUNN's text names) and the POD record that crosses
// the Python/C++ boundary as a numpy structured array (python/vpunas/costmodel.py WORKLOAD_DTYPE
// mirrors WorkloadRecord field by field; keep them in sync).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace vpunas {
namespace workload {

// Enum values are our own numbering; only the text names are VPUNN's (the descriptor encoders map
// them onto each interface's own one-hot order).
enum class Device : int32_t {
  VPU_2_0, VPU_2_1, VPU_2_7, VPU_4_0, NPU_RESERVED, NPU_RESERVED_W, NPU_5_0, NPU_RESERVED_1,
  NPU_RESERVED_1_W, COUNT
};
enum class Operation : int32_t {
  CONVOLUTION, DW_CONVOLUTION, ELTWISE, MAXPOOL, AVEPOOL, CM_CONVOLUTION, LAYER_NORM, ELTWISE_MUL,
  REDUCE_MS, COUNT
};
enum class DataType : int32_t {
  UINT8, INT8, FLOAT16, BFLOAT16, BF8, HF8, UINT4, INT4, UINT2, INT2, UINT1, INT1, INT32, FLOAT32,
  UINT16, INT16, FLOAT4, COUNT
};
// Bytes one element occupies in memory (sub-byte types as fractions), as the DMA and SHAVE models count
// transfers. (The sanitizer's dtype_bytes differs on purpose: VPUNN's memory check counts sub-byte as 0.)
inline double dtype_storage_bytes(DataType t) {
  switch (t) {
    case DataType::FLOAT16:
    case DataType::BFLOAT16:
    case DataType::UINT16:
    case DataType::INT16: return 2.0;
    case DataType::FLOAT32:
    case DataType::INT32: return 4.0;
    case DataType::UINT4:
    case DataType::INT4:
    case DataType::FLOAT4: return 0.5;
    default: return 1.0;
  }
}
enum class ExecutionMode : int32_t {
  VECTOR, MATRIX, VECTOR_FP16, CUBOID_16x16, CUBOID_8x16, CUBOID_4x16, dCIM_32x128, COUNT
};
enum class Layout : int32_t { ZMAJOR, CMAJOR, XYZ, XZY, YXZ, YZX, ZXY, ZYX, INVALID, COUNT };
enum class Swizzling : int32_t { KEY_0, KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, COUNT };
enum class ActivationFunction : int32_t { NONE, RELU, LRELU, ADD, SUB, MULT, COUNT };
enum class ISIStrategy : int32_t { CLUSTERING, SPLIT_OVER_H, SPLIT_OVER_K, COUNT };

// Text names, indexed by enum value (exactly VPUNN's spelling, e.g. "SplitOverH").
const std::vector<std::string>& device_names();
const std::vector<std::string>& operation_names();
const std::vector<std::string>& datatype_names();
const std::vector<std::string>& execution_mode_names();
const std::vector<std::string>& layout_names();
const std::vector<std::string>& swizzling_names();
const std::vector<std::string>& activation_names();
const std::vector<std::string>& isi_strategy_names();

// Optional flag / optional enum field: -1 means "not set" (VPUNN std::optional / unset).
constexpr int32_t kUnset = -1;

// One DPU workload. Plain old data, 4-byte fields only, no padding: safe for zero-copy numpy views.
struct WorkloadRecord {
  int32_t device;  // Device
  int32_t op;      // Operation
  int32_t in_w, in_h, in_c, in_b;
  int32_t in_dtype;   // DataType
  int32_t in_layout;  // Layout
  int32_t in_sparse;  // 0/1 input activation sparsity flag
  int32_t out_w, out_h, out_c, out_b;
  int32_t out_dtype, out_layout, out_sparse;
  int32_t k_w, k_h, s_w, s_h;
  int32_t pad_t, pad_b, pad_l, pad_r;
  int32_t exec_mode;   // ExecutionMode
  int32_t activation;  // ActivationFunction
  float act_sparsity;
  float weight_sparsity;
  int32_t weight_sparsity_enabled;
  int32_t in_swz0, in_swz1, out_swz0;  // Swizzling
  int32_t owt;                         // output write tiles
  int32_t isi;                         // ISIStrategy
  int32_t weight_dtype;                // DataType or kUnset (= input type)
  int32_t weightless_op, inplace_output, superdense, in_autopad, out_autopad;  // 0/1 or kUnset
};
static_assert(std::is_standard_layout<WorkloadRecord>::value && std::is_trivial<WorkloadRecord>::value,
              "WorkloadRecord must stay POD");
static_assert(sizeof(WorkloadRecord) == 40 * 4, "WorkloadRecord layout changed: update WORKLOAD_DTYPE");

// A workload with VPUNN's defaults (ZXY, KEY_5 swizzling, owt 1, Clustering, flags unset).
WorkloadRecord default_workload();

// VPUNN returns errors in the cycle value itself, counting down from UINT32_MAX.
namespace errors {
constexpr uint32_t ERROR_INPUT_TOO_BIG = 0xFFFFFFFFu;
constexpr uint32_t ERROR_INVALID_INPUT_CONFIGURATION = 0xFFFFFFFFu - 1;
constexpr uint32_t ERROR_INVALID_INPUT_DEVICE = 0xFFFFFFFFu - 2;
constexpr uint32_t ERROR_INVALID_INPUT_OPERATION = 0xFFFFFFFFu - 3;
constexpr uint32_t ERROR_INVALID_OUTPUT_RANGE = 0xFFFFFFFFu - 4;
constexpr uint32_t ERROR_TILE_OUTPUT = 0xFFFFFFFFu - 5;
constexpr uint32_t ERROR_INVALID_LAYER_CONFIGURATION = 0xFFFFFFFFu - 8;
constexpr uint32_t ERROR_INVALID_CONVERSION_TO_CYCLES = 0xFFFFFFFFu - 10;
// Our own code for a workload VPUNN's single call throws on (e.g. a device the model cannot encode).
constexpr uint32_t ERROR_ENCODING_EXCEPTION = 0xFFFFFFFFu - 999;
constexpr uint32_t kFirstError = 0xFFFFFFFFu - 1000;  // values above this are errors
inline bool is_error(uint32_t v) { return v > kFirstError; }
}  // namespace errors

// Name of an error code ("ERROR_INPUT_TOO_BIG", ...), "UNKNOWN" for an unnamed error value, "" for cycles.
std::string error_name(uint32_t value);

}  // namespace workload
}  // namespace vpunas
