// Descriptor encoders (facts from VPUNN's Preprocessing_Interface10 / Interface11 archetype and its input
// adapters NN27 / NN40 / NN27_159 / NN41; our own code).
#include "workload/descriptor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"
#include "workload/sanitizer.h"

namespace vpunas {
namespace workload {
namespace {

// One-hot slot of a value in an interface's own enum list; -1 if the interface has no slot for it.
int device_slot(Device d) {
  switch (d) {
    case Device::VPU_2_0: return 0;
    case Device::VPU_2_1: return 1;
    case Device::VPU_2_7: return 2;
    case Device::VPU_4_0: return 3;
    default: return -1;
  }
}
int op_slot(Operation op) {
  switch (op) {
    case Operation::CONVOLUTION: return 0;
    case Operation::DW_CONVOLUTION: return 1;
    case Operation::ELTWISE: return 2;
    case Operation::MAXPOOL: return 3;
    case Operation::AVEPOOL: return 4;
    case Operation::CM_CONVOLUTION: return 5;
    default: return -1;
  }
}
int dtype_slot(DataType t) {
  switch (t) {
    case DataType::UINT8: return 0;
    case DataType::INT8: return 1;
    case DataType::FLOAT16: return 2;
    case DataType::BFLOAT16: return 3;
    default: return -1;
  }
}
int layout_slot_v11(Layout l) {
  switch (l) {
    case Layout::XYZ: return 0;
    case Layout::XZY: return 1;
    case Layout::YXZ: return 2;
    case Layout::YZX: return 3;
    case Layout::ZXY: return 4;
    case Layout::ZYX: return 5;
    case Layout::INVALID: return 6;
    default: return -1;
  }
}
int exec_slot_v10(ExecutionMode m) {
  const int v = static_cast<int>(m);
  return (v >= 0 && v <= static_cast<int>(ExecutionMode::CUBOID_4x16)) ? v : -1;
}
int exec_slot_v11(ExecutionMode m) {
  switch (m) {
    case ExecutionMode::CUBOID_16x16: return 0;
    case ExecutionMode::CUBOID_8x16: return 1;
    case ExecutionMode::CUBOID_4x16: return 2;
    default: return -1;
  }
}
int small_enum_slot(int32_t v, int n) { return (v >= 0 && v < n) ? v : -1; }

// Writes value fields and one-hot groups; remembers if any enum had no slot.
class Writer {
 public:
  explicit Writer(float* out) : out_(out) {}
  void value(double v) { out_[pos_++] = static_cast<float>(v); }
  void one_hot(int slot, int n) {
    if (slot < 0 || slot >= n) ok_ = false;
    else out_[pos_ + slot] = 1.0f;
    pos_ += n;
  }
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }

 private:
  float* out_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Sparsity ratios pass through std::to_string (6 decimals) in VPUNN's v11 encoder, to match its caches.
float six_decimals(float v) {
  if (v == 0.0f) return 0.0f;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%f", static_cast<double>(v));
  return std::strtof(buf, nullptr);
}

// ---- model-specific input adapters of interface 11
DataType mock_dtype(DataType t) {
  if (t == DataType::BF8 || t == DataType::HF8) return DataType::UINT8;
  if (t == DataType::FLOAT32 || t == DataType::INT32) return DataType::FLOAT16;
  return t;
}
Operation mock_op(Operation op) {
  if (op == Operation::LAYER_NORM || op == Operation::ELTWISE_MUL) return Operation::ELTWISE;
  if (op == Operation::AVEPOOL) return Operation::DW_CONVOLUTION;
  return op;
}
Device mock_device(Encoder e, Device d) {
  if (e == Encoder::V11_NPU40 || e == Encoder::V11_NPU41) {
    if (static_cast<int>(d) >= static_cast<int>(Device::NPU_RESERVED)) return Device::VPU_4_0;
    return d;
  }
  // NPU 2.7 trained: later devices are described as 2.7
  if (d == Device::VPU_4_0 || d == Device::NPU_RESERVED || d == Device::NPU_RESERVED_W || d == Device::NPU_5_0)
    return Device::VPU_2_7;
  return d;
}

struct Swz {
  int in0, in1, out0;
};
Swz unique_swizzling(Encoder e, const WorkloadRecord& w, Operation op) {
  Swz s{w.in_swz0, w.in_swz1, w.out_swz0};
  const int K0 = static_cast<int>(Swizzling::KEY_0), K5 = static_cast<int>(Swizzling::KEY_5);
  switch (e) {
    case Encoder::V11_NPU27:
      if (op == Operation::ELTWISE) {
        const bool any = s.in0 != K0 || s.in1 != K0 || s.out0 != K0;
        s = any ? Swz{K5, K5, K5} : Swz{K0, K0, K0};
      } else {
        s = {K5, K5, K5};
      }
      break;
    case Encoder::V11_NPU40:
      if (op == Operation::ELTWISE) {
        const int out = s.out0 != K0 ? K5 : K0;
        const bool any_in = s.in0 != K0 || s.in1 != K0;
        s = any_in ? Swz{K5, K5, out} : Swz{K0, K0, out};
      } else {
        s = {K5, K5, K5};
      }
      break;
    case Encoder::V11_COMPAT:
      return s;  // pass-through, including MAXPOOL weights
    default:
      break;  // V11_NPU41: pass-through
  }
  if (op == Operation::MAXPOOL) s.in1 = K0;  // pooling has no weights: trained with swizzling off
  return s;
}

struct OwtIsi {
  int owt;
  ISIStrategy isi;
};
// Folds ISI / output-write-tiles combinations the NN never saw onto trained ones.
OwtIsi avoid_untrained_space(Encoder e, const WorkloadRecord& w) {
  OwtIsi f{w.owt, static_cast<ISIStrategy>(w.isi)};
  const auto op = static_cast<Operation>(w.op);
  if (e == Encoder::V11_NPU27) {
    if (f.isi == ISIStrategy::SPLIT_OVER_H && w.k_h == 1) f.isi = ISIStrategy::CLUSTERING;
    if (f.isi == ISIStrategy::CLUSTERING && f.owt > 1) f.isi = ISIStrategy::SPLIT_OVER_K;
    if (f.isi == ISIStrategy::SPLIT_OVER_K && op == Operation::ELTWISE) {
      f.isi = ISIStrategy::CLUSTERING;
      f.owt = 1;
    }
    if (f.owt > 2) f.owt = 2;
  } else if (e == Encoder::V11_NPU40 || e == Encoder::V11_NPU41) {
    if (f.isi == ISIStrategy::SPLIT_OVER_H) f.isi = ISIStrategy::CLUSTERING;
    if (f.isi == ISIStrategy::CLUSTERING && f.owt > 1) f.isi = ISIStrategy::SPLIT_OVER_K;
    if (f.owt > 6) f.owt = 6;
  }
  return f;
}

bool encode_v10(const WorkloadRecord& w, float* out) {
  Writer o(out);
  o.one_hot(device_slot(static_cast<Device>(w.device)), 4);
  o.one_hot(op_slot(static_cast<Operation>(w.op)), 6);
  o.value(w.in_w); o.value(w.in_h); o.value(w.in_c); o.value(w.in_b);
  o.one_hot(dtype_slot(static_cast<DataType>(w.in_dtype)), 4);
  o.value(w.out_w); o.value(w.out_h); o.value(w.out_c); o.value(w.out_b);
  o.one_hot(dtype_slot(static_cast<DataType>(w.out_dtype)), 4);
  o.value(w.k_w); o.value(w.k_h);
  o.value(w.s_w); o.value(w.s_h);
  o.value(w.pad_t); o.value(w.pad_b); o.value(w.pad_l); o.value(w.pad_r);
  o.one_hot(exec_slot_v10(static_cast<ExecutionMode>(w.exec_mode)), 6);
  o.one_hot(small_enum_slot(w.activation, 6), 6);
  o.value(w.act_sparsity);
  o.value(w.weight_sparsity);
  o.one_hot(small_enum_slot(w.in_swz0, 6), 6);
  o.one_hot(small_enum_slot(w.in_swz1, 6), 6);
  o.one_hot(small_enum_slot(w.out_swz0, 6), 6);
  o.value(w.owt);
  return o.ok();
}

void tensor_v11(Writer& o, int64_t W, int64_t H, int64_t C, int64_t B, DataType t, Layout l, bool sparse) {
  o.value(static_cast<double>(W)); o.value(static_cast<double>(H));
  o.value(static_cast<double>(C)); o.value(static_cast<double>(B));
  o.one_hot(dtype_slot(mock_dtype(t)), 4);
  o.one_hot(layout_slot_v11(l), 7);
  o.value(sparse ? 1.0 : 0.0);
}

bool encode_v11(Encoder e, const WorkloadRecord& w, float* out) {
  Writer o(out);
  const auto device = mock_device(e, static_cast<Device>(w.device));
  const auto op = mock_op(static_cast<Operation>(w.op));
  o.one_hot(device_slot(device), 4);
  o.one_hot(op_slot(op), 6);
  const auto in_t = static_cast<DataType>(w.in_dtype);
  tensor_v11(o, w.in_w, w.in_h, w.in_c, w.in_b, in_t, static_cast<Layout>(w.in_layout), w.in_sparse != 0);
  {  // weights: shape from the (mocked) op and device, type follows the activations
    WorkloadRecord adapted = w;
    adapted.device = static_cast<int32_t>(device);
    adapted.op = static_cast<int32_t>(op);
    const auto dev = static_cast<Device>(adapted.device);
    if (dev != Device::VPU_2_0 && dev != Device::VPU_2_1 && dev != Device::VPU_2_7 && dev != Device::VPU_4_0 &&
        dev != Device::NPU_5_0)
      return false;  // VPUNN has no device configuration to shape the weights with
    const WeightTensor wt = weight_tensor(adapted, dev);
    tensor_v11(o, wt.w, wt.h, wt.c, wt.b, in_t, wt.layout, w.weight_sparsity_enabled != 0);
  }
  tensor_v11(o, w.out_w, w.out_h, w.out_c, w.out_b, static_cast<DataType>(w.out_dtype),
             static_cast<Layout>(w.out_layout), w.out_sparse != 0);
  o.value(w.k_w); o.value(w.k_h);
  o.value(w.s_w); o.value(w.s_h);
  o.value(w.pad_t); o.value(w.pad_b); o.value(w.pad_l); o.value(w.pad_r);
  o.one_hot(exec_slot_v11(static_cast<ExecutionMode>(w.exec_mode)), 3);
  o.value(six_decimals(w.act_sparsity));
  o.value(six_decimals(w.weight_sparsity));
  const Swz s = unique_swizzling(e, w, static_cast<Operation>(w.op));
  o.one_hot(small_enum_slot(s.in0, 6), 6);
  o.one_hot(small_enum_slot(s.in1, 6), 6);
  o.one_hot(small_enum_slot(s.out0, 6), 6);
  const OwtIsi f = avoid_untrained_space(e, w);
  o.value(f.owt);
  o.one_hot(small_enum_slot(static_cast<int32_t>(f.isi), 3), 3);
  return o.ok();
}

}  // namespace

Encoder encoder_for_interface(int v) {
  switch (v) {
    case 10: return Encoder::V10;
    case 11: return Encoder::V11_NPU27;
    case 4011: return Encoder::V11_NPU40;
    case 89: return Encoder::V11_COMPAT;
    case 4111: return Encoder::V11_NPU41;
    default:
      throw InputError("VPUNN model input interface " + std::to_string(v) +
                       " is not supported (supported: 10, 11, 89, 4011, 4111)");
  }
}

size_t descriptor_size(Encoder e) { return e == Encoder::V10 ? 67 : 93; }

bool encode_descriptor(Encoder e, const WorkloadRecord& w, float* out) {
  const size_t n = descriptor_size(e);
  std::memset(out, 0, n * sizeof(float));
  const bool ok = e == Encoder::V10 ? encode_v10(w, out) : encode_v11(e, w, out);
  if (!ok) std::memset(out, 0, n * sizeof(float));
  return ok;
}

}  // namespace workload
}  // namespace vpunas
