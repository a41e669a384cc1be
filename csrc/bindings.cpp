// The single pybind11 module of vpunas: vpunas._core. Everything else in csrc/ is plain C++17.
// Sections below belong to csrc/ subfolders; keep each binding next to its section marker.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "vpunas C++ core: VPUNN inference, layer costs, LUTs and expected-latency kernels";
  py::register_exception<vpunas::InputError>(m, "InputError", PyExc_ValueError);

  // ===== vpunn: model file + MLP =====

  // ===== workload: DPU workloads, descriptors, cost model =====

  // ===== layer: tiling, SHAVE, theoretical model =====

  // ===== latency: LUT kernels, expected latency =====
}
