// Inter-tile and intra-tile splitting of a layer, as VPUNN's layer cost model does it (facts and
// algorithms from intel/npu-nn-cost-model: DPULayer::splitAcrossTiles, HWTiling, ZTiling,
// LayersValidation). Our own code.
#include "layer/tiling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <utility>

#include "common.h"
#include "layer/dma.h"

namespace vpunas {
namespace layer {

using workload::DataType;
using workload::Device;
using workload::ExecutionMode;
using workload::ISIStrategy;
using workload::Layout;
using workload::Operation;

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t m) { return ceil_div(a, m) * m; }

// Input extent a given output extent needs (VPUNN helper_input_dim).
int helper_input_dim(int out, int k, int pad_total, int stride) {
  return (out - 1) * stride + k - pad_total;
}

Operation op_of(const WorkloadRecord& w) { return static_cast<Operation>(w.op); }
Device device_of(const WorkloadRecord& w) { return static_cast<Device>(w.device); }

bool is_dw_family(Operation op) {
  return op == Operation::DW_CONVOLUTION || op == Operation::MAXPOOL || op == Operation::AVEPOOL;
}

bool is_fp16_family(int32_t dtype) {
  return dtype == static_cast<int32_t>(DataType::FLOAT16) || dtype == static_cast<int32_t>(DataType::BFLOAT16);
}

// Output tensor shape changes keep input channels for kernels that read every input channel.
bool keeps_input_channels(const WorkloadRecord& w) {
  return op_of(w) == Operation::CONVOLUTION || op_of(w) == Operation::CM_CONVOLUTION || w.out_autopad == 1;
}

// VPUNN inferInputTensorShape: input W/H from output, kernel, stride and this workload's padding.
void infer_input_shape(WorkloadRecord& w) {
  w.in_w = helper_input_dim(w.out_w, w.k_w, w.pad_l + w.pad_r, w.s_w);
  w.in_h = helper_input_dim(w.out_h, w.k_h, w.pad_t + w.pad_b, w.s_h);
  if (!keeps_input_channels(w)) w.in_c = w.out_c;
  w.in_b = w.out_b;
}

int64_t out_volume(const WorkloadRecord& w) {
  return static_cast<int64_t>(w.out_w) * w.out_h * w.out_c * w.out_b;
}

void remove_empty_tiles(std::vector<WorkloadRecord>& tiles) {
  tiles.erase(std::remove_if(tiles.begin(), tiles.end(), [](const WorkloadRecord& t) { return out_volume(t) <= 0; }),
              tiles.end());
}

// SOHO / SOW (VPUNN SOH_overlapped_inputs / SOW_overlapped_inputs): equal output slices, each with the
// input rows (columns) it needs; inner cuts get no padding unless they run past the layer edge.
std::vector<WorkloadRecord> split_overlapped(const WorkloadRecord& layer, int n_tiles, bool over_width,
                                             bool force_broadcast) {
  const int output_size = over_width ? layer.out_w : layer.out_h;
  const int input_size = over_width ? layer.in_w : layer.in_h;
  const int k = over_width ? layer.k_w : layer.k_h;
  const int s = over_width ? layer.s_w : layer.s_h;
  const int pad_begin = over_width ? layer.pad_l : layer.pad_t;
  const int pad_end = over_width ? layer.pad_r : layer.pad_b;
  const int desired = static_cast<int>(ceil_div(output_size, n_tiles));

  std::vector<WorkloadRecord> tiles(static_cast<size_t>(n_tiles), layer);
  int available_in = input_size + pad_begin;
  int remnant_pad_begin = pad_begin;
  int remaining = output_size;
  for (auto& tile : tiles) {
    const int out_dim = remaining >= desired ? desired : remaining;
    const bool is_last = remaining == out_dim;
    const int cur_pad_begin = remnant_pad_begin;
    int cur_pad_end = is_last ? pad_end : 0;
    const int needed = helper_input_dim(out_dim, k, 0, s);
    const int need_more = needed - available_in;
    int in_dim = needed - cur_pad_begin;
    if (need_more > 0) {
      const int use_from_end = std::min(need_more, pad_end);
      in_dim -= use_from_end;
      if (!is_last) cur_pad_end = use_from_end;
    }
    if (in_dim < 0) in_dim = 0;
    if (over_width) {
      tile.out_w = out_dim;
      tile.in_w = in_dim;
      tile.pad_l = cur_pad_begin;
      tile.pad_r = cur_pad_end;
    } else {
      tile.out_h = out_dim;
      tile.in_h = in_dim;
      tile.pad_t = cur_pad_begin;
      tile.pad_b = cur_pad_end;
    }
    tile.isi = static_cast<int32_t>(ISIStrategy::CLUSTERING);
    tile.owt = force_broadcast ? n_tiles : layer.owt;
    const int consumed = out_dim * s;
    available_in -= consumed;
    remnant_pad_begin = remnant_pad_begin > consumed ? remnant_pad_begin - consumed : 0;
    remaining -= out_dim;
  }
  remove_empty_tiles(tiles);
  if (force_broadcast && static_cast<int>(tiles.size()) < n_tiles) {
    for (auto& t : tiles) t.owt = static_cast<int32_t>(tiles.size());
  }
  return tiles;
}

// SOK (VPUNN SOK with broadcast): output channels in slices rounded up to 16, input recomputed.
std::vector<WorkloadRecord> split_over_k(const WorkloadRecord& layer, int n_tiles) {
  const int out_c = layer.out_c;
  const int max_tile_channels = static_cast<int>(round_up(ceil_div(out_c, n_tiles), 16));
  std::vector<WorkloadRecord> tiles(static_cast<size_t>(n_tiles), layer);
  int remaining = out_c;
  for (auto& tile : tiles) {
    const int ch = remaining >= max_tile_channels ? max_tile_channels : remaining;
    tile.out_c = ch;
    infer_input_shape(tile);  // recomputeInputTensorShape: same W/H rule, channels per operation
    tile.in_b = layer.in_b;
    tile.isi = static_cast<int32_t>(ISIStrategy::SPLIT_OVER_K);
    tile.owt = n_tiles;
    remaining -= ch;
  }
  remove_empty_tiles(tiles);
  if (static_cast<int>(tiles.size()) < n_tiles) {
    for (auto& t : tiles) t.owt = static_cast<int32_t>(tiles.size());
  }
  return tiles;
}

// Grid of an execution mode in X, Y, Z (VPUNN mpe_mode_to_grid).
struct Grid {
  int x, y, z;
};
Grid mode_grid(ExecutionMode mode) {
  switch (mode) {
    case ExecutionMode::VECTOR: return {16, 1, 16};
    case ExecutionMode::VECTOR_FP16: return {4, 1, 16};
    default: return {4, 4, 16};
  }
}

// VPUNN getSplitsFromRange: max_range / 2^i for the powers of two dividing it, up to max_limit.
void splits_from_range(unsigned max_range, unsigned max_limit, std::set<unsigned>& out) {
  if (max_range == 0) return;
  const double lg = std::log2(static_cast<double>(max_range));
  for (unsigned idx = 0; idx < lg; ++idx) {
    const unsigned pow2 = 1u << idx;
    const unsigned candidate = max_range / pow2;
    if (max_range % pow2 == 0 && candidate <= max_limit) out.insert(candidate);
  }
}

bool requires_max_z_tile(const WorkloadRecord& tile) {
  return device_of(tile) >= Device::VPU_2_7 && is_dw_family(op_of(tile));
}

bool is_no_split_operation(Operation op) {
  return op == Operation::CONVOLUTION || op == Operation::ELTWISE || op == Operation::CM_CONVOLUTION ||
         op == Operation::LAYER_NORM || op == Operation::ELTWISE_MUL;
}

std::set<unsigned> hw_split_pool(const WorkloadRecord& tile, unsigned n_dpu, ExecutionMode mode,
                                 unsigned max_workloads) {
  std::set<unsigned> pool{1};
  if (n_dpu == 1) return pool;
  const Grid g = mode_grid(mode);
  // Integer divisions on purpose: VPUNN takes ceil of an already truncated quotient.
  const unsigned max_xy = static_cast<unsigned>(tile.out_h / g.x) * static_cast<unsigned>(tile.out_w / g.y);
  const unsigned max_splits = std::min(max_workloads, max_xy);
  for (unsigned i = n_dpu; i < max_splits + 1; i += n_dpu) pool.insert(i);
  splits_from_range(max_xy, max_splits, pool);
  return pool;
}

std::set<unsigned> z_split_pool(const WorkloadRecord& tile, unsigned n_dpu, ExecutionMode mode,
                                unsigned max_workloads) {
  if (n_dpu == 1 && is_no_split_operation(op_of(tile))) return {1u};
  if (device_of(tile) == Device::VPU_2_0 && mode != ExecutionMode::VECTOR && op_of(tile) != Operation::CONVOLUTION) {
    return {1u};
  }
  std::vector<unsigned> max_splits_in_z;
  for (int e = 4; e < 8; ++e) {
    const unsigned zt = 1u << e;
    for (unsigned z : {zt, zt + 16u}) {
      max_splits_in_z.push_back(static_cast<unsigned>(std::ceil(tile.out_c / static_cast<double>(z))));
    }
  }
  const unsigned max_z = *std::max_element(max_splits_in_z.begin(), max_splits_in_z.end());
  const unsigned max_splits = std::min(max_workloads, max_z);
  std::set<unsigned> pool;
  for (unsigned i = n_dpu; i < max_splits + 1u; i += n_dpu) pool.insert(i);
  for (unsigned sz : max_splits_in_z) splits_from_range(sz, max_splits, pool);
  pool.insert(1u);
  return pool;
}

WorkloadRecord single_workload(const WorkloadRecord& tile, ExecutionMode mode) {
  WorkloadRecord w = tile;
  w.exec_mode = static_cast<int32_t>(mode);
  infer_input_shape(w);
  return w;
}

// VPUNN HWTiling::splitOverHW: a grid of output blocks aligned to the mode's grid; every workload keeps
// the tile's padding (VPUNN copies the tile layer).
void split_over_hw(const WorkloadRecord& tile, unsigned wf, unsigned hf, ExecutionMode mode,
                   std::vector<WorkloadRuns>& out) {
  const Grid g = mode_grid(mode);
  const int width = tile.out_w, height = tile.out_h;
  const int max_w = static_cast<int>(round_up(ceil_div(width, wf), g.x));
  const int max_h = static_cast<int>(round_up(ceil_div(height, hf), g.y));
  const int n_w = static_cast<int>(ceil_div(width, max_w));
  const int n_h = static_cast<int>(ceil_div(height, max_h));
  WorkloadRuns split;
  int rem_h = height;
  for (int iy = 0; iy < n_h; ++iy) {
    const int th = rem_h > max_h ? max_h : rem_h;
    int rem_w = width;
    for (int ix = 0; ix < n_w; ++ix) {
      const int tw = rem_w > max_w ? max_w : rem_w;
      rem_w -= tw;
      WorkloadRecord w = tile;
      w.out_w = tw;
      w.out_h = th;
      w.out_b = 1;
      w.exec_mode = static_cast<int32_t>(mode);
      infer_input_shape(w);
      split.push(w);
    }
    rem_h -= th;
  }
  out.push_back(std::move(split));
}

// VPUNN ZTiling::splitOverZ (legacy, devices before NPU 5.0): equal channel slices rounded to 16.
void split_over_z(const WorkloadRecord& tile, unsigned n, ExecutionMode mode,
                  std::vector<WorkloadRuns>& out) {
  const bool restricted = requires_max_z_tile(tile);
  auto valid_z = [restricted](int c) { return !restricted || c == 16 || c == 32 || c == 64; };
  const int grid_z = mode_grid(mode).z;
  const int all = tile.out_c;
  if (all < grid_z || all % grid_z != 0) return;
  const int max_z = static_cast<int>(round_up(ceil_div(all, n), grid_z));
  WorkloadRuns split;
  int remaining = all;
  for (unsigned i = 0; i < n; ++i) {
    const int ch = remaining > max_z ? max_z : remaining;
    if (ch % grid_z != 0 || !valid_z(ch)) return;
    WorkloadRecord w = tile;
    w.out_c = ch;
    w.out_b = 1;
    w.exec_mode = static_cast<int32_t>(mode);
    infer_input_shape(w);
    split.push(w);
    remaining -= ch;
  }
  out.push_back(std::move(split));
}

}  // namespace

const std::vector<std::string>& tiling_strategy_names() {
  static const std::vector<std::string> names{"NONE", "SOHO", "SOK", "SOW", "SOHW", "SOHK", "SOHO_K_SWITCH"};
  return names;
}

TilingStrategy tiling_strategy_from_name(const std::string& name) {
  const auto& names = tiling_strategy_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<TilingStrategy>(i);
  }
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  throw InputError("unknown tiling strategy '" + name + "': use one of " + all + " (or None for the best)");
}

std::vector<TilingStrategy> valid_tiling_strategies(Device device) {
  switch (device) {
    case Device::VPU_4_0:
      return {TilingStrategy::NONE, TilingStrategy::SOHO, TilingStrategy::SOK, TilingStrategy::SOW,
              TilingStrategy::SOHW, TilingStrategy::SOHK, TilingStrategy::SOHO_K_SWITCH};
    default:
      return {TilingStrategy::NONE, TilingStrategy::SOHO, TilingStrategy::SOK};
  }
}

int dpus_per_tile(Device device) { return device == Device::VPU_2_0 || device == Device::VPU_2_1 ? 5 : 1; }

int default_tile_count(Device device) {
  switch (device) {
    case Device::VPU_2_7: return 2;
    case Device::VPU_4_0: return 6;
    default: return 1;
  }
}

std::vector<WorkloadRecord> split_across_tiles(const WorkloadRecord& layer, TilingStrategy strategy, int n_tiles) {
  if (n_tiles <= 0 || n_tiles > 64) throw InputError("n_tiles must be between 1 and 64");
  switch (strategy) {
    case TilingStrategy::NONE: {
      std::vector<WorkloadRecord> tiles(static_cast<size_t>(n_tiles), layer);
      for (auto& t : tiles) t.isi = static_cast<int32_t>(ISIStrategy::CLUSTERING);
      return tiles;
    }
    case TilingStrategy::SOHO: return split_overlapped(layer, n_tiles, false, false);
    case TilingStrategy::SOHO_K_SWITCH: return split_overlapped(layer, n_tiles, false, true);
    case TilingStrategy::SOW: return split_overlapped(layer, n_tiles, true, false);
    case TilingStrategy::SOK: return split_over_k(layer, n_tiles);
    default: return {};  // SOHW, SOHK: no splitter in VPUNN at this version
  }
}

WorkloadRecord prepare_layer(const WorkloadRecord& layer) {
  WorkloadRecord w = layer;
  if (op_of(w) == Operation::AVEPOOL) w.op = static_cast<int32_t>(Operation::DW_CONVOLUTION);
  if (device_of(w) >= Device::VPU_2_7 && op_of(w) == Operation::CONVOLUTION && w.in_c < 16) {
    w.op = static_cast<int32_t>(Operation::CM_CONVOLUTION);
  }
  if (device_of(w) == Device::VPU_2_0) {
    const int32_t key0 = static_cast<int32_t>(workload::Swizzling::KEY_0);
    w.in_swz0 = w.in_swz1 = w.out_swz0 = key0;
  }
  return w;
}

uint32_t check_layer(const WorkloadRecord& l, TilingStrategy strategy, int n_tiles) {
  using namespace workload::errors;
  const Device dev = device_of(l);
  if (dev != Device::VPU_2_0 && dev != Device::VPU_2_7 && dev != Device::VPU_4_0) return ERROR_INVALID_INPUT_DEVICE;
  const Operation op = op_of(l);
  if (op != Operation::CONVOLUTION && op != Operation::DW_CONVOLUTION && op != Operation::ELTWISE &&
      op != Operation::MAXPOOL && op != Operation::AVEPOOL && op != Operation::CM_CONVOLUTION) {
    return ERROR_INVALID_INPUT_OPERATION;
  }
  const auto& strategies = valid_tiling_strategies(dev);
  if (std::find(strategies.begin(), strategies.end(), strategy) == strategies.end()) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  if (n_tiles < 1 || n_tiles > 64) return ERROR_INVALID_LAYER_CONFIGURATION;
  // Layouts of the device's vocabulary; VPU_2_0 layer checks do not translate ZXY / XYZ.
  auto layout_ok = [dev](int32_t layout) {
    const auto lay = static_cast<Layout>(layout);
    if (dev == Device::VPU_2_0) return lay == Layout::ZMAJOR || lay == Layout::CMAJOR;
    return lay == Layout::ZXY || lay == Layout::XYZ || lay == Layout::ZMAJOR || lay == Layout::CMAJOR;
  };
  if (!layout_ok(l.in_layout) || !layout_ok(l.out_layout)) return ERROR_INVALID_LAYER_CONFIGURATION;
  if (dev == Device::VPU_2_0) {
    // Output to one tile and Clustering only.
    if (n_tiles != 1 || strategy == TilingStrategy::SOK) return ERROR_INVALID_LAYER_CONFIGURATION;
    if (op == Operation::CONVOLUTION && l.in_c < 16) return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  if (l.in_w <= 0 || l.in_h <= 0 || l.in_c <= 0 || l.out_w <= 0 || l.out_h <= 0 || l.out_c <= 0 || l.in_b <= 0 ||
      l.out_b != l.in_b || l.in_b > 8192 || l.k_w <= 0 || l.k_h <= 0 || l.s_w <= 0 || l.s_h <= 0) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  if (l.pad_t < 0 || l.pad_b < 0 || l.pad_l < 0 || l.pad_r < 0) return ERROR_INVALID_LAYER_CONFIGURATION;
  // VPUNN's ranges: kernels 1..11 (1 for element-wise), strides 1..8, padding 0..(k-1)/2, tensors up to
  // 8192 per tile along the split dimension (also keeps size computations far from integer overflow).
  const int max_k = op == Operation::ELTWISE ? 1 : 11;
  if (l.k_w > max_k || l.k_h > max_k || l.s_w > 8 || l.s_h > 8) return ERROR_INVALID_LAYER_CONFIGURATION;
  if (l.pad_l > (l.k_w - 1) / 2 || l.pad_r > (l.k_w - 1) / 2 || l.pad_t > (l.k_h - 1) / 2 ||
      l.pad_b > (l.k_h - 1) / 2) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  const int64_t max_dim = 8192LL * std::max(1, n_tiles);
  if (l.in_w > max_dim || l.in_h > max_dim || l.in_c > max_dim || l.out_w > max_dim || l.out_h > max_dim ||
      l.out_c > max_dim) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  // Activation types the DPU layers take (input and output).
  auto dtype_ok = [](int32_t t) {
    const auto d = static_cast<DataType>(t);
    return d == DataType::UINT8 || d == DataType::INT8 || d == DataType::FLOAT16 || d == DataType::BFLOAT16;
  };
  if (!dtype_ok(l.in_dtype) || !dtype_ok(l.out_dtype)) return ERROR_INVALID_LAYER_CONFIGURATION;
  // Output size must follow from input, kernel, stride and padding.
  if (l.out_w != (l.in_w + l.pad_l + l.pad_r - l.k_w) / l.s_w + 1 ||
      l.out_h != (l.in_h + l.pad_t + l.pad_b - l.k_h) / l.s_h + 1) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  // Channel alignment: hardware works on 16-channel groups.
  if (l.out_c % 16 != 0) return ERROR_INVALID_LAYER_CONFIGURATION;
  if ((op == Operation::CONVOLUTION || op == Operation::ELTWISE) && l.in_c % 16 != 0) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  if (strategy == TilingStrategy::SOK && l.out_c < 32) return ERROR_INVALID_LAYER_CONFIGURATION;
  if ((strategy == TilingStrategy::SOHO || strategy == TilingStrategy::SOHO_K_SWITCH) && l.out_h <= 1) {
    return ERROR_INVALID_LAYER_CONFIGURATION;
  }
  if (strategy == TilingStrategy::SOW && l.out_w <= 1) return ERROR_INVALID_LAYER_CONFIGURATION;
  return 0;
}

uint32_t check_tile(const WorkloadRecord& tile, const WorkloadRecord& prepared_layer) {
  using namespace workload::errors;
  if (tile_cmx_bytes(tile, prepared_layer) > cmx_size_bytes(device_of(tile))) return ERROR_INPUT_TOO_BIG;
  // Output write tiles the device supports (VPUNN valid values: VPU_2_0 1, VPU_2_7 1..2, VPU_4_0 1..8).
  const int max_owt = device_of(tile) == Device::VPU_2_7 ? 2 : (device_of(tile) == Device::VPU_4_0 ? 8 : 1);
  if (tile.owt < 1 || tile.owt > max_owt) return ERROR_INVALID_INPUT_CONFIGURATION;
  // Split over K broadcasts to the other tiles: it needs more than one output tile.
  if (tile.isi == static_cast<int32_t>(ISIStrategy::SPLIT_OVER_K) && tile.owt < 2) {
    return ERROR_INVALID_INPUT_CONFIGURATION;
  }
  return 0;
}

std::vector<ExecutionMode> tiling_execution_modes(const WorkloadRecord& tile) {
  const Device dev = device_of(tile);
  if (dev == Device::VPU_2_0 || dev == Device::VPU_2_1) {
    if (is_fp16_family(tile.in_dtype) || is_fp16_family(tile.out_dtype)) return {ExecutionMode::VECTOR_FP16};
    const double w = tile.out_w, h = tile.out_h;
    const double matrix_parts = std::ceil(w / 4.0) * std::ceil(h / 4.0);
    const double vector_parts = std::ceil(w / 16.0) * h;
    return {vector_parts <= matrix_parts ? ExecutionMode::VECTOR : ExecutionMode::MATRIX};
  }
  switch (op_of(tile)) {
    case Operation::CM_CONVOLUTION:
    case Operation::DW_CONVOLUTION:
    case Operation::AVEPOOL:
    case Operation::MAXPOOL: return {ExecutionMode::CUBOID_16x16};
    case Operation::ELTWISE: return {ExecutionMode::CUBOID_8x16};
    default: return {ExecutionMode::CUBOID_16x16, ExecutionMode::CUBOID_8x16, ExecutionMode::CUBOID_4x16};
  }
}

void WorkloadRuns::push(const WorkloadRecord& w) {
  if (!runs.empty() && std::memcmp(&runs.back().first, &w, sizeof(WorkloadRecord)) == 0) {
    ++runs.back().second;
  } else {
    runs.emplace_back(w, 1u);
  }
}

std::vector<WorkloadSplitCandidate> intra_tile_splits(const WorkloadRecord& tile, int n_dpu, int max_workloads) {
  std::vector<WorkloadSplitCandidate> out;
  for (const auto& r : intra_tile_split_runs(tile, n_dpu, max_workloads)) {
    WorkloadSplitCandidate c;
    for (const auto& run : r.runs) c.workloads.insert(c.workloads.end(), run.second, run.first);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<WorkloadRuns> intra_tile_split_runs(const WorkloadRecord& tile, int n_dpu, int max_workloads) {
  if (n_dpu < 1) throw InputError("n_dpu must be at least 1");
  const auto modes = tiling_execution_modes(tile);
  const unsigned ndpu = static_cast<unsigned>(n_dpu);
  const unsigned maxw = static_cast<unsigned>(std::max(1, max_workloads));
  // HW tiling exists unless Z tiling alone must do it (one DPU) or channels are capped (depthwise family).
  const bool hw_allowed = !(ndpu == 1) && !requires_max_z_tile(tile);
  std::vector<WorkloadRuns> out;
  for (int algo = hw_allowed ? 0 : 1; algo < 2; ++algo) {
    for (ExecutionMode mode : modes) {
      const auto pool = algo == 0 ? hw_split_pool(tile, ndpu, mode, maxw) : z_split_pool(tile, ndpu, mode, maxw);
      for (unsigned n : pool) {
        if (n == 1) {
          WorkloadRuns one;
          one.push(single_workload(tile, mode));
          out.push_back(std::move(one));
        } else if (algo == 0) {
          for (unsigned i = 1; i <= std::sqrt(static_cast<double>(n)); ++i) {
            if (n % i != 0) continue;
            const std::pair<unsigned, unsigned> factors[2] = {{n / i, i}, {i, n / i}};
            for (const auto& f : factors) {
              if (f.first <= static_cast<unsigned>(tile.out_w) && f.second <= static_cast<unsigned>(tile.out_h)) {
                split_over_hw(tile, f.first, f.second, mode, out);
              }
            }
          }
        } else {
          split_over_z(tile, n, mode, out);
        }
      }
    }
  }
  return out;
}

uint64_t greedy_schedule(int n_units, const uint32_t* cycles, size_t n) {
  std::vector<uint64_t> load(static_cast<size_t>(std::max(1, n_units)), 0);
  for (size_t i = 0; i < n; ++i) {
    auto least = std::min_element(load.begin(), load.end());
    *least += cycles[i];
  }
  return *std::max_element(load.begin(), load.end());
}

}  // namespace layer
}  // namespace vpunas
