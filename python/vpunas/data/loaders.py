"""Deterministic, rank-sharded loaders: the same seed and epoch give the same batches (resume relies on it)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset


def load_classification(data: str | Path | None, resolution: int, in_ch: int, augment: bool = True):
    """Return (train, test, num_classes).

    `data` None or a directory holding Fashion-MNIST IDX files -> Fashion-MNIST; a directory with
    `train/` and `val/` (or `test/`) class folders -> ImageFolder.
    """
    from .fashion_mnist import FashionMNIST
    from .image_folder import ImageFolderDataset

    root = Path(data) if data else None
    if root is not None and (root / "train").is_dir():
        test_dir = root / "val" if (root / "val").is_dir() else root / "test"
        if not test_dir.is_dir():
            raise FileNotFoundError(f"{root} has train/ but neither val/ nor test/; an ImageFolder tree needs both")
        train = ImageFolderDataset(root / "train", resolution, in_ch, augment=augment)
        test = ImageFolderDataset(test_dir, resolution, in_ch, augment=False)
        if test.classes != train.classes:
            raise ValueError(f"class folders differ between {root / 'train'} and {test_dir}")
        return train, test, train.num_classes
    train = FashionMNIST("train", root, resolution, in_ch, augment=augment)
    test = FashionMNIST("test", root, resolution, in_ch, augment=False)
    return train, test, train.num_classes


def split_train_valid(dataset: Dataset, valid_size: int, seed: int = 0, train_size: int | None = None):
    """Split a training set into disjoint (train, valid) subsets with a seeded permutation.

    `train_size` caps the train part (small CPU budgets). ProxylessNAS updates weights on train and
    architecture parameters on valid.
    """
    n = len(dataset)
    if valid_size <= 0 or valid_size >= n:
        raise ValueError(f"valid_size must be in [1, {n - 1}] for a data set of {n} samples, got {valid_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    valid_idx = perm[:valid_size]
    train_idx = perm[valid_size:]
    if train_size is not None:
        train_idx = train_idx[:train_size]
    return Subset(dataset, train_idx), Subset(dataset, valid_idx)


def subset(dataset: Dataset, size: int | None, seed: int = 0) -> Dataset:
    """A seeded random subset of `size` samples (all of them when size is None or too large)."""
    if size is None or size >= len(dataset):
        return dataset
    perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:size]
    return Subset(dataset, perm.tolist())


def _set_epoch(dataset: Dataset, epoch: int) -> None:
    base = dataset
    while isinstance(base, Subset):
        base = base.dataset
    if hasattr(base, "set_epoch"):
        base.set_epoch(epoch)


def epoch_loader(dataset: Dataset, batch_size: int, epoch: int, seed: int, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1, drop_last: bool = True) -> DataLoader:
    """A loader for one epoch: permutation from (seed, epoch), rank r takes every world_size-th sample."""
    _set_epoch(dataset, epoch)
    n = len(dataset)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    else:
        order = list(range(n))
    per_rank = n // world_size  # equal shard sizes keep collective calls in step
    shard = order[rank::world_size][:per_rank]
    if drop_last and len(shard) < batch_size:
        raise ValueError(f"each of {world_size} rank(s) gets {len(shard)} samples, fewer than one batch of "
                         f"{batch_size}; use a smaller --batch-size or more data")
    return DataLoader(Subset(dataset, shard), batch_size=batch_size, shuffle=False, drop_last=drop_last,
                      num_workers=0)
