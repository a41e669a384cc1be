// C++ tests of the DPU workload cost model (no Python): garbage records never crash and get error codes
// or cycles, batch == single calls, thread counts agree, the analytic model refuses like the NN model.
// argv[1] = source root; the model comes from $VPUNAS_MODEL_DIR or <root>/../shared/vpunn (skipped if absent).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "common.h"
#include "workload/descriptor.h"
#include "workload/dpu_cost_model.h"
#include "workload/sanitizer.h"

namespace wl = vpunas::workload;


static std::vector<wl::WorkloadRecord> garbage(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<wl::WorkloadRecord> v(n);
  for (auto& r : v) {
    auto* p = reinterpret_cast<int32_t*>(&r);
    for (size_t k = 0; k < sizeof(r) / 4; ++k) {
      switch (rng() % 4) {
        case 0: p[k] = static_cast<int32_t>(rng()); break;  // anything, negative included
        case 1: p[k] = static_cast<int32_t>(rng() % 12) - 1; break;
        default: p[k] = static_cast<int32_t>(rng() % 300); break;
      }
    }
    r.act_sparsity = static_cast<float>(static_cast<int>(rng() % 300) - 100) / 100.0f;
    r.weight_sparsity = static_cast<float>(rng() % 200) / 100.0f;
  }
  return v;
}

// Near-valid workloads: small random changes of a valid convolution (exercises every NN path).
static std::vector<wl::WorkloadRecord> near_valid(const wl::WorkloadRecord& base, size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<wl::WorkloadRecord> v(n, base);
  for (auto& r : v) {
    r.device = static_cast<int32_t>(rng() % 4);
    r.op = static_cast<int32_t>(rng() % 6);
    r.in_c = 16 * static_cast<int32_t>(1 + rng() % 8);
    r.out_c = (r.op == 0 || r.op == 5) ? 16 * static_cast<int32_t>(1 + rng() % 8) : r.in_c;
    r.k_w = r.k_h = 1 + static_cast<int32_t>(rng() % 5);
    r.pad_t = r.pad_b = r.pad_l = r.pad_r = r.k_w / 2;
    r.in_dtype = r.out_dtype = static_cast<int32_t>(rng() % 3);
    r.exec_mode = static_cast<int32_t>(rng() % 6);
    r.in_sparse = static_cast<int32_t>(rng() % 2);
    r.act_sparsity = r.in_sparse ? 0.3f : 0.0f;
    r.weight_sparsity_enabled = static_cast<int32_t>(rng() % 2);
    r.weight_sparsity = r.weight_sparsity_enabled ? 0.25f : 0.0f;
    r.in_layout = r.out_layout = static_cast<int32_t>(wl::Layout::ZXY);
  }
  return v;
}

int main(int argc, char** argv) {
  const std::string root = argc > 1 ? argv[1] : ".";
  const char* env = std::getenv("VPUNAS_MODEL_DIR");
  const std::string dir = env ? env : root + "/../shared/vpunn";
  const std::string path = dir + "/vpu_2_7.fast.vpunn";

  // A plain convolution is valid on 2.7; the same with 24 input channels is refused.
  wl::WorkloadRecord conv = wl::default_workload();
  conv.in_w = conv.in_h = conv.out_w = conv.out_h = 28;
  conv.in_c = conv.out_c = 64;
  wl::WorkloadRecord bad = conv;
  bad.in_c = 24;

  const wl::TheoreticalDpuModel theo(wl::Device::VPU_2_7);
  CHECK(theo.predict(&bad, 1)[0] == wl::errors::ERROR_INVALID_INPUT_CONFIGURATION);
  CHECK(theo.predict(&conv, 1)[0] == 1568);  // 28*28*64*64 MACs / 2048 per cycle

  auto junk = garbage(20000, 7);
  std::vector<float> desc(junk.size() * 93);
  std::vector<uint8_t> ok(junk.size());
  for (auto e : {wl::Encoder::V10, wl::Encoder::V11_NPU27, wl::Encoder::V11_NPU40, wl::Encoder::V11_COMPAT,
                 wl::Encoder::V11_NPU41})
    for (const auto& r : junk) {
      wl::WorkloadRecord a = wl::preadapt(r);
      wl::sanitize(a);
      wl::encode_descriptor(e, a, desc.data());
      (void)wl::theoretical_dpu_cycles(a);
    }
  theo.predict(junk.data(), junk.size());

  if (!std::ifstream(path)) {
    std::printf("test_workload: model %s not found, NN checks skipped\n", path.c_str());
    return failures ? 1 : 0;
  }
  const wl::DpuCostModel m(path);
  CHECK(m.descriptor_size() == 93);
  CHECK(m.device() == wl::Device::VPU_2_7);
  const uint32_t c = m.predict(&conv, 1)[0];
  CHECK(!wl::errors::is_error(c) && c > 0);
  CHECK(m.predict(&bad, 1)[0] == wl::errors::ERROR_INVALID_INPUT_CONFIGURATION);

  const auto all1 = m.predict(junk.data(), junk.size(), 1);
  const auto all2 = m.predict(junk.data(), junk.size(), 2);
  CHECK(all1 == all2);
  size_t valid = 0;
  for (size_t i = 0; i < junk.size(); i += 97) CHECK(m.predict(&junk[i], 1)[0] == all1[i]);
  for (auto v : all1) valid += !wl::errors::is_error(v);
  m.descriptors(junk.data(), junk.size(), desc.data(), ok.data());
  auto nv = near_valid(conv, 3000, 11);
  const auto nv1 = m.predict(nv.data(), nv.size(), 1);
  size_t nv_valid = 0;
  for (size_t i = 0; i < nv.size(); ++i) {
    nv_valid += !wl::errors::is_error(nv1[i]);
    if (i % 37 == 0) CHECK(m.predict(&nv[i], 1)[0] == nv1[i]);
  }
  std::vector<wl::PredictDetail> det(nv.size());
  m.predict_detail(nv.data(), nv.size(), det.data());
  for (size_t i = 0; i < nv.size(); ++i) CHECK(det[i].cycles == nv1[i]);
  CHECK(nv_valid > 50);
  std::printf("test_workload: %zu near-valid rows, %zu valid\n", nv.size(), nv_valid);
  std::printf("test_workload: %zu garbage rows, %zu valid, conv = %u cycles, %d failures\n", junk.size(), valid, c,
              failures);
  try {
    wl::DpuCostModel missing(dir + "/does_not_exist.vpunn");
    CHECK(false);
  } catch (const vpunas::InputError& e) {
    CHECK(std::string(e.what()).find("npu-nn-cost-model") != std::string::npos);
  }
  return failures ? 1 : 0;
}
