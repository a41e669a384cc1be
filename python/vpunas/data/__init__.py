"""Data sets for search and retraining: Fashion-MNIST (IDX files) and ImageFolder trees.

`load_classification(...)` returns (train, test) torch Datasets of (image tensor CxHxW float, label int);
`split_train_valid` and `epoch_loader` give the deterministic, rank-sharded loaders the trainer uses.
"""
from __future__ import annotations

from .fashion_mnist import FASHION_MNIST_DIR, FashionMNIST, load_fashion_mnist
from .image_folder import ImageFolderDataset
from .loaders import epoch_loader, split_train_valid, load_classification

__all__ = [
    "FASHION_MNIST_DIR",
    "FashionMNIST",
    "ImageFolderDataset",
    "epoch_loader",
    "load_classification",
    "load_fashion_mnist",
    "split_train_valid",
]
