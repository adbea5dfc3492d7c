"""Data sets for training and validating crossbar networks.

:mod:`spicecross.data.idx` reads and writes IDX files (the MNIST format), and
:mod:`spicecross.data.datasets` loads whole data sets with fixed train,
validation and test splits.
"""

from spicecross.data.datasets import (
    DATASET_NAMES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIRS,
    FASHION_MNIST_PACKAGE,
    IDX_FILE_STEMS,
    MNIST_BASE_URL,
    MNIST_SHA256,
    Dataset,
    load_dataset,
    load_digits_dataset,
    load_fashion_mnist,
    load_mnist,
    subsample,
)
from spicecross.data.idx import (
    DatasetError,
    DatasetNotFoundError,
    load_idx_pair,
    read_idx,
    write_idx,
)

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIRS",
    "FASHION_MNIST_PACKAGE",
    "IDX_FILE_STEMS",
    "MNIST_BASE_URL",
    "MNIST_SHA256",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "load_dataset",
    "load_digits_dataset",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
    "read_idx",
    "subsample",
    "write_idx",
]
