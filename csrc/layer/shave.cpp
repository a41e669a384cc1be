// SHAVE kernel models. Formulas from VPUNN (ShaveModel1to1 / ShaveModel1to1NPU40, legacy SHAVE table);
// checked against VPUNN's golden outputs. Our own code.
#include "layer/shave.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common.h"

namespace vpunas {
namespace layer {

using workload::DataType;
using workload::Device;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) out.push_back(trim(field));
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string path;

  size_t column(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return i;
    }
    throw InputError(path + ": missing column '" + name + "'; pass the VPUNN SHAVE parameter files unchanged");
  }
};

CsvTable read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw InputError("cannot open SHAVE parameter file " + path +
                     "; pass params_dir=<folder with layers_perf.csv, shave_layers_vpu_2_7.csv, "
                     "shave_layers_vpu_40.csv> or set VPUNAS_MODEL_DIR (files in $VPUNAS_MODEL_DIR/shave)");
  }
  CsvTable t;
  t.path = path;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    auto fields = split_csv_line(line);
    if (t.header.empty()) {
      t.header = fields;
      continue;
    }
    if (fields.size() != t.header.size()) {
      throw InputError(path + ":" + std::to_string(line_no) + ": expected " + std::to_string(t.header.size()) +
                       " fields, found " + std::to_string(fields.size()));
    }
    t.rows.push_back(std::move(fields));
    if (t.rows.size() > 100000) throw InputError(path + ": too many rows for a SHAVE parameter file");
  }
  if (t.header.empty()) throw InputError(path + ": empty file");
  return t;
}

float parse_float(const CsvTable& t, const std::string& s, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v) || std::fabs(v) > 1e9) throw std::invalid_argument(s);
    return static_cast<float>(v);
  } catch (const std::exception&) {
    throw InputError(t.path + ": bad number '" + s + "' for " + what);
  }
}

int parse_int(const CsvTable& t, const std::string& s, const std::string& what, int lo, int hi) {
  const float v = parse_float(t, s, what);
  if (v != std::floor(v) || v < static_cast<float>(lo) || v > static_cast<float>(hi)) {
    throw InputError(t.path + ": " + what + " = '" + s + "' must be a whole number in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "]");
  }
  return static_cast<int>(v);
}

std::string join_path(const std::string& dir, const std::string& file) {
  if (dir.empty()) return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}


// VPUNN Cycles::toCycleInterfaceType on a float: round up, clip to the error range.
uint32_t to_cycles(float raw) {
  if (!(raw >= 0.f)) return workload::errors::ERROR_INVALID_OUTPUT_RANGE;
  const double c = std::ceil(static_cast<double>(raw));
  return c > 4e9 ? workload::errors::ERROR_INVALID_OUTPUT_RANGE : static_cast<uint32_t>(c);
}

}  // namespace

const std::map<std::string, std::string>& legacy_shave_aliases() {
  static const std::map<std::string, std::string> aliases{{"Elu", "ELU"},
                                                          {"Quantize", "FakeQuantize"},
                                                          {"SpaceToDepth", "SpaceToDepthOp"},
                                                          {"SoftMax", "Softmax"},
                                                          {"SquaredDifference", "SquaredDiff"}};
  return aliases;
}

bool ShaveModel::is_builtin_without_params(const std::string& op) const {
  if (op.rfind("MVN", 0) == 0 || op.rfind("vpuem.", 0) == 0) return true;
  if (op == "interpolatewh_1") return device_ != Device::VPU_2_7;  // built in and known for VPU 2.7 only
  return op == "softmax" || op == "gather" || op == "normalizel2onlyc";
}

namespace {
// VPUNN's InterpolateWHModel_1 (VPU 2.7 "interpolatewh_1"), a polynomial in microseconds. VPUNN feeds the
// input width for both W and H (visible on non-square maps); reproduced as is. Strict WHCB (XYZ) layout.
uint32_t interpolate_wh_1(const ShaveModel::Call& c, int dpu_mhz) {
  if (c.in_layout != workload::Layout::XYZ || c.out_layout != workload::Layout::XYZ) {
    return shave_errors::ERROR_SHAVE_PARAMS;
  }
  const int wi = static_cast<int>(c.in_w);
  const int hi = static_cast<int>(c.in_w);
  const int out_size = static_cast<int>(c.out_w * c.out_h * c.out_c * c.out_b);
  const float out_over_w = static_cast<float>(out_size) / static_cast<float>(wi);
  const float us = 22.83932536793509f + 1.1171697884536729f * static_cast<float>(hi) +
                   2.001050052740202f * static_cast<float>(wi) + 0.008051784863285609f * static_cast<float>(out_size) +
                   0.0067717638956515695f * out_over_w;
  return to_cycles(us * static_cast<float>(dpu_mhz));
}
}  // namespace

ShaveModel::ShaveModel(Device device, const std::string& params_dir) : device_(device) {
  if (device != Device::VPU_2_0 && device != Device::VPU_2_7 && device != Device::VPU_4_0) {
    throw InputError("SHAVE costs exist for VPU_2_0, VPU_2_7 and VPU_4_0 only");
  }
  {  // legacy table, shared by all devices
    const CsvTable t = read_csv(join_path(params_dir, "layers_perf.csv"));
    const size_t c_name = t.column("Kernel Name"), c_eff = t.column("Kernel Efficiency"),
                 c_lat = t.column("Kernel Latency");
    for (const auto& r : t.rows) {
      LegacyShaveParams p;
      if (r[c_eff] != "null" && r[c_lat] != "null") {
        const float e = parse_float(t, r[c_eff], "Kernel Efficiency of " + r[c_name]);
        if (e <= 0.f || e > 1e6f) throw InputError(t.path + ": Kernel Efficiency of " + r[c_name] + " must be > 0");
        p.has_model = true;
        p.efficiency_milli = static_cast<int>(std::lround(static_cast<double>(e) * 1000.0));
        if (p.efficiency_milli <= 0) throw InputError(t.path + ": Kernel Efficiency of " + r[c_name] + " rounds to 0");
        p.latency = parse_int(t, r[c_lat], "Kernel Latency of " + r[c_name], 0, 100000000);
      }
      legacy_[r[c_name]] = p;
    }
  }
  if (device == Device::VPU_2_0) return;  // no shave2 models for this device
  const bool npu40 = device == Device::VPU_4_0;
  const CsvTable t = read_csv(join_path(params_dir, npu40 ? "shave_layers_vpu_40.csv" : "shave_layers_vpu_2_7.csv"));
  const size_t c_type = t.column("kernel_type"), c_name = t.column("kernel_name"), c_slope = t.column("slope"),
               c_icpt = t.column("intercept"), c_unroll_size = t.column("unroll_size"),
               c_vector_size = t.column("vector_size"), c_dpu = t.column("DPU_frequency");
  for (const auto& r : t.rows) {
    ShaveKernelParams p;
    const std::string& name = r[c_name];
    p.kernel_type = r[c_type];
    p.npu40_form = npu40;
    if (p.kernel_type.find("2on1") != std::string::npos) {
      p.n_inputs = 2;
    } else if (p.kernel_type.find("1on1") == std::string::npos) {
      throw InputError(t.path + ": unknown kernel_type '" + p.kernel_type + "' for " + name);
    }
    p.slope = parse_float(t, r[c_slope], "slope of " + name);
    p.intercept = parse_float(t, r[c_icpt], "intercept of " + name);
    p.unroll_size = parse_int(t, r[c_unroll_size], "unroll_size of " + name, 0, 1 << 20);
    p.vector_size = parse_int(t, r[c_vector_size], "vector_size of " + name, 0, 1 << 20);
    p.dpu_mhz = parse_int(t, r[c_dpu], "DPU_frequency of " + name, 1, 100000);
    p.shv_mhz = parse_int(t, r[t.column(npu40 ? "VPU_frequency" : "SHV_frequency")], "SHAVE frequency of " + name, 1,
                          100000);
    if (npu40) {
      p.unroll_offset = parse_float(t, r[t.column("unroll_offset")], "unroll_offset of " + name);
      p.intra_block_offset = parse_float(t, r[t.column("intra_block_offset")], "intra_block_offset of " + name);
      p.vector_offset = parse_float(t, r[t.column("vector_offset")], "vector_offset of " + name);
      p.displacement_size = parse_int(t, r[t.column("displacement_size")], "displacement_size of " + name, 0, 1 << 20);
    } else {
      p.scalar_offset = parse_float(t, r[t.column("scalar_offset")], "scalar_offset of " + name);
      p.unroll_offset = parse_float(t, r[t.column("unroll_offset")], "unroll_offset of " + name);
    }
    shave2_[name] = p;
  }
}

uint32_t ShaveModel::shave2_cycles(const ShaveKernelParams& p, int64_t out_bytes) const {
  // The models were fitted on FLOAT16 outputs: operations = bytes / 2 whatever the actual type.
  const int64_t ops = out_bytes / 2;
  float y = p.slope * static_cast<float>(out_bytes) + p.intercept;  // microseconds
  if (!p.npu40_form) {
    const bool unroll = p.unroll_size > 1 && p.vector_size > 0;
    const int64_t block = unroll ? static_cast<int64_t>(p.vector_size) * p.unroll_size : p.unroll_size;
    if (unroll && ops < block) y -= p.unroll_offset;
    if (p.vector_size > 0 && ops % p.vector_size != 0) y += p.scalar_offset;
    if (unroll && ops % block == 0) y += p.scalar_offset;
  } else {
    const bool unroll = p.unroll_size >= 1;
    const int64_t block = unroll ? static_cast<int64_t>(p.vector_size) * p.unroll_size : p.unroll_size;
    if (unroll && ops <= block) y -= p.unroll_offset;
    const int64_t pos = block != 0 ? (ops - p.displacement_size) % block : ops - p.displacement_size;
    if (unroll && p.unroll_size - 1 != 0 && p.vector_size > 0) {
      const int64_t intra_block_point = pos / p.vector_size;
      y += p.intra_block_offset * static_cast<float>(intra_block_point) / static_cast<float>(p.unroll_size - 1);
    }
    if (p.vector_size > 1) {
      const int64_t intra_vector_point = pos % p.vector_size;
      y += p.vector_offset * static_cast<float>(intra_vector_point) / static_cast<float>(p.vector_size - 1);
    }
  }
  return to_cycles(y * static_cast<float>(p.dpu_mhz));
}

uint32_t ShaveModel::cycles(ShaveApi api, const std::string& op, const Call& c) const {
  if (c.out_w <= 0 || c.out_h <= 0 || c.out_c <= 0 || c.out_b <= 0 || c.in_w <= 0 || c.in_h <= 0 || c.in_c <= 0 ||
      c.in_b <= 0) {
    throw InputError("SHAVE kernel '" + op + "': input and output shapes must be positive (W, H, C, B)");
  }
  const double bytes_d = static_cast<double>(c.out_w) * c.out_h * c.out_c * c.out_b * workload::dtype_storage_bytes(c.out_dtype);
  if (bytes_d > 2e9) throw InputError("SHAVE kernel '" + op + "': output tensor too large");
  const auto out_bytes = static_cast<int64_t>(std::ceil(bytes_d));
  if (api == ShaveApi::SHAVE) {
    auto alias = legacy_shave_aliases().find(op);
    const std::string& name = alias != legacy_shave_aliases().end() ? alias->second : op;
    auto it = legacy_.find(name);
    if (it == legacy_.end()) return shave_errors::ERROR_SHAVE_OPERATOR_MISSING;
    const LegacyShaveParams& p = it->second;
    if (!p.has_model) return static_cast<uint32_t>(out_bytes);
    const float e = static_cast<float>(p.efficiency_milli) / 1000.f;
    const float q = static_cast<float>(out_bytes) / e;
    const double rounded = std::round(static_cast<double>(q));  // half away from zero
    const double total = rounded + p.latency;
    return total > 4e9 ? workload::errors::ERROR_INVALID_OUTPUT_RANGE : static_cast<uint32_t>(total);
  }
  if (op == "interpolatewh_1" && device_ == Device::VPU_2_7) {
    if (static_cast<double>(c.out_w) * c.out_h * c.out_c * c.out_b > 2e9) {
      throw InputError("SHAVE kernel '" + op + "': output tensor too large");
    }
    return interpolate_wh_1(c, 1300);
  }
  auto it = shave2_.find(op);
  if (it == shave2_.end()) {
    if (device_ != Device::VPU_2_0 && is_builtin_without_params(op)) {
      throw InputError("SHAVE kernel '" + op +
                       "' uses parameters built into VPUNN that are not in the parameter files; "
                       "not supported here (use api='SHAVE' or another kernel)");
    }
    return shave_errors::ERROR_SHAVE_OPERATOR_MISSING;
  }
  return shave2_cycles(it->second, out_bytes);
}

std::vector<std::string> ShaveModel::operators(ShaveApi api) const {
  std::vector<std::string> names;
  if (api == ShaveApi::SHAVE) {
    for (const auto& kv : legacy_) names.push_back(kv.first);
    for (const auto& kv : legacy_shave_aliases()) names.push_back(kv.first);
    std::sort(names.begin(), names.end());
  } else {
    for (const auto& kv : shave2_) names.push_back(kv.first);
    if (device_ == Device::VPU_2_7) names.push_back("interpolatewh_1");
    std::sort(names.begin(), names.end());
  }
  return names;
}

bool ShaveModel::has_operator(ShaveApi api, const std::string& op) const {
  if (api == ShaveApi::SHAVE) {
    auto alias = legacy_shave_aliases().find(op);
    return legacy_.count(alias != legacy_shave_aliases().end() ? alias->second : op) > 0;
  }
  return shave2_.count(op) > 0 || (op == "interpolatewh_1" && device_ == Device::VPU_2_7);
}

}  // namespace layer
}  // namespace vpunas
