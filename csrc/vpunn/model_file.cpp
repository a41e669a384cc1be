#include "vpunn/model_file.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>

#include "common.h"
#include "vpunn/flatbuffer_view.h"

namespace vpunas::vpunn {
namespace {

// Field ids from VPUNN's schema (src/schema/vpunn.fbs); a union takes two ids (type, value).
enum ModelField { kModelName = 0, kModelTensors, kModelInputs, kModelOutputs, kModelOperators, kModelBuffers };
enum TensorField { kTensorName = 0, kTensorShape, kTensorType, kTensorBuffer };
enum LayerField { kLayerName = 0, kLayerInputs, kLayerOutputs, kLayerImplType, kLayerImpl, kLayerActivation };
enum BufferField { kBufferData = 0 };

// LayerType union tags and TensorType values of the schema.
constexpr uint8_t kFullyConnected = 1, kL2Normalization = 2, kKnn = 3;
constexpr int8_t kTensorFloat32 = 0;

// Dimensions beyond this are not a cost model; also keeps products far from 64-bit overflow.
constexpr uint64_t kMaxDim = uint64_t(1) << 24;

struct TensorInfo {
  std::vector<uint64_t> shape;
  uint32_t buffer = 0;
  int8_t type = kTensorFloat32;
};

std::string layer_tag(size_t i) { return "layer " + std::to_string(i); }

class Parser {
 public:
  Parser(const uint8_t* data, size_t size) : v_(data, size) {}

  ModelFile run() {
    if (v_.size() < 8) v_.fail("header", 0, 8, "file too short to be a .vpunn model");
    if (std::memcmp(v_.bytes(4), "VPUN", 4) != 0)
      throw InputError("not a .vpunn model file: flatbuffer identifier is not \"VPUN\"");
    const fb::Table model = v_.table(v_.deref(0, "root offset"), "Model table");

    ModelFile out;
    if (size_t p = v_.field(model, kModelName, 4, "Model.name")) out.name = v_.string_at(p, "Model.name");
    read_tensors(model);
    read_buffers(model);
    const int32_t input = single_index(model, kModelInputs, "Model.inputs");
    const int32_t output = single_index(model, kModelOutputs, "Model.outputs");

    const size_t p_ops = v_.field(model, kModelOperators, 4, "Model.operators");
    if (!p_ops) throw InputError("corrupt .vpunn model file: Model.operators is missing");
    const fb::Vector ops = v_.vector_at(p_ops, 4, "Model.operators");
    if (ops.size == 0) throw InputError("corrupt .vpunn model file: the model has no layers");

    // Only a chain is supported: each layer consumes the previous layer's output.
    int32_t current = input;
    uint64_t width = activation_width(current, "model input");
    for (uint32_t i = 0; i < ops.size; ++i) {
      const size_t pos = ops.start + 4 * size_t(i);
      DenseLayer layer = read_layer(v_.table(v_.deref(pos, "Model.operators"), "Layer table"), i, &current, width);
      width = uint64_t(layer.out);
      out.layers.push_back(std::move(layer));
    }
    if (current != output)
      throw InputError("unsupported .vpunn model: the last layer writes tensor " + std::to_string(current) +
                       " but the model output is tensor " + std::to_string(output));

    parse_interface_versions(out.name, &out.interface_in, &out.interface_out);
    check_versions(out);
    return out;
  }

 private:
  void read_tensors(const fb::Table& model) {
    const size_t p = v_.field(model, kModelTensors, 4, "Model.tensors");
    if (!p) throw InputError("corrupt .vpunn model file: Model.tensors is missing");
    const fb::Vector vec = v_.vector_at(p, 4, "Model.tensors");
    tensors_.reserve(vec.size);
    for (uint32_t i = 0; i < vec.size; ++i) {
      const fb::Table t = v_.table(v_.deref(vec.start + 4 * size_t(i), "Model.tensors"), "Tensor table");
      TensorInfo info;
      if (size_t ps = v_.field(t, kTensorShape, 4, "Tensor.shape")) {
        const fb::Vector shape = v_.vector_at(ps, 4, "Tensor.shape");
        if (shape.size > 8)
          throw InputError("corrupt .vpunn model file: tensor " + std::to_string(i) + " has " +
                           std::to_string(shape.size) + " dimensions (at most 8 expected)");
        for (uint32_t k = 0; k < shape.size; ++k) info.shape.push_back(v_.u32(shape.start + 4 * size_t(k), "Tensor.shape"));
      }
      if (size_t pt = v_.field(t, kTensorType, 1, "Tensor.type")) info.type = int8_t(v_.u8(pt, "Tensor.type"));
      if (size_t pb = v_.field(t, kTensorBuffer, 4, "Tensor.buffer")) info.buffer = v_.u32(pb, "Tensor.buffer");
      tensors_.push_back(std::move(info));
    }
  }

  void read_buffers(const fb::Table& model) {
    const size_t p = v_.field(model, kModelBuffers, 4, "Model.buffers");
    if (!p) return;  // a model without constant data fails later, at its first weight
    const fb::Vector vec = v_.vector_at(p, 4, "Model.buffers");
    buffers_.reserve(vec.size);
    for (uint32_t i = 0; i < vec.size; ++i) {
      const fb::Table b = v_.table(v_.deref(vec.start + 4 * size_t(i), "Model.buffers"), "Buffer table");
      const size_t pd = v_.field(b, kBufferData, 4, "Buffer.data");
      buffers_.push_back(pd ? v_.vector_at(pd, 1, "Buffer.data") : fb::Vector{});
    }
  }

  int32_t single_index(const fb::Table& model, int field, const char* what) {
    const size_t p = v_.field(model, field, 4, what);
    if (!p) throw InputError(std::string("corrupt .vpunn model file: ") + what + " is missing");
    const fb::Vector vec = v_.vector_at(p, 4, what);
    if (vec.size != 1)
      throw InputError(std::string("unsupported .vpunn model: ") + what + " lists " + std::to_string(vec.size) +
                       " tensors (exactly 1 expected)");
    return v_.i32(vec.start, what);
  }

  const TensorInfo& tensor(int32_t index, const std::string& what) const {
    if (index < 0 || size_t(index) >= tensors_.size())
      throw InputError("corrupt .vpunn model file: " + what + " refers to tensor " + std::to_string(index) +
                       " but the model has " + std::to_string(tensors_.size()) + " tensors");
    return tensors_[size_t(index)];
  }

  static uint64_t checked_product(const std::vector<uint64_t>& dims, size_t from, const std::string& what) {
    uint64_t p = 1;
    for (size_t k = from; k < dims.size(); ++k) {
      if (dims[k] == 0 || dims[k] > kMaxDim || p > kMaxDim / dims[k])
        throw InputError("corrupt .vpunn model file: " + what + " has an invalid shape dimension " +
                         std::to_string(dims[k]));
      p *= dims[k];
    }
    return p;
  }

  // Width of an activation tensor: its shape is [batch, features...].
  uint64_t activation_width(int32_t index, const std::string& what) const {
    const TensorInfo& t = tensor(index, what);
    if (t.shape.empty()) throw InputError("corrupt .vpunn model file: " + what + " tensor has no shape");
    return checked_product(t.shape, t.shape.size() == 1 ? 0 : 1, what + " tensor");
  }

  // The float32 payload of a constant tensor, checked against the expected element count.
  std::vector<float> constant(int32_t index, uint64_t expected, const std::string& what) const {
    const TensorInfo& t = tensor(index, what);
    if (t.type != kTensorFloat32)
      throw InputError("unsupported .vpunn model: " + what + " has tensor type " + std::to_string(int(t.type)) +
                       " (only FLOAT32 is supported)");
    if (t.buffer == 0 || t.buffer >= buffers_.size())
      throw InputError("corrupt .vpunn model file: " + what + " refers to buffer " + std::to_string(t.buffer) +
                       " but the model has " + std::to_string(buffers_.size()) + " buffers (0 = no data)");
    const uint64_t elements = checked_product(t.shape, 0, what);
    if (elements != expected)
      throw InputError("corrupt .vpunn model file: " + what + " shape holds " + std::to_string(elements) +
                       " values but the layer needs " + std::to_string(expected));
    const fb::Vector& data = buffers_[t.buffer];
    if (uint64_t(data.size) != expected * 4)
      throw InputError("corrupt .vpunn model file: " + what + " buffer has " + std::to_string(data.size) +
                       " bytes but its shape needs " + std::to_string(expected * 4));
    std::vector<float> values(static_cast<size_t>(expected));
    for (size_t k = 0; k < values.size(); ++k) {
      uint32_t bits = v_.u32(data.start + 4 * k, "Buffer.data");  // little-endian float32
      std::memcpy(&values[k], &bits, 4);
      if (!std::isfinite(values[k]))
        throw InputError("corrupt .vpunn model file: " + what + " contains a non-finite value at index " +
                         std::to_string(k));
    }
    return values;
  }

  std::vector<int32_t> index_list(const fb::Table& t, int field, const std::string& what) const {
    const size_t p = v_.field(t, field, 4, "Layer index list");
    if (!p) throw InputError("corrupt .vpunn model file: " + what + " is missing");
    const fb::Vector vec = v_.vector_at(p, 4, "Layer index list");
    if (vec.size > 16)
      throw InputError("unsupported .vpunn model: " + what + " lists " + std::to_string(vec.size) + " tensors");
    std::vector<int32_t> out;
    for (uint32_t k = 0; k < vec.size; ++k) out.push_back(v_.i32(vec.start + 4 * size_t(k), "Layer index list"));
    return out;
  }

  DenseLayer read_layer(const fb::Table& t, size_t i, int32_t* current, uint64_t in_width) {
    const std::string tag = layer_tag(i);
    const size_t p_type = v_.field(t, kLayerImplType, 1, "Layer.implementation_type");
    const uint8_t type = p_type ? v_.u8(p_type, "Layer.implementation_type") : 0;
    if (type != kFullyConnected) {
      const char* name = type == kL2Normalization ? "L2NormalizationLayer"
                         : type == kKnn           ? "kNNLayer"
                         : type == 0              ? "NONE (missing)"
                                                  : nullptr;
      throw InputError("unsupported .vpunn model: " + tag + " has layer type " +
                       (name ? std::string(name) : "unknown (" + std::to_string(int(type)) + ")") +
                       "; only FullyConnectedLayer is supported");
    }
    int32_t act = 0;
    if (size_t pa = v_.field(t, kLayerActivation, 4, "Layer.activation_function")) act = v_.i32(pa, "Layer.activation_function");
    if (act < 0 || act > 2)
      throw InputError("unsupported .vpunn model: " + tag + " has activation function " + std::to_string(act) +
                       " (known: 0 NOOP, 1 RELU, 2 SIGMOID)");

    const std::vector<int32_t> inputs = index_list(t, kLayerInputs, tag + " inputs");
    const std::vector<int32_t> outputs = index_list(t, kLayerOutputs, tag + " outputs");
    if (inputs.size() < 2 || inputs.size() > 3)
      throw InputError("corrupt .vpunn model file: " + tag + " (fully connected) has " +
                       std::to_string(inputs.size()) + " inputs; expected [activation, weight, bias?]");
    if (outputs.size() != 1)
      throw InputError("unsupported .vpunn model: " + tag + " has " + std::to_string(outputs.size()) +
                       " outputs (exactly 1 expected)");
    if (inputs[0] != *current)
      throw InputError("unsupported .vpunn model: " + tag + " reads tensor " + std::to_string(inputs[0]) +
                       " instead of the previous output " + std::to_string(*current) +
                       " (only sequential networks are supported)");

    const uint64_t out_width = activation_width(outputs[0], tag + " output");
    DenseLayer layer;
    layer.in = int(in_width);
    layer.out = int(out_width);
    layer.act = Activation(act);

    // The weight shape is recorded as [in, out]; the data is [out][in] row-major.
    const TensorInfo& w = tensor(inputs[1], tag + " weight");
    if (w.shape.size() != 2 || w.shape[0] != in_width || w.shape[1] != out_width)
      throw InputError("corrupt .vpunn model file: " + tag + " weight shape " + shape_text(w.shape) +
                       " does not match [in, out] = [" + std::to_string(in_width) + ", " +
                       std::to_string(out_width) + "]");
    layer.weight = constant(inputs[1], in_width * out_width, tag + " weight");
    if (inputs.size() == 3)
      layer.bias = constant(inputs[2], out_width, tag + " bias");
    else
      layer.bias.assign(size_t(out_width), 0.0f);
    *current = outputs[0];
    return layer;
  }

  static std::string shape_text(const std::vector<uint64_t>& s) {
    std::string r = "[";
    for (size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
    return r + "]";
  }

  static void check_versions(const ModelFile& m) {
    const int expected = descriptor_size_for_interface(m.interface_in);
    if (expected == 0)
      throw InputError("unsupported .vpunn model '" + m.name + "': descriptor interface version " +
                       std::to_string(m.interface_in) + " is not supported (supported: 10, 11, 89, 4011, 4111)");
    if (!is_supported_output_interface(m.interface_out))
      throw InputError("unsupported .vpunn model '" + m.name + "': output interface version " +
                       std::to_string(m.interface_out) + " is not supported (supported: 0 to 5)");
    if (m.input_size() != expected)
      throw InputError("inconsistent .vpunn model '" + m.name + "': interface version " +
                       std::to_string(m.interface_in) + " needs " + std::to_string(expected) +
                       " inputs but the network takes " + std::to_string(m.input_size()));
    if (m.output_size() < 1)
      throw InputError("inconsistent .vpunn model '" + m.name + "': the network has no output");
  }

  fb::View v_;
  std::vector<TensorInfo> tensors_;
  std::vector<fb::Vector> buffers_;
};

// std::stoi semantics (VPUNN uses it): optional leading spaces and sign, then at least one digit.
bool leading_int(const std::string& s, int* value) {
  size_t k = 0;
  while (k < s.size() && std::isspace(static_cast<unsigned char>(s[k]))) ++k;
  bool neg = false;
  if (k < s.size() && (s[k] == '+' || s[k] == '-')) neg = s[k++] == '-';
  if (k >= s.size() || !std::isdigit(static_cast<unsigned char>(s[k]))) return false;
  int64_t v = 0;
  for (; k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])); ++k) {
    v = v * 10 + (s[k] - '0');
    if (v > std::numeric_limits<int>::max()) return false;
  }
  *value = int(neg ? -v : v);
  return true;
}

}  // namespace

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None: return "NOOP";
    case Activation::Relu: return "RELU";
    case Activation::Sigmoid: return "SIGMOID";
  }
  return "?";
}

void parse_interface_versions(const std::string& name, int* vi, int* vo) {
  // Same rules as VPUNN's ModelVersion::parse_name: split at '-', defaults VI = VO = 1, and an empty
  // name means "latest" (VI = 0).
  std::vector<std::string> parts;
  size_t start = 0;
  if (!name.empty()) {
    while (true) {
      const size_t dash = name.find('-', start);
      parts.push_back(name.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
      if (dash == std::string::npos) break;
      start = dash + 1;
      if (start == name.size()) break;  // std::getline yields no empty trailing part
    }
  }
  *vi = parts.empty() ? 0 : 1;
  *vo = 1;
  if (parts.size() >= 2 && !leading_int(parts[1], vi))
    throw InputError("unsupported .vpunn model: cannot read the input interface version from name '" + name +
                     "' (expected NAME-VI-VO)");
  if (parts.size() >= 3 && !leading_int(parts[2], vo))
    throw InputError("unsupported .vpunn model: cannot read the output interface version from name '" + name +
                     "' (expected NAME-VI-VO)");
}

int descriptor_size_for_interface(int interface_in) {
  switch (interface_in) {
    case 10: return 67;
    case 11:
    case 89:
    case 4011:
    case 4111: return 93;
    default: return 0;
  }
}

bool is_supported_output_interface(int interface_out) { return interface_out >= 0 && interface_out <= 5; }

ModelFile ModelFile::parse(const uint8_t* data, size_t size) {
  if (data == nullptr && size != 0) throw InputError("ModelFile::parse: null data pointer");
  return Parser(data, size).run();
}

ModelFile ModelFile::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open .vpunn model file '" + path + "' (check the path)");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError("cannot read .vpunn model file '" + path + "'");
  try {
    return parse(bytes.data(), bytes.size());
  } catch (const InputError& e) {
    throw InputError(std::string(e.what()) + " [file '" + path + "']");
  }
}

}  // namespace vpunas::vpunn
