"""Fashion-MNIST read straight from its IDX files (no download: Debian's `dataset-fashion-mnist`)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist   (or pass --data DIR holding the *-ubyte.gz files)"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Per-channel statistics of the Fashion-MNIST training images (pixel / 255).
MEAN, STD = 0.2860, 0.3530
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"Fashion-MNIST file {stem}(.gz) not found in {directory}. Install it with: "
                            f"{INSTALL_HINT}")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic); is the download corrupt?")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the IDX header is truncated (needs {ndim} dimension sizes)")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {payload.size} bytes; the file is truncated")
    return payload.reshape(dims)


def load_fashion_mnist(split: str, directory: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N,28,28], labels int64 [N]) of the 'train' or 'test' split."""
    if split not in _FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; use 'train' or 'test'")
    directory = Path(directory) if directory else FASHION_MNIST_DIR
    if not directory.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST directory {directory} does not exist. Install it with: "
                                f"{INSTALL_HINT}")
    img_stem, lbl_stem = _FILES[split]
    images = read_idx(_find(directory, img_stem))
    labels = read_idx(_find(directory, lbl_stem)).astype(np.int64)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels


class FashionMNIST(Dataset):
    """In-memory Fashion-MNIST; images normalised, optionally resized / replicated to `in_ch` channels.

    `augment` applies a random 2-pixel shift and horizontal flip, keyed on (index, epoch) via `set_epoch`
    so that runs (and resumed runs) see identical augmentations.
    """

    def __init__(self, split: str = "train", directory: str | Path | None = None, resolution: int = 28,
                 in_ch: int = 1, augment: bool = False):
        images, labels = load_fashion_mnist(split, directory)
        x = torch.from_numpy(images.copy()).float().div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)
        if resolution != x.shape[-1]:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
        if in_ch != 1:
            x = x.expand(-1, in_ch, -1, -1).contiguous()
        self.images = x
        self.labels = torch.from_numpy(labels)
        self.augment = augment
        self.num_classes = len(CLASSES)
        self.classes = CLASSES

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, idx: int):
        img = self.images[idx]
        if self.augment:
            # Deterministic per-index augmentation keyed on the index and a per-epoch salt.
            g = torch.Generator().manual_seed(int(idx) * 7919 + self._salt)
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            img = torch.roll(img, shifts=(dy, dx), dims=(1, 2))
            if torch.rand((), generator=g).item() < 0.5:
                img = img.flip(-1)
        return img, int(self.labels[idx])

    _salt = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw for a new epoch (deterministic, so resume reproduces it)."""
        self._salt = int(epoch) * 1_000_003
