"""The C++ core's own tests (tests/cpp: workloads, layers, latency kernels, the MLP shortcuts, the model-file
fuzzer), built with CMake as a plain C++ library, without Python, and run with CTest. This is also the check
that the core builds on its own, as a C++ NAS framework would link it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import MODEL_DIR

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found (pip install '.[test]' installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " -- required in CI")
        pytest.skip(msg)
    return path


@pytest.mark.slow
def test_cpp_unit_tests(tmp_path, model_dir):
    cmake, ctest = _tool("cmake"), _tool("ctest")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build = tmp_path / "build"
    env = dict(os.environ, VPUNAS_MODEL_DIR=str(MODEL_DIR))

    def run(*cmd):
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout

    run(cmake, "-S", str(REPO), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
        "-DVPUNAS_BUILD_PYTHON=OFF", "-DVPUNAS_BUILD_TESTS=ON")
    run(cmake, "--build", str(build), "-j", str(os.cpu_count() or 2))
    out = run(ctest, "--test-dir", str(build), "--output-on-failure")
    assert "100% tests passed" in out
    assert "test_mlp_shortcuts" in out
