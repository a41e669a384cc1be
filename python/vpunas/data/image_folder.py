"""ImageFolder trees (ImageNet layout: ROOT/<split>/<class>/<image>) for real users' data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# ImageNet statistics; grayscale images use their mean.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class ImageFolderDataset(Dataset):
    """Class-per-folder images, decoded lazily, resized to `resolution` (shorter side + center crop)."""

    def __init__(self, root: str | Path, resolution: int = 224, in_ch: int = 3, augment: bool = False):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist; expected ROOT/<class>/<image files>")
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not self.classes:
            raise ValueError(f"{root} has no class sub-folders; expected ROOT/<class>/<image files>")
        self.samples = [(f, i) for i, c in enumerate(self.classes) for f in sorted((root / c).rglob("*"))
                        if f.suffix.lower() in _EXTS]
        if not self.samples:
            raise ValueError(f"{root} holds no images with extensions {sorted(_EXTS)}")
        if in_ch not in (1, 3):
            raise ValueError(f"in_ch must be 1 or 3 for image folders, got {in_ch}")
        self.resolution, self.in_ch, self.augment = resolution, in_ch, augment
        self.num_classes = len(self.classes)
        self._salt = 0

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self._salt = int(epoch) * 1_000_003

    def _load(self, path: Path) -> np.ndarray:
        from PIL import Image  # pillow ships with matplotlib

        with Image.open(path) as im:
            im = im.convert("L" if self.in_ch == 1 else "RGB")
            w, h = im.size
            scale = self.resolution / min(w, h)
            im = im.resize((max(self.resolution, round(w * scale)), max(self.resolution, round(h * scale))))
            w, h = im.size
            left, top = (w - self.resolution) // 2, (h - self.resolution) // 2
            im = im.crop((left, top, left + self.resolution, top + self.resolution))
            arr = np.asarray(im, dtype=np.float32) / 255.0
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def __getitem__(self, idx: int):
        path, label = self.samples[idx]
        x = torch.from_numpy(self._load(path).copy())
        mean = torch.tensor(_MEAN if self.in_ch == 3 else (sum(_MEAN) / 3,)).view(-1, 1, 1)
        std = torch.tensor(_STD if self.in_ch == 3 else (sum(_STD) / 3,)).view(-1, 1, 1)
        x = (x - mean) / std
        if self.augment:
            g = torch.Generator().manual_seed(int(idx) * 7919 + self._salt)
            if torch.rand((), generator=g).item() < 0.5:
                x = x.flip(-1)
        return x, label
