// Layer -> tiles -> DPU workload candidates, following VPUNN's VPULayerCostModel (Level-2 API):
// a layer (the whole, unsplit operation, described by the same WorkloadRecord as a DPU workload) is
// cut over the compute tiles by a tiling strategy (inter-tile split), and each tile is cut into DPU
// workloads by VPUNN's intra-tile algorithms (HW tiling over H/W, Z tiling over channels) for every
// execution mode the device allows. Pure functions, no state, no cost model here: callers cost the
// candidate workloads in one batch and reduce them (layer_cost.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "workload/workload.h"

namespace vpunas {
namespace layer {

using workload::WorkloadRecord;

// VPUNN's layer tiling strategies (VPUTilingStrategy), text names as VPUNN writes them.
enum class TilingStrategy : int32_t { NONE, SOHO, SOK, SOW, SOHW, SOHK, SOHO_K_SWITCH, COUNT };
const std::vector<std::string>& tiling_strategy_names();
// Throws InputError naming the valid names.
TilingStrategy tiling_strategy_from_name(const std::string& name);
// Strategies VPUNN lists as valid for a device (the ones "best strategy" tries), in VPUNN's order.
std::vector<TilingStrategy> valid_tiling_strategies(workload::Device device);

// Hardware facts VPUNN's layer model uses (VPUNN hardware tables).
int dpus_per_tile(workload::Device device);      // 5 on VPU_2_0, 1 on VPU_2_7 / VPU_4_0
int default_tile_count(workload::Device device); // 1 on VPU_2_0, 2 on VPU_2_7, 6 on VPU_4_0

// Error codes of the layer level (VPUNN Cycles), beyond the workload ones.
namespace errors {
constexpr uint32_t ERROR_TILE_SPLIT_EXCEPTION = 0xFFFFFFFFu - 6;
constexpr uint32_t ERROR_TILE_SPLIT_ZERO_CYC_OUTPUT = 0xFFFFFFFFu - 7;
}  // namespace errors

// One candidate split of a tile into DPU workloads (all with the same execution mode).
struct WorkloadSplitCandidate {
  std::vector<WorkloadRecord> workloads;
};

// The same split run-length encoded: consecutive identical workloads stored once with a repeat count
// (HW tiling makes grids of equal blocks), in the same order.
struct WorkloadRuns {
  std::vector<std::pair<WorkloadRecord, uint32_t>> runs;
  void push(const WorkloadRecord& w);
};

// Inter-tile split. Returns the tile layers (possibly fewer than n_tiles; empty when VPUNN has no
// splitter for the strategy).
std::vector<WorkloadRecord> split_across_tiles(const WorkloadRecord& layer, TilingStrategy strategy,
                                               int n_tiles);

// VPUNN's preparation of a layer before any check: AVEPOOL -> DW_CONVOLUTION, thin convolutions
// (< 16 input channels) -> CM_CONVOLUTION on VPU_2_7+, swizzling -> KEY_0 on VPU_2_0.
WorkloadRecord prepare_layer(const WorkloadRecord& layer);

// Checks of the whole layer for a strategy (VPUNN's layer validator): 0 if usable, else the error code
// (ERROR_INVALID_LAYER_CONFIGURATION, ERROR_INVALID_INPUT_DEVICE, ...).
uint32_t check_layer(const WorkloadRecord& prepared_layer, TilingStrategy strategy, int n_tiles);

// Checks of one tile layer (memory fits the tile's CMX, tile-level ranges): 0 or the error code.
uint32_t check_tile(const WorkloadRecord& tile, const WorkloadRecord& prepared_layer);

// Execution modes the intra-tile splitter tries for a tile (VPUNN's layer properties per device).
std::vector<workload::ExecutionMode> tiling_execution_modes(const WorkloadRecord& tile);

// All candidate intra-tile splits of one tile, in VPUNN's evaluation order (HW tiling, then Z tiling;
// modes; workload counts ascending; factor pairs). n_dpu is the layer call's DPU count argument.
std::vector<WorkloadSplitCandidate> intra_tile_splits(const WorkloadRecord& tile, int n_dpu,
                                                      int max_workloads = 128);
// Same candidates, run-length encoded (what the batch costing uses).
std::vector<WorkloadRuns> intra_tile_split_runs(const WorkloadRecord& tile, int n_dpu, int max_workloads = 128);

// Greedy schedule used by VPUNN: workloads in the given order, each to the least loaded of n_units;
// result = the most loaded unit. (Plain sums, no error handling: callers filter errors first.)
uint64_t greedy_schedule(int n_units, const uint32_t* cycles, size_t n);

}  // namespace layer
}  // namespace vpunas
