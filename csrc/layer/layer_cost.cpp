#include "layer/layer_cost.h"

#include <algorithm>
#include <cstring>

#include "common.h"
#include "layer/dma.h"

namespace vpunas {
namespace layer {

using workload::Device;
namespace werr = workload::errors;

namespace {
constexpr int kDmaPorts = 2;  // DMA channels the weight transfers of the tiles are pipelined on

uint32_t add_cycles(uint32_t a, uint32_t b) {
  if (werr::is_error(a)) return a;
  if (werr::is_error(b)) return b;
  const uint64_t s = static_cast<uint64_t>(a) + b;
  return s > werr::kFirstError ? werr::ERROR_INVALID_OUTPUT_RANGE : static_cast<uint32_t>(s);
}
}  // namespace

LayerHardware default_hardware(Device device) {
  LayerHardware hw;
  hw.n_dpu = dpus_per_tile(device);
  hw.n_tiles = default_tile_count(device);
  return hw;
}

size_t LayerBatch::RecordHash::operator()(const WorkloadRecord& w) const noexcept {
  // FNV-1a over the 32-bit fields.
  uint64_t h = 1469598103934665603ull;
  uint32_t words[sizeof(WorkloadRecord) / 4];
  std::memcpy(words, &w, sizeof(words));
  for (uint32_t v : words) {
    h ^= v;
    h *= 1099511628211ull;
  }
  return static_cast<size_t>(h ^ (h >> 29));
}

bool LayerBatch::RecordEq::operator()(const WorkloadRecord& a, const WorkloadRecord& b) const noexcept {
  return std::memcmp(&a, &b, sizeof(WorkloadRecord)) == 0;
}

uint32_t LayerBatch::add_workload(const WorkloadRecord& w) {
  const auto next = static_cast<uint32_t>(workloads_.size());
  auto ins = index_.emplace(w, next);
  if (ins.second) workloads_.push_back(w);
  return ins.first->second;
}

const std::vector<std::vector<uint32_t>>& LayerBatch::tile_splits(const WorkloadRecord& tile) {
  auto it = tile_cache_.find(tile);
  if (it != tile_cache_.end()) return it->second;
  std::vector<std::vector<uint32_t>> splits;
  for (const auto& cand : intra_tile_split_runs(tile, hw_.n_dpu)) {
    std::vector<uint32_t> ids;
    for (const auto& run : cand.runs) ids.insert(ids.end(), run.second, add_workload(run.first));
    splits.push_back(std::move(ids));
  }
  return tile_cache_.emplace(tile, std::move(splits)).first->second;
}

LayerBatch::LayerBatch(const WorkloadRecord* layers, size_t n, const std::vector<TilingStrategy>& strategies,
                       const LayerHardware& hw)
    : hw_(hw), layers_(layers, layers + n) {
  if (hw.n_dpu < 1 || hw.n_dpu > 64) throw InputError("n_dpu must be between 1 and 64 (DPUs per tile)");
  if (hw.n_tiles < 1 || hw.n_tiles > 64) throw InputError("n_tiles must be between 1 and 64");
  plans_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const WorkloadRecord layer = prepare_layer(layers_[i]);
    const auto dev = static_cast<Device>(layer.device);
    const auto tried = strategies.empty() ? valid_tiling_strategies(dev) : strategies;
    for (TilingStrategy s : tried) {
      StrategyPlan plan;
      plan.strategy = s;
      plan.early_error = check_layer(layer, s, hw.n_tiles);
      if (plan.early_error == 0) {
        const auto tiles = split_across_tiles(layer, s, hw.n_tiles);
        if (tiles.empty()) plan.early_error = werr::ERROR_TILE_OUTPUT;  // no splitter for this strategy
        for (const auto& tile : tiles) {
          const uint32_t err = check_tile(tile, layer);
          if (err != 0) {  // VPUNN stops at the first refused tile
            plan.early_error = err;
            break;
          }
        }
        if (plan.early_error == 0) {
          for (const auto& tile : tiles) {
            TilePlan tp;
            tp.tile = tile;
            tp.splits = tile_splits(tile);
            plan.tiles.push_back(std::move(tp));
          }
        } else {
          for (const auto& tile : tiles) {  // kept for inspection, nothing costed
            TilePlan tp;
            tp.tile = tile;
            tp.error = plan.early_error;
            plan.tiles.push_back(std::move(tp));
          }
        }
      }
      plans_[i].push_back(std::move(plan));
    }
  }
}

std::vector<LayerResult> LayerBatch::reduce(const uint32_t* cycles, size_t n) const {
  if (n != workloads_.size()) {
    throw InputError("reduce: got " + std::to_string(n) + " cycle values for " + std::to_string(workloads_.size()) +
                     " workloads; pass the predictions of workloads() in order");
  }
  std::vector<LayerResult> results(plans_.size());
  std::vector<uint32_t> split_cycles;
  for (size_t li = 0; li < plans_.size(); ++li) {
    const WorkloadRecord layer = prepare_layer(layers_[li]);
    const auto dev = static_cast<Device>(layer.device);
    LayerResult& lr = results[li];
    for (const StrategyPlan& plan : plans_[li]) {
      StrategyResult sr;
      sr.strategy = plan.strategy;
      if (plan.early_error != 0) {
        sr.cycles = plan.early_error;
        lr.strategies.push_back(std::move(sr));
        continue;
      }
      uint32_t largest = 0;
      bool tile_failed = false;
      for (const TilePlan& tp : plan.tiles) {
        int32_t best = -1;
        uint32_t best_cycles = 0;
        uint32_t first_value = werr::ERROR_INVALID_OUTPUT_RANGE;
        for (size_t si = 0; si < tp.splits.size(); ++si) {
          const auto& ids = tp.splits[si];
          uint32_t value = 0;
          split_cycles.clear();
          for (uint32_t id : ids) {
            const uint32_t c = cycles[id];
            if (werr::is_error(c)) {  // first error of the split is its result
              value = c;
              break;
            }
            split_cycles.push_back(c);
          }
          if (value == 0) {
            const uint64_t s = greedy_schedule(dpus_per_tile(dev), split_cycles.data(), split_cycles.size());
            value = s == 0 ? errors::ERROR_TILE_SPLIT_ZERO_CYC_OUTPUT
                           : (s > werr::kFirstError ? werr::ERROR_INVALID_OUTPUT_RANGE : static_cast<uint32_t>(s));
          }
          if (si == 0) first_value = value;
          if (!werr::is_error(value) && (best < 0 || value < best_cycles)) {
            best = static_cast<int32_t>(si);
            best_cycles = value;
          }
        }
        uint32_t tile_value;
        if (tp.splits.empty()) {
          tile_value = errors::ERROR_TILE_SPLIT_EXCEPTION;  // VPUNN throws: no valid workload generated
        } else {
          tile_value = best >= 0 ? best_cycles : first_value;
        }
        sr.tile_cycles.push_back(tile_value);
        sr.best_split.push_back(best >= 0 ? best : (tp.splits.empty() ? -1 : 0));
        if (werr::is_error(tile_value)) tile_failed = true;
        largest = std::max(largest, tile_value);
      }
      uint32_t cost = tile_failed ? werr::ERROR_TILE_OUTPUT : largest;
      sr.tile_dma_w.assign(plan.tiles.size(), 0);
      if (!werr::is_error(cost)) {
        if (!hw_.prefetching) {
          for (size_t t = 0; t < plan.tiles.size(); ++t) {
            sr.tile_dma_w[t] = dma_cycles(dev, weight_bytes(plan.tiles[t].tile), DmaDirection::DDR_TO_CMX);
          }
          const uint64_t fetch = greedy_schedule(kDmaPorts, sr.tile_dma_w.data(), sr.tile_dma_w.size());
          sr.w_fetch_cycles = static_cast<uint32_t>(std::min<uint64_t>(fetch, werr::ERROR_INVALID_OUTPUT_RANGE));
          cost = add_cycles(cost, sr.w_fetch_cycles);
        }
        uint32_t io = 0;
        if (hw_.input_in_ddr) io = add_cycles(io, dma_cycles(dev, input_bytes(layer), DmaDirection::DDR_TO_CMX));
        if (hw_.output_in_ddr) io = add_cycles(io, dma_cycles(dev, output_bytes(layer), DmaDirection::CMX_TO_DDR));
        sr.ddr_io_cycles = io;
        cost = add_cycles(cost, io);
      }
      sr.cycles = cost;
      lr.strategies.push_back(std::move(sr));
    }
    // Best = minimum (errors are the largest numbers), first strategy reaching it.
    lr.cycles = werr::ERROR_INVALID_LAYER_CONFIGURATION;
    lr.best = -1;
    bool any = false;
    for (size_t s = 0; s < lr.strategies.size(); ++s) {
      const uint32_t c = lr.strategies[s].cycles;
      if (!any || c < lr.cycles) {
        lr.cycles = c;
        lr.best = werr::is_error(c) ? -1 : static_cast<int32_t>(s);
        any = true;
      }
    }
  }
  return results;
}

std::vector<LayerResult> cost_layers(const workload::DpuCycleModel& model, const WorkloadRecord* layers, size_t n,
                                     const std::vector<TilingStrategy>& strategies, const LayerHardware& hw,
                                     int threads) {
  LayerBatch batch(layers, n, strategies, hw);
  const auto& wls = batch.workloads();
  std::vector<uint32_t> cycles(wls.size());
  if (!wls.empty()) model.predict(wls.data(), wls.size(), cycles.data(), threads);
  return batch.reduce(cycles.data(), cycles.size());
}

}  // namespace layer
}  // namespace vpunas
