// VPUNN workload adaptation and validity checks (facts from VPUNN's DPU_OperationSanitizer, the
// per-device "workload valid values" and the per-operation constraints; our own code).
#include "workload/sanitizer.h"

#include <algorithm>
#include <cmath>

namespace vpunas {
namespace workload {
namespace {

using E = uint32_t;

constexpr int kSpatialMax = 8192;  // largest W / H / C the hardware addresses
constexpr int kKernelMax = 15;
constexpr int kStrideMax = 8;
constexpr int64_t kPageBytes = 16384;  // CMX allocation granularity

// Sizes of garbage workloads can overflow 64 bits: saturate (anything that large is refused anyway).
constexpr int64_t kSat = int64_t{1} << 62;
int64_t sat_mul(int64_t a, int64_t b) {
  if (a <= 0 || b <= 0) return 0;  // sizes are never negative here
  if (a > kSat / b) return kSat;
  return a * b;
}
int64_t sat_add(int64_t a, int64_t b) { return std::min(kSat, a + b); }

int64_t align_up(int64_t x, int64_t m) {
  const int64_t r = x % m;
  return r == 0 ? x : x + (m - r);
}

bool is_sub_byte(DataType t) {
  switch (t) {
    case DataType::UINT4: case DataType::INT4: case DataType::UINT2: case DataType::INT2:
    case DataType::UINT1: case DataType::INT1: case DataType::FLOAT4:
      return true;
    default:
      return false;
  }
}

int dtype_bits(DataType t) {
  switch (t) {
    case DataType::UINT8: case DataType::INT8: case DataType::BF8: case DataType::HF8: return 8;
    case DataType::FLOAT16: case DataType::BFLOAT16: case DataType::UINT16: case DataType::INT16: return 16;
    case DataType::INT32: case DataType::FLOAT32: return 32;
    case DataType::UINT4: case DataType::INT4: case DataType::FLOAT4: return 4;
    case DataType::UINT2: case DataType::INT2: return 2;
    case DataType::UINT1: case DataType::INT1: return 1;
    default: return 8;
  }
}

int64_t tensor_bytes(int64_t elements, DataType t) { return (sat_mul(elements, dtype_bits(t)) + 7) / 8; }

// VPUNN folds signed / bfloat variants onto one type per size.
DataType restrict_datatype(DataType t) {
  switch (t) {
    case DataType::INT8: return DataType::UINT8;
    case DataType::INT4: return DataType::UINT4;
    case DataType::INT2: return DataType::UINT2;
    case DataType::INT1: return DataType::UINT1;
    case DataType::BFLOAT16: return DataType::FLOAT16;
    case DataType::BF8: return DataType::HF8;
    case DataType::INT16: return DataType::UINT16;
    default: return t;
  }
}

enum class Family { V20, V27, V40, V50, NONE };

Family family_of(Device d) {
  switch (d) {
    case Device::VPU_2_0: case Device::VPU_2_1: return Family::V20;
    case Device::VPU_2_7: return Family::V27;
    case Device::VPU_4_0: return Family::V40;
    case Device::NPU_5_0: return Family::V50;
    default: return Family::NONE;
  }
}

bool supported_op(Operation op) {
  switch (op) {
    case Operation::CONVOLUTION: case Operation::DW_CONVOLUTION: case Operation::CM_CONVOLUTION:
    case Operation::ELTWISE: case Operation::MAXPOOL:
      return true;
    default:
      return false;
  }
}

int64_t cmx_bytes(Family f) {
  switch (f) {
    case Family::V20: return 1024 * 1024;
    case Family::V27: return 2048 * 1024;
    case Family::V40: return 1536 * 1024;
    case Family::V50: return 1536 * 1024;
    default: return 0;
  }
}

int weights_alignment(Family f) { return (f == Family::V40 || f == Family::V50) ? 32 : 16; }

bool valid_layout(Family f, Layout l) {
  if (f == Family::V20) return l == Layout::ZMAJOR || l == Layout::CMAJOR;
  return l == Layout::ZXY || l == Layout::XYZ || l == Layout::XZY || l == Layout::YXZ || l == Layout::YZX ||
         l == Layout::ZYX;
}

bool valid_exec_mode(Family f, ExecutionMode m) {
  if (f == Family::V20)
    return m == ExecutionMode::VECTOR_FP16 || m == ExecutionMode::VECTOR || m == ExecutionMode::MATRIX;
  return m == ExecutionMode::CUBOID_4x16 || m == ExecutionMode::CUBOID_8x16 || m == ExecutionMode::CUBOID_16x16;
}

// Input/output activation types (checked after folding, so only UINT8 / FLOAT16 survive in practice).
bool valid_act_dtype(DataType t) {
  return t == DataType::INT8 || t == DataType::UINT8 || t == DataType::FLOAT16 || t == DataType::BFLOAT16;
}
bool valid_out_dtype(Family f, DataType t) {
  return valid_act_dtype(t) || ((f == Family::V40 || f == Family::V50) && t == DataType::FLOAT32);
}
bool valid_weight_dtype(Family f, DataType t) {
  if (valid_act_dtype(t)) return true;
  return f != Family::V20 && (t == DataType::INT4 || t == DataType::UINT4);
}

bool multiple_of_16_in(int64_t c, int64_t lo, int64_t hi) { return c >= lo && c <= hi && c % 16 == 0; }

bool valid_input_channels(Family f, Operation op, int64_t c) {
  switch (op) {
    case Operation::CONVOLUTION:
    case Operation::ELTWISE:
      return multiple_of_16_in(c, 16, kSpatialMax);
    case Operation::CM_CONVOLUTION:
      return c >= 1 && c <= ((f == Family::V40 || f == Family::V50) ? 15 : 16);
    case Operation::DW_CONVOLUTION:
    case Operation::MAXPOOL:
      if (f == Family::V20) return multiple_of_16_in(c, 16, kSpatialMax);
      return c == 16 || c == 32 || c == 64;  // NPU 2.7+ workloads: only these depthwise widths
    default:
      return false;
  }
}

int output_dim(int64_t in, int64_t pad_a, int64_t pad_b, int64_t k, int64_t s) {
  if (s == 0) return 0;
  return static_cast<int>((in + pad_a + pad_b - (k - 1) - 1) / s + 1);
}

bool eltwise_like(Operation op) { return op == Operation::ELTWISE || op == Operation::ELTWISE_MUL; }

// Unset in-place flag of an element-wise op: derived from the tensors (same layout and element size).
bool inplace_output(const WorkloadRecord& w) {
  if (w.inplace_output != kUnset) return w.inplace_output != 0;
  const auto in_t = static_cast<DataType>(w.in_dtype), out_t = static_cast<DataType>(w.out_dtype);
  return w.in_layout == w.out_layout && dtype_bits(in_t) == dtype_bits(out_t);
}
bool weightless(const WorkloadRecord& w) {
  if (w.weightless_op != kUnset) return w.weightless_op != 0;
  const auto in_t = static_cast<DataType>(w.in_dtype), out_t = static_cast<DataType>(w.out_dtype);
  return w.in_layout != w.out_layout || dtype_bits(in_t) != dtype_bits(out_t);
}

DataType weight_dtype_of(const WorkloadRecord& w) {
  return w.weight_dtype == kUnset ? static_cast<DataType>(w.in_dtype) : static_cast<DataType>(w.weight_dtype);
}

}  // namespace

double dtype_bytes(DataType t) { return is_sub_byte(t) ? 0.0 : dtype_bits(t) / 8.0; }

WorkloadRecord preadapt(const WorkloadRecord& in) {
  WorkloadRecord w = in;
  const auto dev = static_cast<Device>(w.device);
  const bool before_npu5 = family_of(dev) != Family::V50 && dev != Device::NPU_RESERVED_1 &&
                           dev != Device::NPU_RESERVED_1_W;
  auto op = static_cast<Operation>(w.op);
  if (op == Operation::AVEPOOL && before_npu5) op = Operation::DW_CONVOLUTION;
  const bool npu27_or_later = dev != Device::VPU_2_0 && dev != Device::VPU_2_1;
  if (op == Operation::CONVOLUTION && npu27_or_later && w.in_c >= 1 && w.in_c < 16) op = Operation::CM_CONVOLUTION;
  if ((op == Operation::ELTWISE || op == Operation::DW_CONVOLUTION || op == Operation::MAXPOOL ||
       op == Operation::AVEPOOL) &&
      w.out_c >= 16)
    w.in_c = w.out_c;
  w.op = static_cast<int32_t>(op);
  return w;
}

WeightTensor weight_tensor(const WorkloadRecord& w, Device device) {
  const Family f = family_of(device);
  const auto op = static_cast<Operation>(w.op);
  const auto wt = weight_dtype_of(w);
  const bool wide = dtype_bits(wt) > 8;
  const auto layout = static_cast<Layout>(w.in_layout);
  const int64_t k = sat_mul(std::max(w.k_w, 0), std::max(w.k_h, 0));
  const int64_t in_c = std::max(w.in_c, 0);
  switch (op) {
    case Operation::CONVOLUTION:
    case Operation::LAYER_NORM: {
      const int m = (w.weight_sparsity_enabled || wide) ? 16 : weights_alignment(f);
      return {1, 1, align_up(sat_mul(in_c, k), m), w.out_c, layout};
    }
    case Operation::DW_CONVOLUTION:
    case Operation::AVEPOOL: {
      const int m = wide ? 16 : weights_alignment(f);
      return {1, 1, align_up(k, m), w.out_c, layout};
    }
    case Operation::CM_CONVOLUTION:
      return {1, 1, align_up(sat_mul(in_c, k), wide ? 8 : 16), w.out_c, layout};
    case Operation::ELTWISE:
    case Operation::ELTWISE_MUL:
      return {w.in_h, w.in_c, w.in_w, w.in_b, layout};
    default:  // MAXPOOL and anything without weights
      return {0, 0, 0, 0, Layout::INVALID};
  }
}

int64_t cmx_footprint(const WorkloadRecord& w) {
  const auto op = static_cast<Operation>(w.op);
  const auto in_t = static_cast<DataType>(w.in_dtype);
  const auto out_t = static_cast<DataType>(w.out_dtype);
  const auto dev = static_cast<Device>(w.device);
  auto vol = [](int64_t a, int64_t b, int64_t c, int64_t d) {
    return sat_mul(sat_mul(std::max<int64_t>(a, 0), std::max<int64_t>(b, 0)),
                   sat_mul(std::max<int64_t>(c, 0), std::max<int64_t>(d, 0)));
  };

  // Activations (+ sparsity map over the compute samples; CM convolutions count 4 or 16 channels there).
  int64_t in0 = tensor_bytes(vol(w.in_w, w.in_h, w.in_c, w.in_b), in_t);
  if (w.in_sparse) {
    const int64_t c = op == Operation::CM_CONVOLUTION ? (w.in_c < 5 ? 4 : 16) : w.in_c;
    in0 = sat_add(in0, align_up(vol(w.in_w, w.in_h, c, w.in_b) / 8, 16));
  }
  in0 = align_up(in0, kPageBytes);

  // Weights (+ sparsity map, + weight table of 16 bytes per output channel for convolutions).
  const WeightTensor wt = weight_tensor(w, dev);
  int64_t in1 = tensor_bytes(vol(wt.w, wt.h, wt.c, wt.b), weight_dtype_of(w));
  if (w.weight_sparsity_enabled) {
    const float sp = std::min(std::max(w.weight_sparsity, 0.0f), 1.0f);  // out-of-range ratios are refused later
    in1 -= static_cast<int64_t>(std::floor(static_cast<double>(in1) * sp));
    in1 = sat_add(in1, sat_mul(std::max(w.out_c, 0), align_up(vol(w.in_c, w.k_h, w.k_w, 1) / 8, 16)));
  }
  if (!eltwise_like(op) && op != Operation::MAXPOOL) in1 = sat_add(in1, sat_mul(std::max(w.out_c, 0), 16));
  in1 = align_up(in1, kPageBytes);

  const int64_t out_elems = vol(w.out_w, w.out_h, w.out_c, w.out_b);
  int64_t out0 = tensor_bytes(out_elems, out_t);
  if (w.out_sparse) out0 = sat_add(out0, align_up(out_elems / 8, 16));
  out0 = align_up(out0, kPageBytes);

  bool skip_out = false;
  if (eltwise_like(op)) {
    skip_out = inplace_output(w);
    if (weightless(w)) in1 = 0;
  }
  return sat_add(sat_add(in0, in1), skip_out ? 0 : out0);
}

uint32_t sanitize(WorkloadRecord& w) {
  const auto dev = static_cast<Device>(w.device);
  const Family f = family_of(dev);
  if (f == Family::NONE) return errors::ERROR_INVALID_INPUT_DEVICE;
  const auto op = static_cast<Operation>(w.op);
  if (!supported_op(op)) return errors::ERROR_INVALID_INPUT_OPERATION;

  // Fold types, translate layout / swizzling names into the device's vocabulary.
  w.in_dtype = static_cast<int32_t>(restrict_datatype(static_cast<DataType>(w.in_dtype)));
  w.out_dtype = static_cast<int32_t>(restrict_datatype(static_cast<DataType>(w.out_dtype)));
  auto adapt_layout = [f](int32_t l) {
    const auto lay = static_cast<Layout>(l);
    if (f == Family::V20) {
      if (lay == Layout::ZXY) return static_cast<int32_t>(Layout::ZMAJOR);
      if (lay == Layout::XYZ) return static_cast<int32_t>(Layout::CMAJOR);
    } else {
      if (lay == Layout::ZMAJOR) return static_cast<int32_t>(Layout::ZXY);
      if (lay == Layout::CMAJOR) return static_cast<int32_t>(Layout::XYZ);
    }
    return l;
  };
  w.in_layout = adapt_layout(w.in_layout);
  w.out_layout = adapt_layout(w.out_layout);
  if (f == Family::V20) {
    w.in_swz0 = w.in_swz1 = w.out_swz0 = static_cast<int32_t>(Swizzling::KEY_0);
  }

  const auto in_t = static_cast<DataType>(w.in_dtype);
  const auto out_t = static_cast<DataType>(w.out_dtype);
  // Negative sizes cannot be sized; VPUNN sees them as huge unsigned values and refuses the workload.
  if (w.in_w < 0 || w.in_h < 0 || w.in_c < 0 || w.in_b < 0 || w.out_w < 0 || w.out_h < 0 || w.out_c < 0 ||
      w.out_b < 0 || w.k_w < 0 || w.k_h < 0)
    return errors::ERROR_INVALID_INPUT_CONFIGURATION;

  if (cmx_footprint(w) > cmx_bytes(f)) return errors::ERROR_INPUT_TOO_BIG;

  // ---- consistency checks: any failure -> ERROR_INVALID_INPUT_CONFIGURATION
  const auto fail = errors::ERROR_INVALID_INPUT_CONFIGURATION;
  const int max_owt = f == Family::V20 ? 1 : (f == Family::V27 ? 2 : 8);
  if (w.owt < 1 || w.owt > max_owt) return fail;
  const auto isi = static_cast<ISIStrategy>(w.isi);
  if (w.isi < 0 || w.isi >= static_cast<int32_t>(ISIStrategy::COUNT)) return fail;
  if (f == Family::V20 && isi != ISIStrategy::CLUSTERING) return fail;
  if (isi == ISIStrategy::SPLIT_OVER_K && w.owt <= 1) return fail;

  const int kmax = eltwise_like(op) ? 1 : kKernelMax;
  if (w.k_w < 1 || w.k_w > kmax || w.k_h < 1 || w.k_h > kmax) return fail;
  if (w.pad_l < 0 || w.pad_l > w.k_w / 2 || w.pad_r < 0 || w.pad_r > w.k_w / 2) return fail;
  if (w.pad_t < 0 || w.pad_t > w.k_h / 2 || w.pad_b < 0 || w.pad_b > w.k_h / 2) return fail;

  const int min_h = std::max(1, w.k_h - (w.pad_t + w.pad_b));
  const int min_w = std::max(1, w.k_w - (w.pad_l + w.pad_r));
  if (w.in_h < min_h || w.in_h > kSpatialMax || w.in_w < min_w || w.in_w > kSpatialMax) return fail;
  if (!valid_input_channels(f, op, w.in_c)) return fail;
  if (w.in_b < 1) return fail;
  if (!valid_act_dtype(in_t)) return fail;
  if (!valid_layout(f, static_cast<Layout>(w.in_layout))) return fail;
  if (w.in_swz0 < 0 || w.in_swz0 > 5 || (f == Family::V20 && w.in_swz0 != 0)) return fail;

  const int smax = eltwise_like(op) ? 1 : kStrideMax;
  if (w.s_w < 1 || w.s_w > smax || w.s_h < 1 || w.s_h > smax) return fail;

  if (w.out_b != w.in_b) return fail;
  if (w.out_w != output_dim(w.in_w, w.pad_l, w.pad_r, w.k_w, w.s_w)) return fail;
  const int halo = isi == ISIStrategy::SPLIT_OVER_H ? ((w.pad_t == 0 ? w.k_h : 0) + (w.pad_b == 0 ? w.k_h : 0)) : 0;
  const int h_lo = output_dim(w.in_h, w.pad_t, w.pad_b, w.k_h, w.s_h);
  const int h_hi = output_dim(static_cast<int64_t>(w.in_h) + halo, w.pad_t, w.pad_b, w.k_h, w.s_h);
  if (w.out_h < h_lo || w.out_h > h_hi) return fail;
  if (!multiple_of_16_in(w.out_c, 16, kSpatialMax)) return fail;
  if (!valid_out_dtype(f, out_t)) return fail;
  if (!valid_layout(f, static_cast<Layout>(w.out_layout))) return fail;
  if (w.out_swz0 < 0 || w.out_swz0 > 5 || (f == Family::V20 && w.out_swz0 != 0)) return fail;
  if (!valid_weight_dtype(f, weight_dtype_of(w))) return fail;

  // Sparsity: ratios in [0, 1]; enabled activation sparsity needs a real ratio; a ratio needs its flag.
  if (!(w.act_sparsity >= 0.0f && w.act_sparsity <= 1.0f)) return fail;
  if (w.in_sparse && w.act_sparsity < 0.01f) return fail;
  if (!(w.weight_sparsity >= 0.0f && w.weight_sparsity <= 1.0f)) return fail;
  if (op == Operation::CONVOLUTION || op == Operation::ELTWISE) {
    if (!w.in_sparse && w.act_sparsity != 0.0f) return fail;
    if (!w.weight_sparsity_enabled && w.weight_sparsity != 0.0f) return fail;
  } else {  // depthwise, CM, pooling: no sparsity at all
    if (w.in_sparse || w.act_sparsity != 0.0f || w.weight_sparsity_enabled || w.weight_sparsity != 0.0f)
      return fail;
  }

  if (!valid_exec_mode(f, static_cast<ExecutionMode>(w.exec_mode))) return fail;

  // Channel-preserving ops must keep the channel count (unless the output is auto-padded).
  if ((op == Operation::DW_CONVOLUTION || op == Operation::MAXPOOL || op == Operation::ELTWISE) &&
      !(w.out_autopad == 1) && w.out_c != w.in_c)
    return fail;
  return 0;
}

}  // namespace workload
}  // namespace vpunas
