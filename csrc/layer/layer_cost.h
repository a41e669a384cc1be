// Layer cost = VPUNN's VPULayerCostModel::Layer: split the layer over tiles (strategy), each tile into
// candidate DPU workload splits, cost every workload with a DPU cycle model, keep the best split per
// tile, the slowest tile decides, plus weight fetch (no prefetching) and DDR transfers.
//
// Built for batches: LayerBatch generates the candidates of ALL layers x strategies first, deduplicated
// into one workload table, so one predict() call costs them; reduce() then does the rest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "layer/tiling.h"
#include "workload/dpu_cost_model.h"

namespace vpunas {
namespace layer {

// Arguments of a VPUNN layer call. n_dpu: DPUs per tile (only shapes the candidate splits; the schedule
// uses the device's own DPU count like VPUNN); n_tiles: compute tiles.
struct LayerHardware {
  int n_dpu = 1;
  int n_tiles = 1;
  bool input_in_ddr = false;
  bool output_in_ddr = false;
  bool prefetching = true;
};
// VPUNN's defaults for a device: VPU_2_0 5 DPUs x 1 tile, VPU_2_7 1 x 2, VPU_4_0 1 x 6.
LayerHardware default_hardware(workload::Device device);

struct TilePlan {
  WorkloadRecord tile;
  uint32_t error = 0;                          // tile refused before splitting (VPUNN tile checks)
  std::vector<std::vector<uint32_t>> splits;   // candidate splits as ids into the workload table
};

struct StrategyPlan {
  TilingStrategy strategy = TilingStrategy::NONE;
  uint32_t early_error = 0;  // layer refused before costing (check or tile split failure)
  std::vector<TilePlan> tiles;
};

struct StrategyResult {
  TilingStrategy strategy = TilingStrategy::NONE;
  uint32_t cycles = 0;                  // cycles or VPUNN error code
  std::vector<uint32_t> tile_cycles;    // best split per tile (or error)
  std::vector<int32_t> best_split;      // index of the chosen candidate per tile, -1 if none
  std::vector<uint32_t> tile_dma_w;     // weight transfer cycles per tile (0 when prefetching)
  uint32_t w_fetch_cycles = 0;
  uint32_t ddr_io_cycles = 0;
};

struct LayerResult {
  uint32_t cycles = 0;   // minimum over the strategies tried
  int32_t best = -1;     // index into strategies of the first reaching the minimum; -1 if all failed
  std::vector<StrategyResult> strategies;
};

class LayerBatch {
 public:
  // strategies: the ones to try for every layer; empty = every strategy valid for each layer's device.
  LayerBatch(const WorkloadRecord* layers, size_t n, const std::vector<TilingStrategy>& strategies,
             const LayerHardware& hw);

  // Unique candidate workloads of the whole batch (cost them in this order).
  const std::vector<WorkloadRecord>& workloads() const { return workloads_; }
  size_t layer_count() const { return plans_.size(); }
  const std::vector<StrategyPlan>& plan(size_t layer) const { return plans_.at(layer); }
  const LayerHardware& hardware() const { return hw_; }

  // cycles[i] answers workloads()[i]; n must equal workloads().size().
  std::vector<LayerResult> reduce(const uint32_t* cycles, size_t n) const;

 private:
  uint32_t add_workload(const WorkloadRecord& w);
  // Candidate splits of a tile as workload ids; identical tiles (clustering, equal SOK slices, the same
  // layer in several places of a batch) are split once.
  const std::vector<std::vector<uint32_t>>& tile_splits(const WorkloadRecord& tile);

  // Byte-wise hash / equality of records (POD, no padding): dedup without allocations.
  struct RecordHash {
    size_t operator()(const WorkloadRecord& w) const noexcept;
  };
  struct RecordEq {
    bool operator()(const WorkloadRecord& a, const WorkloadRecord& b) const noexcept;
  };

  LayerHardware hw_;
  std::vector<WorkloadRecord> layers_;
  std::vector<std::vector<StrategyPlan>> plans_;
  std::vector<WorkloadRecord> workloads_;
  std::unordered_map<WorkloadRecord, uint32_t, RecordHash, RecordEq> index_;
  std::unordered_map<WorkloadRecord, std::vector<std::vector<uint32_t>>, RecordHash, RecordEq> tile_cache_;
};

// Convenience: plan, cost with `model` in one batch, reduce.
std::vector<LayerResult> cost_layers(const workload::DpuCycleModel& model, const WorkloadRecord* layers, size_t n,
                                     const std::vector<TilingStrategy>& strategies, const LayerHardware& hw,
                                     int threads = 0);

}  // namespace layer
}  // namespace vpunas
