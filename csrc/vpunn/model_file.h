// Reader for Intel VPUNN model files (.vpunn): a flatbuffer (identifier "VPUN") holding an MLP of fully
// connected layers. Every offset, length and shape read from the file is bounds-checked; a truncated,
// corrupted or hostile file raises vpunas::InputError with the reason and never reads out of bounds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vpunas::vpunn {

enum class Activation { None = 0, Relu = 1, Sigmoid = 2 };

const char* activation_name(Activation a);

struct DenseLayer {
  int in = 0, out = 0;
  std::vector<float> weight;  // [out][in] row-major, as stored in the file
  std::vector<float> bias;    // [out]; zeros when the file has no bias tensor
  Activation act = Activation::None;
};

struct ModelFile {
  std::string name;                         // Model.name as stored, e.g. "VPUNN-11-02 $nickname$"
  int interface_in = 0, interface_out = 0;  // VI and VO parsed from the name
  std::vector<DenseLayer> layers;

  int input_size() const { return layers.empty() ? 0 : layers.front().in; }
  int output_size() const { return layers.empty() ? 0 : layers.back().out; }

  // Both throw vpunas::InputError naming what is wrong (load also for file errors).
  static ModelFile parse(const uint8_t* data, size_t size);
  static ModelFile load(const std::string& path);
};

// Interface versions, parsed the way VPUNN does it: name "NAME-VI-VO[ anything]", split at '-', the
// leading integer of the 2nd and 3rd part (missing parts default to 1). Throws InputError when a part
// that must hold a number does not start with one.
void parse_interface_versions(const std::string& name, int* vi, int* vo);

// DPU descriptor interface versions we can read (VPUNN's NNVersions): 10 (67 inputs), 11 and its
// variants 89 (v11 "compatibility" for NPU 2.7-trained nets), 4011 (NPU 4.0), 4111 (NPU 4.0, more
// swizzlings), all 93 inputs. Returns the descriptor width, or 0 for an unsupported version.
int descriptor_size_for_interface(int interface_in);

// Output (post-processing) versions known to VPUNN: 0..3 pass-through, 4 NPU 2.7 -> 4.0 adapter,
// 5 NPU 4.0 adapter.
bool is_supported_output_interface(int interface_out);

}  // namespace vpunas::vpunn
