"""Image quality metrics for super-resolution: PSNR and SSIM on the luma (Y) channel.

Conventions follow what EDSR and most SR papers report:
  * Y is ITU-R BT.601 luma as MATLAB's ``rgb2ycbcr`` computes it: Y = 16 + 65.481 R + 128.553 G + 24.966 B
    for R, G, B in [0, 1], i.e. Y in [16, 235] on the 0..255 scale.
  * A border of ``crop`` pixels (the scale factor) is removed on every side before comparing, because the
    network cannot see past the image edge there.
  * PSNR uses a peak of 255 on that 0..255 Y scale; SSIM is Wang et al. (2004) with an 11x11 Gaussian window
    (sigma 1.5), K1 = 0.01, K2 = 0.03, evaluated only where the window lies fully inside the image.
Inputs are RGB images as numpy arrays or torch tensors, HxWx3 or 3xHxW, either uint8 (0..255) or float
(0..1). Float images are rounded to 8 bits first, as a saved PNG would be.
"""
from __future__ import annotations

import math

import numpy as np

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0  # applied to 0..255 RGB, result on 0..255 scale
_Y_OFFSET = 16.0


def _to_hwc_uint8_float(img) -> np.ndarray:
    """RGB image (HxWx3 / 3xHxW, uint8 or float in [0,1], numpy or torch) -> float64 HxWx3 on 0..255."""
    if hasattr(img, "detach"):  # torch tensor
        img = img.detach().cpu().numpy()
    arr = np.asarray(img)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ValueError(f"expected an RGB image HxWx3 or 3xHxW, got shape {arr.shape}")
    if arr.shape[-1] != 3 and arr.shape[0] == 3:
        arr = np.moveaxis(arr, 0, -1)
    if arr.shape[-1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"expected uint8 or float image, got dtype {arr.dtype}")
    return np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0)


def rgb_to_y(img) -> np.ndarray:
    """BT.601 luma of an RGB image on the 0..255 scale (16..235), float64 HxW."""
    return _to_hwc_uint8_float(img) @ _Y_WEIGHTS + _Y_OFFSET


def _crop(y: np.ndarray, crop: int) -> np.ndarray:
    if crop < 0:
        raise ValueError(f"crop must be >= 0, got {crop}")
    if crop == 0:
        return y
    if y.shape[0] <= 2 * crop or y.shape[1] <= 2 * crop:
        raise ValueError(f"image {y.shape} too small to crop a border of {crop}")
    return y[crop:-crop, crop:-crop]


def _pair_y(sr, hr, crop: int) -> tuple[np.ndarray, np.ndarray]:
    y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
    if y_sr.shape != y_hr.shape:
        raise ValueError(f"image sizes differ: {y_sr.shape} vs {y_hr.shape}; crop HR to a multiple of the scale")
    return _crop(y_sr, crop), _crop(y_hr, crop)


def psnr_y(sr, hr, crop: int = 0) -> float:
    """PSNR (dB) between two RGB images on the Y channel, ``crop`` border pixels removed (use the scale)."""
    a, b = _pair_y(sr, hr, crop)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D image with the 1-D kernel k along both axes."""
    n = k.shape[0]
    rows = np.lib.stride_tricks.sliding_window_view(img, n, axis=0) @ k  # (H-n+1, W)
    return np.lib.stride_tricks.sliding_window_view(rows, n, axis=1) @ k  # (H-n+1, W-n+1)


def ssim_y(sr, hr, crop: int = 0, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM on the Y channel (0..255 scale), ``crop`` border pixels removed first."""
    a, b = _pair_y(sr, hr, crop)
    if min(a.shape) < window:
        raise ValueError(f"image {a.shape} (after cropping) is smaller than the SSIM window {window}")
    k = _gaussian_kernel(window, sigma)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    mu_a, mu_b = _filter_valid(a, k), _filter_valid(b, k)
    var_a = _filter_valid(a * a, k) - mu_a**2
    var_b = _filter_valid(b * b, k) - mu_b**2
    cov = _filter_valid(a * b, k) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


ssim = ssim_y  # the name the SR report and CLI use
