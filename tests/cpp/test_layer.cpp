// C++ tests of the layer module without any NN or data file: inter-tile geometry, candidate splits,
// greedy schedule, batch dedup + reduce with synthetic cycles, DMA constants, input errors.
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "common.h"
#include "layer/dma.h"
#include "layer/layer_cost.h"
#include "layer/tiling.h"

namespace ly = vpunas::layer;
namespace wl = vpunas::workload;


static wl::WorkloadRecord conv(wl::Device dev, int hw, int cin, int cout, int k, int s) {
  wl::WorkloadRecord w = wl::default_workload();
  w.device = static_cast<int32_t>(dev);
  if (dev == wl::Device::VPU_2_0) w.in_layout = w.out_layout = static_cast<int32_t>(wl::Layout::ZMAJOR);
  w.in_w = w.in_h = hw;
  w.in_c = cin;
  w.out_c = cout;
  w.k_w = w.k_h = k;
  w.s_w = w.s_h = s;
  w.pad_t = w.pad_b = w.pad_l = w.pad_r = k / 2;
  w.out_w = w.out_h = (hw + 2 * (k / 2) - k) / s + 1;
  return w;
}

int main() {
  // SOHO over 2 tiles of a 3x3 s1 p1 conv on 56 rows: 28 output rows each, 29 input rows, inner pads 0.
  {
    const auto layer = ly::prepare_layer(conv(wl::Device::VPU_2_7, 56, 32, 64, 3, 1));
    CHECK(ly::check_layer(layer, ly::TilingStrategy::SOHO, 2) == 0);
    const auto tiles = ly::split_across_tiles(layer, ly::TilingStrategy::SOHO, 2);
    CHECK(tiles.size() == 2);
    CHECK(tiles[0].out_h == 28 && tiles[1].out_h == 28);
    CHECK(tiles[0].in_h == 29 && tiles[1].in_h == 29);
    CHECK(tiles[0].pad_t == 1 && tiles[0].pad_b == 0 && tiles[1].pad_t == 0 && tiles[1].pad_b == 1);
    // SOK: 64 channels over 2 tiles, broadcast to both
    const auto k = ly::split_across_tiles(layer, ly::TilingStrategy::SOK, 2);
    CHECK(k.size() == 2 && k[0].out_c == 32 && k[0].in_c == 32 && k[0].owt == 2);
    // one DPU per tile: only the execution modes, one workload each, for a convolution
    const auto cands = ly::intra_tile_splits(tiles[0], 1);
    CHECK(cands.size() == 3);
    for (const auto& c : cands) CHECK(c.workloads.size() == 1 && c.workloads[0].in_h == 29);
  }
  // channel counts VPUNN refuses, SOK below 32 output channels
  {
    CHECK(ly::check_layer(ly::prepare_layer(conv(wl::Device::VPU_2_7, 28, 24, 40, 1, 1)), ly::TilingStrategy::NONE,
                          2) == wl::errors::ERROR_INVALID_LAYER_CONFIGURATION);
    CHECK(ly::check_layer(ly::prepare_layer(conv(wl::Device::VPU_2_7, 28, 32, 16, 1, 1)), ly::TilingStrategy::SOK,
                          2) == wl::errors::ERROR_INVALID_LAYER_CONFIGURATION);
    CHECK(ly::check_layer(ly::prepare_layer(conv(wl::Device::VPU_2_0, 28, 32, 16, 1, 1)), ly::TilingStrategy::NONE,
                          4) == wl::errors::ERROR_INVALID_LAYER_CONFIGURATION);
  }
  // greedy schedule: in order, each to the least loaded unit
  {
    const uint32_t c[] = {5, 3, 3, 2};
    CHECK(ly::greedy_schedule(1, c, 4) == 13);
    CHECK(ly::greedy_schedule(2, c, 4) == 7);  // 5 | 3,3 -> 5+2 = 7, 6
  }
  // batch: identical layers share workloads; reduce with synthetic cycles = best split
  {
    std::vector<wl::WorkloadRecord> layers(3, conv(wl::Device::VPU_2_0, 56, 32, 64, 1, 1));
    ly::LayerBatch batch(layers.data(), layers.size(), {ly::TilingStrategy::NONE}, ly::default_hardware(wl::Device::VPU_2_0));
    const auto& wls = batch.workloads();
    CHECK(!wls.empty());
    std::vector<uint32_t> cycles(wls.size());
    for (size_t i = 0; i < wls.size(); ++i) cycles[i] = static_cast<uint32_t>(wls[i].out_w * wls[i].out_h);
    const auto res = batch.reduce(cycles.data(), cycles.size());
    CHECK(res.size() == 3 && res[0].cycles == res[2].cycles && res[0].best == 0);
    // cost = pixels per workload; the best split balances 56*56 pixels over 5 DPUs
    CHECK(res[0].cycles >= (56 * 56 + 4) / 5 && res[0].cycles < 56 * 56);
    bool threw = false;
    try {
      batch.reduce(cycles.data(), cycles.size() - 1);
    } catch (const vpunas::InputError&) {
      threw = true;
    }
    CHECK(threw);
  }
  // DMA: VPU 2.7 1 KiB from DDR = latency + bytes * 1300/27000
  {
    CHECK(ly::dma_cycles(wl::Device::VPU_2_7, 1024, ly::DmaDirection::DDR_TO_CMX) == 1242 + 50);
    CHECK(ly::dma_cycles(wl::Device::VPU_2_0, 0, ly::DmaDirection::DDR_TO_CMX) == 0);
  }
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("test_layer: all checks passed\n");
  return 0;
}
