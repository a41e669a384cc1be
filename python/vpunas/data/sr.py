"""Super-resolution data: HR images, bicubic-downscaled LR inputs, random aligned patches.

Two sources, neither downloads anything:
  * the natural images bundled in scikit-image's wheel, with a fixed train / held-out split
    (``SKIMAGE_TRAIN`` / ``SKIMAGE_HOLDOUT``), the default;
  * a folder of HR images: DIV2K layout (``DIV2K_train_HR/`` + ``DIV2K_valid_HR/``), ``train/`` + ``val/``
    (or ``valid/``) sub-folders, or a flat folder split deterministically (every 10th image, by sorted
    name, is held out).
LR images are made once per HR image with antialiased bicubic downscaling (like MATLAB's ``imresize``),
after cropping the HR image to a multiple of the scale, so LR pixel (i, j) covers HR pixels
(s*i .. s*i+s-1, s*j .. s*j+s-1) and patches stay aligned.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# scikit-image's bundled natural RGB photos. Held out: the three the SR papers' readers know best.
SKIMAGE_HOLDOUT = ("astronaut", "chelsea", "coffee")
SKIMAGE_TRAIN = ("rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel",
                 "camera", "grass", "gravel", "brick", "moon", "coins", "clock")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class SRPair:
    """One full image pair, float32 tensors in [0, 1], CHW: lr (3, h, w) and hr (3, h*s, w*s)."""
    name: str
    lr: torch.Tensor
    hr: torch.Tensor


def _to_rgb_float(img: np.ndarray, name: str) -> torch.Tensor:
    arr = np.asarray(img)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"image {name!r} has shape {arr.shape}; expected HxW, HxWx3 or HxWx4")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    else:
        out = np.clip(arr.astype(np.float32), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).contiguous()


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscale of a (3, H, W) or (N, 3, H, W) image by an integer factor; H, W % scale == 0."""
    x = hr.unsqueeze(0) if hr.dim() == 3 else hr
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of scale {scale}; crop it first")
    lr = F.interpolate(x, size=(h // scale, w // scale), mode="bicubic", align_corners=False, antialias=True)
    lr = lr.clamp(0.0, 1.0)
    return lr[0] if hr.dim() == 3 else lr


def make_pair(name: str, hr: torch.Tensor, scale: int) -> SRPair:
    """Crop HR to a multiple of ``scale`` and derive its LR image."""
    if scale < 2:
        raise ValueError(f"scale must be >= 2, got {scale}")
    h, w = hr.shape[-2:]
    h, w = h - h % scale, w - w % scale
    if h < scale * 4 or w < scale * 4:
        raise ValueError(f"image {name!r} ({hr.shape[-2]}x{hr.shape[-1]}) is too small for scale {scale}")
    hr = hr[:, :h, :w].contiguous()
    return SRPair(name, bicubic_downscale(hr, scale), hr)


def load_skimage_image(name: str) -> torch.Tensor:
    """An image bundled with scikit-image, as a float RGB (3, H, W) tensor."""
    try:
        from skimage import data as skdata
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValueError("the default SR data needs scikit-image: pip install 'vpunas[sr]', or pass --data DIR") from exc
    loader = getattr(skdata, name, None)
    if loader is None:
        raise ValueError(f"scikit-image has no bundled image {name!r}")
    return _to_rgb_float(loader(), name)


def load_image_file(path: Path) -> torch.Tensor:
    from PIL import Image  # matplotlib's dependency; always present with vpunas

    with Image.open(path) as im:
        return _to_rgb_float(np.asarray(im.convert("RGB")), str(path))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def split_image_folder(root: str | Path) -> tuple[list[Path], list[Path]]:
    """(train files, held-out files) of an HR image folder; see the module docstring for the layouts."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SR data folder {root} does not exist")
    layouts = [("DIV2K_train_HR", "DIV2K_valid_HR"), ("train", "val"), ("train", "valid")]
    for train_dir, val_dir in layouts:
        if (root / train_dir).is_dir() and (root / val_dir).is_dir():
            train, val = _images_in(root / train_dir), _images_in(root / val_dir)
            break
    else:
        files = _images_in(root)
        val = files[::10]
        train = [f for f in files if f not in val]
    if not train or not val:
        raise ValueError(f"{root}: need at least one training and one held-out image "
                         f"({len(train)} / {len(val)} found; suffixes {', '.join(IMAGE_SUFFIXES)})")
    return train, val


def load_pairs(names_or_paths, scale: int) -> list[SRPair]:
    """SR pairs from scikit-image image names (str without a suffix) or image file paths."""
    pairs = []
    for item in names_or_paths:
        if isinstance(item, Path):
            pairs.append(make_pair(item.name, load_image_file(item), scale))
        else:
            pairs.append(make_pair(item, load_skimage_image(item), scale))
    return pairs


def load_sr_split(scale: int, data_dir: str | Path | None = None,
                  max_train: int | None = None, max_eval: int | None = None) -> tuple[list[SRPair], list[SRPair]]:
    """(train pairs, held-out pairs): scikit-image's fixed split by default, else ``data_dir``."""
    if data_dir is None:
        train, held = list(SKIMAGE_TRAIN), list(SKIMAGE_HOLDOUT)
    else:
        train, held = split_image_folder(data_dir)
    return load_pairs(train[:max_train], scale), load_pairs(held[:max_eval], scale)


class SRPatchDataset(torch.utils.data.Dataset):
    """Random aligned (LR, HR) patch pairs with flip / rotation augmentation.

    Item ``i`` is drawn from a generator seeded with (seed, epoch, i), so an epoch is reproducible and worker-safe.
    Images are picked with probability proportional to their area, so large images are not under-sampled.
    """

    def __init__(self, pairs: list[SRPair], scale: int, lr_patch: int, length: int, seed: int = 0,
                 augment: bool = True):
        if not pairs:
            raise ValueError("SRPatchDataset needs at least one image pair")
        if lr_patch < 1:
            raise ValueError(f"lr_patch must be >= 1, got {lr_patch}")
        self.pairs = [p for p in pairs if min(p.lr.shape[-2:]) >= lr_patch]
        if not self.pairs:
            raise ValueError(f"no image has an LR side >= the patch size {lr_patch}")
        self.scale, self.lr_patch, self.length, self.seed, self.augment = scale, lr_patch, length, seed, augment
        self.epoch = 0
        areas = np.array([p.lr.shape[-2] * p.lr.shape[-1] for p in self.pairs], dtype=np.float64)
        self._weights = areas / areas.sum()

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Called by `data.loaders.epoch_loader`: every epoch draws fresh patches."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pair = self.pairs[rng.choice(len(self.pairs), p=self._weights)]
        p, s = self.lr_patch, self.scale
        h, w = pair.lr.shape[-2:]
        y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        lr = pair.lr[:, y:y + p, x:x + p]
        hr = pair.hr[:, y * s:(y + p) * s, x * s:(x + p) * s]
        if self.augment:
            if rng.random() < 0.5:
                lr, hr = lr.flip(-1), hr.flip(-1)
            if rng.random() < 0.5:
                lr, hr = lr.flip(-2), hr.flip(-2)
            if rng.random() < 0.5:
                lr, hr = lr.transpose(-1, -2), hr.transpose(-1, -2)
        return lr.contiguous(), hr.contiguous()


class SRImageDataset(torch.utils.data.Dataset):
    """Full held-out images, one (LR, HR) pair per item (use batch_size=1: sizes differ)."""

    def __init__(self, pairs: list[SRPair]):
        if not pairs:
            raise ValueError("SRImageDataset needs at least one image pair")
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pairs[index]
        return pair.lr, pair.hr
