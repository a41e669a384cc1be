// Native fuzz driver for the .vpunn reader and the MLP kernels; meant to run under AddressSanitizer +
// UBSan (cmake -DVPUNAS_SANITIZE=ON -DVPUNAS_BUILD_TESTS=ON). Usage:
//   test_model_file_fuzz <repo root> [variants]
// Mutates a real model (byte flips, truncations, inflated length/offset words, cut-outs); every variant
// must either parse (and then run forward with every kernel, identical results) or throw
// vpunas::InputError. Any other exception fails; memory errors abort under the sanitizers.
// The model files come from $VPUNAS_MODEL_DIR or <repo>/../shared/vpunn; without them the test is
// skipped (exit 0), except with CI=true (exit 1).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "vpunn/mlp.h"
#include "vpunn/model_file.h"

using vpunas::InputError;
using vpunas::vpunn::Mlp;
using vpunas::vpunn::ModelFile;

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

uint32_t get_u32(const std::vector<uint8_t>& b, size_t pos) {
  uint32_t v;
  std::memcpy(&v, b.data() + pos, 4);
  return v;
}

void put_u32(std::vector<uint8_t>& b, size_t pos, uint32_t v) { std::memcpy(b.data() + pos, &v, 4); }

// Runs forward on 40 rows (two threads: more than one row block each) with every kernel; all must agree
// bit for bit.
void exercise(const ModelFile& f) {
  const int in = f.input_size(), out = f.output_size();
  constexpr size_t kRows = 40;
  std::vector<float> x(kRows * size_t(in));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 11);
  std::vector<float> first;
  std::vector<std::string> kernels;
  for (const auto& k : vpunas::vpunn::gemm::available_kernels()) kernels.push_back(k.name);
  kernels.push_back("scalar16");  // the AVX-512 layouts, portable
  kernels.push_back("scalar16_sparse");
  for (const std::string& name : kernels) {
    Mlp m(f, name);
    std::vector<float> y(kRows * size_t(out), -1.0f);
    m.forward(x.data(), kRows, y.data(), 2);
    if (first.empty()) {
      first = y;
    } else if (std::memcmp(first.data(), y.data(), y.size() * sizeof(float)) != 0) {
      std::fprintf(stderr, "kernel %s disagrees with %s\n", name.c_str(), kernels.front().c_str());
      std::exit(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string root = argc > 1 ? argv[1] : ".";
  const long variants = argc > 2 ? std::atol(argv[2]) : 3000;
  const char* env_dir = std::getenv("VPUNAS_MODEL_DIR");
  const std::string dir = env_dir ? env_dir : root + "/../shared/vpunn";
  const std::vector<uint8_t> model = read_file(dir + "/vpu_2_7.fast.vpunn");
  if (model.empty()) {
    const char* ci = std::getenv("CI");
    std::printf("SKIP: %s/vpu_2_7.fast.vpunn not found (set VPUNAS_MODEL_DIR)\n", dir.c_str());
    return ci && std::string(ci) == "true" ? 1 : 0;
  }

  // The unmodified model must load and agree across kernels.
  exercise(ModelFile::parse(model.data(), model.size()));

  // 4-aligned words that look like offsets/lengths: the structure worth corrupting.
  std::vector<size_t> structural;
  for (size_t p = 0; p + 4 <= model.size(); p += 4) {
    const uint32_t v = get_u32(model, p);
    if (v > 0 && v < model.size()) structural.push_back(p);
  }

  std::mt19937_64 rng(20261128);
  auto pick = [&](size_t n) { return size_t(rng() % (n ? n : 1)); };
  long loaded = 0, refused = 0;
  for (long it = 0; it < variants; ++it) {
    std::vector<uint8_t> b = model;
    switch (it % 6) {
      case 0:  // random bit flips
        for (int k = 0, n = 1 + int(pick(8)); k < n; ++k) b[pick(b.size())] ^= uint8_t(1u << pick(8));
        break;
      case 1:  // random bytes near the start / end, where tables and vtables live
        for (int k = 0, n = 1 + int(pick(4)); k < n; ++k) {
          const size_t pos = (rng() & 1) ? pick(4096) : b.size() - 1 - pick(4096);
          b[pos] = uint8_t(rng());
        }
        break;
      case 2:  // truncation
        b.resize(pick(b.size()));
        break;
      case 3: {  // inflate or corrupt a length / offset word
        const size_t pos = structural[pick(structural.size())];
        const uint32_t choices[] = {0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, uint32_t(b.size()),
                                    uint32_t(b.size() - pos), 0u, 1u, get_u32(b, pos) + uint32_t(pick(129)) - 64u};
        put_u32(b, pos, choices[pick(8)]);
        break;
      }
      case 4: {  // random 16-bit value (vtable entries are 16-bit)
        const size_t pos = pick(b.size() - 2);
        const uint16_t v = uint16_t(rng());
        std::memcpy(b.data() + pos, &v, 2);
        break;
      }
      default: {  // cut a piece out of the middle
        const size_t a = pick(b.size());
        const size_t len = std::min(b.size() - a, 1 + pick(256));
        b.erase(b.begin() + long(a), b.begin() + long(a + len));
        break;
      }
    }
    try {
      // Parse from an exactly-sized heap copy so ASan sees any read past the end.
      std::unique_ptr<uint8_t[]> exact(new uint8_t[b.size() ? b.size() : 1]);
      if (!b.empty()) std::memcpy(exact.get(), b.data(), b.size());
      const ModelFile f = ModelFile::parse(b.empty() ? nullptr : exact.get(), b.size());
      exercise(f);
      ++loaded;
    } catch (const InputError&) {
      ++refused;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "variant %ld: unexpected exception type: %s\n", it, e.what());
      return 1;
    }
  }
  std::printf("fuzz: %ld variants, %ld loaded, %ld refused with InputError, 0 crashes\n", variants, loaded, refused);
  if (loaded == 0 || refused == 0) {
    std::fprintf(stderr, "mutations did not reach both outcomes\n");
    return 1;
  }
  return 0;
}
