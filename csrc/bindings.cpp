// The single pybind11 module of vpunas: vpunas._core. Everything else in csrc/ is plain C++17.
// Sections below belong to csrc/ subfolders; keep each binding next to its section marker.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"

namespace py = pybind11;

// ----- vpunn: model file + MLP helpers -----
#include <memory>
#include <string_view>

#include "vpunn/mlp.h"
#include "vpunn/model_file.h"

namespace vpunn_bind {

// A loaded .vpunn network: the parsed file (kept for layer_weights) and its packed inference engine.
struct MlpModel {
  vpunas::vpunn::ModelFile file;
  std::unique_ptr<vpunas::vpunn::Mlp> mlp;

  MlpModel(vpunas::vpunn::ModelFile f, const std::string& kernel)
      : file(std::move(f)), mlp(std::make_unique<vpunas::vpunn::Mlp>(file, kernel)) {}
};

std::shared_ptr<MlpModel> model_from_bytes(const py::bytes& b, const std::string& kernel) {
  std::string_view data(b);  // borrowed; parse copies what it keeps
  return std::make_shared<MlpModel>(
      vpunas::vpunn::ModelFile::parse(reinterpret_cast<const uint8_t*>(data.data()), data.size()), kernel);
}

py::array_t<float> forward(const MlpModel& model, const py::array& x, int threads) {
  const int in = model.mlp->input_size();
  if (!x.dtype().is(py::dtype::of<float>()))
    throw vpunas::InputError("MlpModel.forward: x must be float32, got dtype " + std::string(py::str(x.dtype())) +
                             " (use x.astype(np.float32))");
  if (x.ndim() != 2 || x.shape(1) != in)
    throw vpunas::InputError("MlpModel.forward: x must have shape [n, " + std::to_string(in) + "], got ndim " +
                             std::to_string(x.ndim()) +
                             (x.ndim() >= 2 ? " with " + std::to_string(x.shape(1)) + " columns" : std::string()));
  if (!(x.flags() & py::array::c_style))
    throw vpunas::InputError("MlpModel.forward: x must be C-contiguous (use np.ascontiguousarray)");
  const size_t n = size_t(x.shape(0));
  py::array_t<float> y({py::ssize_t(n), py::ssize_t(model.mlp->output_size())});
  const float* xp = static_cast<const float*>(x.data());
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    model.mlp->forward(xp, n, yp, threads);
  }
  return y;
}

}  // namespace vpunn_bind

// ----- workload: helpers (structured numpy array <-> WorkloadRecord) -----
#include "workload/dpu_cost_model.h"
#include "workload/sanitizer.h"
#include "workload/workload.h"

namespace workload_bind {
namespace wl = vpunas::workload;

// Field names of WorkloadRecord in order; 'f' marks the two float fields, everything else is int32.
const std::vector<std::pair<const char*, char>>& record_fields() {
  static const std::vector<std::pair<const char*, char>> f{
      {"device", 'i'}, {"op", 'i'}, {"in_w", 'i'}, {"in_h", 'i'}, {"in_c", 'i'}, {"in_b", 'i'},
      {"in_dtype", 'i'}, {"in_layout", 'i'}, {"in_sparse", 'i'}, {"out_w", 'i'}, {"out_h", 'i'},
      {"out_c", 'i'}, {"out_b", 'i'}, {"out_dtype", 'i'}, {"out_layout", 'i'}, {"out_sparse", 'i'},
      {"k_w", 'i'}, {"k_h", 'i'}, {"s_w", 'i'}, {"s_h", 'i'}, {"pad_t", 'i'}, {"pad_b", 'i'},
      {"pad_l", 'i'}, {"pad_r", 'i'}, {"exec_mode", 'i'}, {"activation", 'i'}, {"act_sparsity", 'f'},
      {"weight_sparsity", 'f'}, {"weight_sparsity_enabled", 'i'}, {"in_swz0", 'i'}, {"in_swz1", 'i'},
      {"out_swz0", 'i'}, {"owt", 'i'}, {"isi", 'i'}, {"weight_dtype", 'i'}, {"weightless_op", 'i'},
      {"inplace_output", 'i'}, {"superdense", 'i'}, {"in_autopad", 'i'}, {"out_autopad", 'i'}};
  return f;
}

// The numpy dtype mirroring WorkloadRecord (built once; numpy dtypes are immutable).
py::dtype record_dtype() {
  py::list names, formats, offsets;
  size_t off = 0;
  for (const auto& f : record_fields()) {
    names.append(f.first);
    formats.append(f.second == 'f' ? "<f4" : "<i4");
    offsets.append(off);
    off += 4;
  }
  py::dict spec;
  spec["names"] = names;
  spec["formats"] = formats;
  spec["offsets"] = offsets;
  spec["itemsize"] = sizeof(wl::WorkloadRecord);
  return py::dtype::from_args(spec);
}

// Zero-copy view of a workload array; clear errors for anything that is not exactly WORKLOAD_DTYPE.
std::pair<const wl::WorkloadRecord*, size_t> records(const py::array& a, const py::dtype& expected) {
  if (a.ndim() != 1)
    throw vpunas::InputError("workloads must be a 1-D structured array of vpunas.costmodel.WORKLOAD_DTYPE, got " +
                             std::to_string(a.ndim()) + " dims");
  const py::dtype dt = a.dtype();
  if (!dt.is(expected) && (dt.itemsize() != static_cast<py::ssize_t>(sizeof(wl::WorkloadRecord)) ||
                           !dt.attr("__eq__")(expected).cast<bool>()))
    throw vpunas::InputError("workloads must use vpunas.costmodel.WORKLOAD_DTYPE (itemsize " +
                             std::to_string(sizeof(wl::WorkloadRecord)) + "), got dtype " +
                             std::string(py::str(dt)) + "; build them with vpunas.costmodel.workloads_array()");
  if (!(a.flags() & py::array::c_style))
    throw vpunas::InputError("workloads must be C-contiguous (use np.ascontiguousarray)");
  return {static_cast<const wl::WorkloadRecord*>(a.data()), static_cast<size_t>(a.shape(0))};
}

}  // namespace workload_bind

// ----- layer: helpers (layer batches over a DPU model, SHAVE kernels) -----
#include <array>
#include <cstring>

#include "layer/dma.h"
#include "layer/layer_cost.h"
#include "layer/shave.h"

namespace layer_bind {
namespace ly = vpunas::layer;
namespace wl = vpunas::workload;

// None -> every strategy valid for the device; "SOHO" -> that one; list of names -> those.
std::vector<ly::TilingStrategy> parse_strategies(const py::object& s) {
  std::vector<ly::TilingStrategy> out;
  if (s.is_none()) return out;
  if (py::isinstance<py::str>(s)) {
    out.push_back(ly::tiling_strategy_from_name(s.cast<std::string>()));
    return out;
  }
  for (const auto& item : s) out.push_back(ly::tiling_strategy_from_name(py::str(item).cast<std::string>()));
  if (out.empty()) throw vpunas::InputError("strategy list is empty: pass None for the best strategy");
  return out;
}

py::array records_copy(const std::vector<wl::WorkloadRecord>& recs) {
  const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(recs.size())};
  py::array out(workload_bind::record_dtype(), shape);
  if (!recs.empty()) std::memcpy(out.mutable_data(), recs.data(), recs.size() * sizeof(wl::WorkloadRecord));
  return out;
}

// Cycles of the batch's workloads from a C++ model (GIL released) or any object with predict(array).
std::vector<uint32_t> predict_any(const py::object& model, const std::vector<wl::WorkloadRecord>& wls, int threads) {
  std::vector<uint32_t> cycles(wls.size());
  if (wls.empty()) return cycles;
  const wl::DpuCycleModel* cpp = nullptr;
  if (py::isinstance<wl::DpuCycleModel>(model)) cpp = &model.cast<const wl::DpuCycleModel&>();
  if (cpp != nullptr) {
    py::gil_scoped_release release;
    cpp->predict(wls.data(), wls.size(), cycles.data(), threads);
    return cycles;
  }
  if (!py::hasattr(model, "predict")) {
    throw vpunas::InputError("dpu_model must be a vpunas VPUNN / TheoreticalCostModel or have predict(workloads)");
  }
  py::array res = py::array::ensure(model.attr("predict")(records_copy(wls)));
  if (!res || res.ndim() != 1 || static_cast<size_t>(res.shape(0)) != wls.size()) {
    throw vpunas::InputError("dpu_model.predict must return one cycle value per workload (1-D array)");
  }
  py::array_t<uint32_t, py::array::c_style | py::array::forcecast> c(res);
  std::memcpy(cycles.data(), c.data(), wls.size() * sizeof(uint32_t));
  return cycles;
}

ly::LayerHardware hardware(int n_dpu, int n_tiles, bool in_ddr, bool out_ddr, bool prefetching) {
  ly::LayerHardware hw;
  hw.n_dpu = n_dpu;
  hw.n_tiles = n_tiles;
  hw.input_in_ddr = in_ddr;
  hw.output_in_ddr = out_ddr;
  hw.prefetching = prefetching;
  return hw;
}

// Planned batch + the cycles of its workloads; reduced on demand.
struct CostedBatch {
  std::unique_ptr<ly::LayerBatch> batch;
  std::vector<uint32_t> cycles;
  std::vector<ly::LayerResult> results;
};

CostedBatch cost_batch(const py::object& model, const py::array& layers, const py::object& strategy, int n_dpu,
                       int n_tiles, bool in_ddr, bool out_ddr, bool prefetching, int threads) {
  auto [recs, n] = workload_bind::records(layers, workload_bind::record_dtype());
  CostedBatch cb;
  const auto strategies = parse_strategies(strategy);
  const auto hw = hardware(n_dpu, n_tiles, in_ddr, out_ddr, prefetching);
  {
    py::gil_scoped_release release;
    cb.batch = std::make_unique<ly::LayerBatch>(recs, n, strategies, hw);
  }
  cb.cycles = predict_any(model, cb.batch->workloads(), threads);
  {
    py::gil_scoped_release release;
    cb.results = cb.batch->reduce(cb.cycles.data(), cb.cycles.size());
  }
  return cb;
}

py::dict strategy_detail(const CostedBatch& cb, size_t li, size_t si) {
  const ly::StrategyPlan& plan = cb.batch->plan(li).at(si);
  const ly::StrategyResult& r = cb.results.at(li).strategies.at(si);
  py::dict d;
  d["strategy"] = ly::tiling_strategy_names().at(static_cast<size_t>(plan.strategy));
  d["cycles"] = r.cycles;
  d["error"] = wl::error_name(r.cycles);
  d["tile_cycles"] = r.tile_cycles;
  d["tile_dma_w_cycles"] = r.tile_dma_w;
  d["w_fetch_cycles"] = r.w_fetch_cycles;
  d["ddr_io_dma_cycles"] = r.ddr_io_cycles;
  py::list tiles;
  const auto& wls = cb.batch->workloads();
  for (size_t t = 0; t < plan.tiles.size(); ++t) {
    const ly::TilePlan& tp = plan.tiles[t];
    py::dict td;
    td["tile"] = records_copy({tp.tile});
    td["n_candidate_splits"] = tp.splits.size();
    std::vector<wl::WorkloadRecord> chosen;
    std::vector<uint32_t> chosen_cycles;
    const int32_t best = t < r.best_split.size() ? r.best_split[t] : -1;
    if (best >= 0 && static_cast<size_t>(best) < tp.splits.size()) {
      for (uint32_t id : tp.splits[static_cast<size_t>(best)]) {
        chosen.push_back(wls[id]);
        chosen_cycles.push_back(cb.cycles[id]);
      }
    }
    td["workloads"] = records_copy(chosen);
    td["workload_cycles"] = chosen_cycles;
    tiles.append(td);
  }
  d["tiles"] = tiles;
  return d;
}

}  // namespace layer_bind

// ----- latency: helpers (numpy <-> kernel views, dtype dispatch) -----
#include "latency/expected_latency.h"

namespace latency_bind {

// Checks a C-contiguous 2-D array (optionally of a given shape) and returns its dims.
std::pair<int64_t, int64_t> check_2d(const py::array& a, const char* name, int64_t rows = -1, int64_t cols = -1) {
  if (a.ndim() != 2) {
    throw vpunas::InputError(std::string(name) + " must be a 2-D array, got " + std::to_string(a.ndim()) + " dims");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw vpunas::InputError(std::string(name) + " must be C-contiguous (use np.ascontiguousarray)");
  }
  const int64_t r = a.shape(0), c = a.shape(1);
  if ((rows >= 0 && r != rows) || (cols >= 0 && c != cols)) {
    throw vpunas::InputError(std::string(name) + " has shape (" + std::to_string(r) + ", " + std::to_string(c) +
                             "), expected (" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
  }
  return {r, c};
}

// None -> nullptr; else a bool / uint8 array of shape [rows, cols].
const uint8_t* mask_ptr(const py::object& mask, int64_t rows, int64_t cols) {
  if (mask.is_none()) return nullptr;
  py::array arr = py::reinterpret_borrow<py::array>(mask);
  if (!py::isinstance<py::array>(mask) ||
      !(arr.dtype().is(py::dtype::of<bool>()) || arr.dtype().is(py::dtype::of<uint8_t>()))) {
    throw vpunas::InputError("mask must be a numpy bool (or uint8) array");
  }
  check_2d(arr, "mask", rows, cols);
  return static_cast<const uint8_t*>(arr.data());
}

template <class T>
py::tuple expected_latency_typed(const py::array& alpha, const py::array& F, const py::object& mask, bool with_grad) {
  auto [n, m] = check_2d(alpha, "alpha");
  check_2d(F, "F", n, m);
  if (!F.dtype().is(alpha.dtype())) throw vpunas::InputError("alpha and F must have the same dtype");
  const uint8_t* mk = mask_ptr(mask, n, m);
  py::array_t<T> probs({n, m});
  py::array_t<T> grad = with_grad ? py::array_t<T>({n, m}) : py::array_t<T>();
  T* grad_ptr = with_grad ? grad.mutable_data() : nullptr;
  const T* a = static_cast<const T*>(alpha.data());
  const T* f = static_cast<const T*>(F.data());
  T* p = probs.mutable_data();
  double total;
  if (n * m >= 4096) {
    py::gil_scoped_release release;
    total = vpunas::latency::expected_latency<T>(a, f, mk, n, m, p, grad_ptr);
  } else {
    total = vpunas::latency::expected_latency<T>(a, f, mk, n, m, p, grad_ptr);
  }
  return py::make_tuple(total, probs, with_grad ? py::object(grad) : py::object(py::none()));
}

// Calls fn(typed pointer) for the integer dtype of `choices`.
template <class Fn>
auto dispatch_index(const py::array& choices, Fn&& fn) {
  const auto& dt = choices.dtype();
  if (dt.is(py::dtype::of<int64_t>())) return fn(static_cast<const int64_t*>(choices.data()));
  if (dt.is(py::dtype::of<int32_t>())) return fn(static_cast<const int32_t*>(choices.data()));
  if (dt.is(py::dtype::of<int16_t>())) return fn(static_cast<const int16_t*>(choices.data()));
  if (dt.is(py::dtype::of<int8_t>())) return fn(static_cast<const int8_t*>(choices.data()));
  if (dt.is(py::dtype::of<uint8_t>())) return fn(static_cast<const uint8_t*>(choices.data()));
  throw vpunas::InputError("choices must be an integer array (int8/uint8/int16/int32/int64), got dtype " +
                           std::string(py::str(dt)));
}

const double* f64_matrix(const py::array& F, int64_t rows) {
  check_2d(F, "F", rows);
  if (!F.dtype().is(py::dtype::of<double>())) throw vpunas::InputError("F must be a float64 array");
  return static_cast<const double*>(F.data());
}

}  // namespace latency_bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "vpunas C++ core: VPUNN inference, layer costs, LUTs and expected-latency kernels";
  py::register_exception<vpunas::InputError>(m, "InputError", PyExc_ValueError);

  // ===== vpunn: model file + MLP =====
  py::class_<vpunn_bind::MlpModel, std::shared_ptr<vpunn_bind::MlpModel>>(
      m, "MlpModel", "A VPUNN .vpunn network (fully connected MLP) with a fast batched forward pass")
      .def(py::init([](const std::string& path, const std::string& kernel) {
             return std::make_shared<vpunn_bind::MlpModel>(vpunas::vpunn::ModelFile::load(path), kernel);
           }),
           py::arg("path"), py::arg("kernel") = "auto",
           "Load a .vpunn file; kernel = 'auto' | 'avx512' | 'avx2' | 'scalar'. ValueError on a bad file.")
      .def_static("from_bytes", &vpunn_bind::model_from_bytes, py::arg("data"), py::arg("kernel") = "auto",
                  "Parse a .vpunn model from bytes (ValueError with the reason when corrupt)")
      .def_property_readonly("name", [](const vpunn_bind::MlpModel& s) { return s.file.name; })
      .def_property_readonly("interface_in", [](const vpunn_bind::MlpModel& s) { return s.file.interface_in; },
                             "descriptor (input) interface version VI from the name NAME-VI-VO")
      .def_property_readonly("interface_out", [](const vpunn_bind::MlpModel& s) { return s.file.interface_out; },
                             "output (post-processing) interface version VO")
      .def_property_readonly("input_size", [](const vpunn_bind::MlpModel& s) { return s.mlp->input_size(); })
      .def_property_readonly("output_size", [](const vpunn_bind::MlpModel& s) { return s.mlp->output_size(); })
      .def_property_readonly("kernel", [](const vpunn_bind::MlpModel& s) { return std::string(s.mlp->kernel_name()); })
      .def_property_readonly(
          "layer_shapes",
          [](const vpunn_bind::MlpModel& s) {
            py::list out;
            for (const auto& l : s.file.layers)
              out.append(py::make_tuple(l.in, l.out, vpunas::vpunn::activation_name(l.act)));
            return out;
          },
          "[(in, out, activation)] per layer")
      .def_property_readonly(
          "near_zero_outputs", [](const vpunn_bind::MlpModel& s) { return s.mlp->near_zero_outputs(); },
          "per layer, the outputs the zero-skipping kernels prove 0 instead of evaluating (empty for dense kernels)")
      .def_property_readonly(
          "diagonal_layers", [](const vpunn_bind::MlpModel& s) { return s.mlp->diagonal_layers(); },
          "per layer, whether the zero-skipping kernels evaluate it as a diagonal (elementwise) layer")
      .def("forward", &vpunn_bind::forward, py::arg("x"), py::arg("threads") = 0,
           "y [n, output_size] float32 = network(x [n, input_size] float32, C-contiguous); releases the GIL")
      .def(
          "layer_weights",
          [](const vpunn_bind::MlpModel& s, int i) {
            const int n = int(s.file.layers.size());
            if (i < -n || i >= n)
              throw py::index_error("layer index " + std::to_string(i) + " out of range for " + std::to_string(n) +
                                    " layers");
            const auto& l = s.file.layers[size_t(i < 0 ? i + n : i)];
            py::array_t<float> w({l.out, l.in});
            std::copy(l.weight.begin(), l.weight.end(), w.mutable_data());
            py::array_t<float> b(l.out);
            std::copy(l.bias.begin(), l.bias.end(), b.mutable_data());
            return py::make_tuple(w, b);
          },
          py::arg("i"), "copies (W [out, in], b [out]) of layer i")
      .def("__repr__", [](const vpunn_bind::MlpModel& s) {
        return "<MlpModel '" + s.file.name + "' " + std::to_string(s.mlp->input_size()) + "->" +
               std::to_string(s.mlp->output_size()) + ", " + std::to_string(s.file.layers.size()) + " layers, " +
               s.mlp->kernel_name() + ">";
      });
  m.def(
      "available_mlp_kernels",
      [] {
        std::vector<std::string> names;
        for (const auto& k : vpunas::vpunn::gemm::available_kernels()) names.push_back(k.name);
        return names;
      },
      "MLP kernels usable on this CPU, best first");

  // ===== workload: DPU workloads, descriptors, cost model =====
  {
    namespace wl = vpunas::workload;
    using workload_bind::records;
    const py::dtype rec_dtype = workload_bind::record_dtype();
    m.attr("WORKLOAD_DTYPE") = rec_dtype;
    py::dict enum_names;
    enum_names["device"] = wl::device_names();
    enum_names["op"] = wl::operation_names();
    enum_names["dtype"] = wl::datatype_names();
    enum_names["exec_mode"] = wl::execution_mode_names();
    enum_names["layout"] = wl::layout_names();
    enum_names["swizzling"] = wl::swizzling_names();
    enum_names["activation"] = wl::activation_names();
    enum_names["isi"] = wl::isi_strategy_names();
    m.attr("WORKLOAD_ENUM_NAMES") = enum_names;
    m.def("workload_error_name", &wl::error_name, py::arg("value"),
          "VPUNN error name of a cycle value ('' for a normal value, 'UNKNOWN' for an unnamed error)");
    m.def("dpu_clock_mhz", [](int device) { return wl::dpu_clock_mhz(static_cast<wl::Device>(device)); },
          py::arg("device"));
    m.def(
        "theoretical_dpu_cycles",
        [rec_dtype](const py::array& a) {
          auto [w, n] = records(a, rec_dtype);
          py::array_t<uint64_t> out(static_cast<py::ssize_t>(n));
          uint64_t* o = out.mutable_data();
          {
            py::gil_scoped_release release;
            for (size_t i = 0; i < n; ++i) {
              wl::WorkloadRecord r = wl::preadapt(w[i]);
              wl::sanitize(r);
              o[i] = wl::theoretical_dpu_cycles(r);
            }
          }
          return out;
        },
        py::arg("workloads"), "VPUNN's analytic DPU cycles of the adapted workloads (64-bit, like DPUInfo)");

    // predict() and device are bound once on the abstract base; both models inherit them.
    py::class_<wl::DpuCycleModel>(m, "DpuCycleModel")
        .def_property_readonly("device", [](const wl::DpuCycleModel& s) { return static_cast<int>(s.device()); })
        .def(
            "predict",
            [rec_dtype](const wl::DpuCycleModel& self, const py::array& a, int threads) {
              auto [w, n] = records(a, rec_dtype);
              py::array_t<uint32_t> out(static_cast<py::ssize_t>(n));
              uint32_t* o = out.mutable_data();
              {
                py::gil_scoped_release release;
                self.predict(w, n, o, threads);
              }
              return out;
            },
            py::arg("workloads"), py::arg("threads") = 0);

    py::class_<wl::TheoreticalDpuModel, wl::DpuCycleModel>(m, "TheoreticalDpuModel")
        .def(py::init([](int device) { return std::make_unique<wl::TheoreticalDpuModel>(static_cast<wl::Device>(device)); }),
             py::arg("device"));

    py::class_<wl::DpuCostModel, wl::DpuCycleModel>(m, "DpuCostModel")
        .def(py::init<const std::string&, const std::string&>(), py::arg("path"), py::arg("mlp_kernel") = "",
             "mlp_kernel: '' = fastest, else one of available_mlp_kernels() (same results, for benchmarks)")
        .def_property_readonly("mlp_kernel", [](const wl::DpuCostModel& s) { return std::string(s.mlp_kernel()); })
        .def_property_readonly("nn_name", &wl::DpuCostModel::nn_name)
        .def_property_readonly("interface_in", &wl::DpuCostModel::interface_in)
        .def_property_readonly("interface_out", &wl::DpuCostModel::interface_out)
        .def_property_readonly("descriptor_size", &wl::DpuCostModel::descriptor_size)
        .def(
            "predict_detail",
            [rec_dtype](const wl::DpuCostModel& self, const py::array& a, int threads) {
              auto [w, n] = records(a, rec_dtype);
              std::vector<wl::PredictDetail> d(n);
              {
                py::gil_scoped_release release;
                self.predict_detail(w, n, d.data(), threads);
              }
              py::array_t<uint32_t> cycles(static_cast<py::ssize_t>(n));
              py::array_t<uint64_t> theo(static_cast<py::ssize_t>(n));
              py::array_t<float> raw(static_cast<py::ssize_t>(n));
              py::array_t<int32_t> src(static_cast<py::ssize_t>(n));
              for (size_t i = 0; i < n; ++i) {
                cycles.mutable_data()[i] = d[i].cycles;
                theo.mutable_data()[i] = d[i].theoretical;
                raw.mutable_data()[i] = d[i].nn_raw;
                src.mutable_data()[i] = d[i].value_source;
              }
              py::dict r;
              r["cycles"] = cycles;
              r["theoretical_cycles"] = theo;
              r["nn_raw"] = raw;
              r["value_source"] = src;
              return r;
            },
            py::arg("workloads"), py::arg("threads") = 0)
        .def(
            "descriptors",
            [rec_dtype](const wl::DpuCostModel& self, const py::array& a) {
              auto [w, n] = records(a, rec_dtype);
              const size_t d = self.descriptor_size();
              py::array_t<float> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(d)});
              py::array_t<uint8_t> ok(static_cast<py::ssize_t>(n));
              float* o = out.mutable_data();
              uint8_t* k = ok.mutable_data();
              {
                py::gil_scoped_release release;
                self.descriptors(w, n, o, k);
              }
              return py::make_tuple(out, ok);
            },
            py::arg("workloads"));
  }

  // ===== layer: tiling, SHAVE, theoretical model =====
  {
    namespace ly = vpunas::layer;
    namespace wl = vpunas::workload;
    m.attr("TILING_STRATEGIES") = ly::tiling_strategy_names();
    m.def(
        "valid_tiling_strategies",
        [](int device) {
          std::vector<std::string> names;
          for (auto s : ly::valid_tiling_strategies(static_cast<wl::Device>(device)))
            names.push_back(ly::tiling_strategy_names().at(static_cast<size_t>(s)));
          return names;
        },
        py::arg("device"), "tiling strategies VPUNN tries for a device (index into WORKLOAD_ENUM_NAMES['device'])");
    m.def(
        "layer_default_hardware",
        [](int device) {
          const auto hw = ly::default_hardware(static_cast<wl::Device>(device));
          return py::make_tuple(hw.n_dpu, hw.n_tiles);
        },
        py::arg("device"), "(DPUs per tile, tiles) VPUNN uses for a device");
    m.def(
        "layer_cycles",
        [](const py::object& model, const py::array& layers, const py::object& strategy, int n_dpu, int n_tiles,
           bool in_ddr, bool out_ddr, bool prefetching, int threads) {
          auto cb = layer_bind::cost_batch(model, layers, strategy, n_dpu, n_tiles, in_ddr, out_ddr, prefetching,
                                           threads);
          const auto n = static_cast<py::ssize_t>(cb.results.size());
          py::array_t<uint32_t> cycles(n);
          py::array_t<int32_t> best(n);
          for (py::ssize_t i = 0; i < n; ++i) {
            const auto& r = cb.results[static_cast<size_t>(i)];
            cycles.mutable_data()[i] = r.cycles;
            best.mutable_data()[i] =
                r.best < 0 ? -1 : static_cast<int32_t>(r.strategies[static_cast<size_t>(r.best)].strategy);
          }
          return py::make_tuple(cycles, best, cb.batch->workloads().size());
        },
        py::arg("dpu_model"), py::arg("layers"), py::arg("strategy"), py::arg("n_dpu"), py::arg("n_tiles"),
        py::arg("input_in_ddr"), py::arg("output_in_ddr"), py::arg("prefetching"), py::arg("threads") = 0,
        "(cycles uint32[n], best strategy index into TILING_STRATEGIES or -1, unique workloads costed): all "
        "candidate workloads of all layers are costed in one predict call");
    m.def(
        "layer_details",
        [](const py::object& model, const py::array& layers, const py::object& strategy, int n_dpu, int n_tiles,
           bool in_ddr, bool out_ddr, bool prefetching, int threads) {
          auto cb = layer_bind::cost_batch(model, layers, strategy, n_dpu, n_tiles, in_ddr, out_ddr, prefetching,
                                           threads);
          py::list out;
          for (size_t i = 0; i < cb.results.size(); ++i) {
            const auto& r = cb.results[i];
            py::dict d;
            d["cycles"] = r.cycles;
            d["error"] = wl::error_name(r.cycles);
            d["best_strategy"] =
                r.best < 0 ? py::object(py::none())
                           : py::object(py::str(ly::tiling_strategy_names().at(
                                 static_cast<size_t>(r.strategies[static_cast<size_t>(r.best)].strategy))));
            py::list strategies;
            for (size_t s = 0; s < r.strategies.size(); ++s) strategies.append(layer_bind::strategy_detail(cb, i, s));
            d["strategies"] = strategies;
            out.append(d);
          }
          return out;
        },
        py::arg("dpu_model"), py::arg("layers"), py::arg("strategy"), py::arg("n_dpu"), py::arg("n_tiles"),
        py::arg("input_in_ddr"), py::arg("output_in_ddr"), py::arg("prefetching"), py::arg("threads") = 0,
        "per layer: cycles, best strategy and, per strategy, tiles with the chosen workloads and their cycles");
    m.def(
        "layer_tile_candidates",
        [](const py::array& tile, int n_dpu) {
          auto [recs, n] = workload_bind::records(tile, workload_bind::record_dtype());
          if (n != 1) throw vpunas::InputError("layer_tile_candidates: pass exactly one tile record");
          py::list out;
          for (const auto& cand : ly::intra_tile_splits(recs[0], n_dpu)) out.append(layer_bind::records_copy(cand.workloads));
          return out;
        },
        py::arg("tile"), py::arg("n_dpu"),
        "candidate intra-tile workload splits of one tile, in VPUNN's evaluation order (no costing)");
    m.def(
        "layer_split_tiles",
        [](const py::array& layer, const std::string& strategy, int n_tiles) {
          auto [recs, n] = workload_bind::records(layer, workload_bind::record_dtype());
          if (n != 1) throw vpunas::InputError("layer_split_tiles: pass exactly one layer record");
          const auto prepared = ly::prepare_layer(recs[0]);
          const auto s = ly::tiling_strategy_from_name(strategy);
          const uint32_t err = ly::check_layer(prepared, s, n_tiles);
          return py::make_tuple(err, layer_bind::records_copy(ly::split_across_tiles(prepared, s, n_tiles)));
        },
        py::arg("layer"), py::arg("strategy"), py::arg("n_tiles"),
        "(layer check error code or 0, tile layers) of an inter-tile split");
    m.def(
        "schedule_cycles",
        [](const std::vector<uint32_t>& cycles, int n_units) {
          return ly::greedy_schedule(n_units, cycles.data(), cycles.size());
        },
        py::arg("cycles"), py::arg("n_units"), "VPUNN's greedy schedule: each item to the least loaded unit");
    m.def(
        "dma_cycles",
        [](int device, int64_t bytes) {
          return ly::dma_cycles(static_cast<wl::Device>(device), bytes, ly::DmaDirection::DDR_TO_CMX);
        },
        py::arg("device"), py::arg("bytes"), "VPUNN's analytic DMA cycles of a contiguous DDR<->CMX transfer");
    m.def(
        "weight_bytes",
        [](const py::array& tiles) {
          auto [recs, n] = workload_bind::records(tiles, workload_bind::record_dtype());
          std::vector<int64_t> out(n);
          for (size_t i = 0; i < n; ++i) out[i] = ly::weight_bytes(recs[i]);
          return out;
        },
        py::arg("tiles"), "weights + weight table bytes a tile layer fetches");

    py::enum_<ly::ShaveApi>(m, "ShaveApi").value("SHAVE", ly::ShaveApi::SHAVE).value("shave2", ly::ShaveApi::SHAVE2);
    py::class_<ly::ShaveModel, std::shared_ptr<ly::ShaveModel>>(m, "ShaveModel")
        .def(py::init([](int device, const std::string& dir) {
               return std::make_shared<ly::ShaveModel>(static_cast<wl::Device>(device), dir);
             }),
             py::arg("device"), py::arg("params_dir"))
        .def(
            "cycles",
            [](const ly::ShaveModel& s, ly::ShaveApi api, const std::string& op, std::array<int64_t, 4> in_whcb,
               std::array<int64_t, 4> out_whcb, int dtype, int in_layout, int out_layout) {
              const int n_dtype = static_cast<int>(wl::datatype_names().size());
              const int n_layout = static_cast<int>(wl::layout_names().size());
              if (dtype < 0 || dtype >= n_dtype) throw vpunas::InputError("out_dtype index out of range");
              if (in_layout < 0 || in_layout >= n_layout || out_layout < 0 || out_layout >= n_layout)
                throw vpunas::InputError("layout index out of range");
              ly::ShaveModel::Call c;
              c.in_w = in_whcb[0], c.in_h = in_whcb[1], c.in_c = in_whcb[2], c.in_b = in_whcb[3];
              c.out_w = out_whcb[0], c.out_h = out_whcb[1], c.out_c = out_whcb[2], c.out_b = out_whcb[3];
              c.out_dtype = static_cast<wl::DataType>(dtype);
              c.in_layout = static_cast<wl::Layout>(in_layout);
              c.out_layout = static_cast<wl::Layout>(out_layout);
              return s.cycles(api, op, c);
            },
            py::arg("api"), py::arg("op"), py::arg("in_whcb"), py::arg("out_whcb"), py::arg("out_dtype"),
            py::arg("in_layout"), py::arg("out_layout"))
        .def("operators", &ly::ShaveModel::operators, py::arg("api"))
        .def("has_operator", &ly::ShaveModel::has_operator, py::arg("api"), py::arg("op"))
        .def("is_builtin_without_params", &ly::ShaveModel::is_builtin_without_params, py::arg("op"));
  }

  // ===== latency: LUT kernels, expected latency =====
  m.def(
      "expected_latency",
      [](const py::array& alpha, const py::array& F, const py::object& mask, bool with_grad) {
        if (alpha.dtype().is(py::dtype::of<double>())) {
          return latency_bind::expected_latency_typed<double>(alpha, F, mask, with_grad);
        }
        if (alpha.dtype().is(py::dtype::of<float>())) {
          return latency_bind::expected_latency_typed<float>(alpha, F, mask, with_grad);
        }
        throw vpunas::InputError("alpha must be float32 or float64");
      },
      py::arg("alpha"), py::arg("F"), py::arg("mask") = py::none(), py::arg("with_grad") = true,
      "E[lat] = sum_ij softmax(alpha)_ij F_ij over valid (mask) entries -> (E, probs, dE/dalpha or None)");
  m.def(
      "discrete_latency",
      [](const py::array& choices, const py::array& F, const py::object& mask, int n_threads) {
        auto [b, n] = latency_bind::check_2d(choices, "choices");
        const double* f = latency_bind::f64_matrix(F, n);
        const int64_t m_cands = F.shape(1);
        const uint8_t* mk = latency_bind::mask_ptr(mask, n, m_cands);
        py::array_t<double> out(b);
        double* o = out.mutable_data();
        latency_bind::dispatch_index(choices, [&](auto* c) {
          py::gil_scoped_release release;
          vpunas::latency::discrete_latency(c, b, f, mk, n, m_cands, o, n_threads);
          return 0;
        });
        return out;
      },
      py::arg("choices"), py::arg("F"), py::arg("mask") = py::none(), py::arg("n_threads") = 0,
      "latencies [B] of B architectures given as chosen candidate indices [B, N]");
  m.def(
      "count_within",
      [](const py::array& choices, const py::array& F, double target_ms, const py::object& mask, int n_threads) {
        auto [b, n] = latency_bind::check_2d(choices, "choices");
        const double* f = latency_bind::f64_matrix(F, n);
        const int64_t m_cands = F.shape(1);
        const uint8_t* mk = latency_bind::mask_ptr(mask, n, m_cands);
        return latency_bind::dispatch_index(choices, [&](auto* c) {
          py::gil_scoped_release release;
          return vpunas::latency::count_within(c, b, f, mk, n, m_cands, target_ms, n_threads);
        });
      },
      py::arg("choices"), py::arg("F"), py::arg("target_ms"), py::arg("mask") = py::none(), py::arg("n_threads") = 0,
      "number of the B architectures [B, N] whose latency is <= target_ms");
}
