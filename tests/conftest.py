"""Shared test fixtures: where the VPUNN model files and golden data live.

Tests that need ../shared data skip on a user's machine without it, but fail when CI=true.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _first_dir(*candidates):
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


MODEL_DIR = _first_dir(os.environ.get("VPUNAS_MODEL_DIR"), REPO.parent / "shared" / "vpunn")
GOLDEN_DIR = _first_dir(os.environ.get("VPUNAS_GOLDEN_DIR"), MODEL_DIR and MODEL_DIR / "golden")
SHAVE_DIR = _first_dir(MODEL_DIR and MODEL_DIR / "shave")


def _need(path, what):
    if path is None or not Path(path).exists():
        msg = f"{what} not found (set VPUNAS_MODEL_DIR / VPUNAS_GOLDEN_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " -- required in CI")
        pytest.skip(msg)
    return Path(path)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return _need(MODEL_DIR, "VPUNN model directory")


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return _need(GOLDEN_DIR, "VPUNN golden directory")


@pytest.fixture(scope="session")
def shave_dir() -> Path:
    return _need(SHAVE_DIR, "VPUNN SHAVE parameter directory")


def model_path(name: str) -> Path:
    """Path of a shipped .vpunn file; skips (fails in CI) when absent."""
    return _need(MODEL_DIR and MODEL_DIR / name, f"model file {name}")
