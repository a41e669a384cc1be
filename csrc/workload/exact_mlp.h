// A forward pass that reproduces VPUNN's own float32 arithmetic bit for bit.
//
// VPUNN's built-in dense kernel computes each output as a dot product whose summation order depends on
// whether the weight row starts 16-byte aligned: aligned rows use 4 SSE lanes over blocks of 32 inputs
// (pairwise products, a fixed add tree, horizontal add, then a sequential tail); other rows sum
// sequentially. No fused multiply-add. Bias is added afterwards. Matching that order makes every NN
// value identical to the library's, so cycle counts match exactly instead of "within 2 cycles".
// Speed comes from vectorising across 8 output neurons that share the same order (each lane follows
// the exact scalar sequence of its own neuron), so one workload costs one pass over the weights.
#pragma once
#include <cstddef>
#include <vector>

#include "vpunn/model_file.h"

namespace vpunas {
namespace workload {

class ExactMlp {
 public:
  explicit ExactMlp(const vpunn::ModelFile& f);
  int input_size() const { return input_size_; }
  int output_size() const { return output_size_; }
  // y[n, output_size] = network(x[n, input_size]); single-threaded, thread-safe (const).
  void forward(const float* x, size_t n, float* y) const;

 private:
  // Output neurons of one layer that share a summation order, weights transposed to [in][padded count].
  struct NeuronSet {
    int count = 0, padded = 0;  // padded to a multiple of 8
    std::vector<float> wt;      // [in][padded]
    std::vector<float> bias;    // [padded]
    std::vector<int> index;     // neuron number in the layer, [count]
  };
  struct Layer {
    int in = 0, out = 0;
    vpunn::Activation act = vpunn::Activation::None;
    NeuronSet aligned, sequential;  // VPUNN's SSE order / plain sequential order
  };
  static constexpr size_t kBlock = 16;  // workloads sharing each weight load
  void forward_block(const float* x, size_t m, float* y, float* a, float* b, float* tmp) const;
  std::vector<Layer> layers_;
  int input_size_ = 0, output_size_ = 0, max_width_ = 1;
  bool use_avx_ = false;
};

}  // namespace workload
}  // namespace vpunas
