"""Image classification data sets, split into train, validation and test.

Every loader returns a :class:`Dataset` with three fixed, stratified splits.
Choose hyperparameters, checkpoints, thresholds and device settings on the
validation split only. The test split is held out from every such choice and
is meant to be evaluated once, for the number that gets reported.

Sources:

* ``digits``: scikit-learn's copy of the UCI 8×8 handwritten digits, 1,797
  images, shipped inside the scikit-learn package.
* ``fashion-mnist``: the IDX files of Debian's ``dataset-fashion-mnist``
  package, 60,000 training and 10,000 test images of 28×28.
* ``mnist``: the four standard MNIST IDX files in a folder of your choice,
  optionally downloaded with SHA-256 verification.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import math
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from spicecross.data.idx import DatasetError, DatasetNotFoundError, load_idx_pair

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIRS",
    "FASHION_MNIST_PACKAGE",
    "IDX_FILE_STEMS",
    "MNIST_BASE_URL",
    "MNIST_SHA256",
    "load_dataset",
    "load_digits_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "subsample",
]

logger = logging.getLogger(__name__)

DATASET_NAMES = ("digits", "fashion-mnist", "mnist")

#: File names, without ``.gz``, of the four IDX files of MNIST and Fashion-MNIST.
IDX_FILE_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"

#: Folders searched for Fashion-MNIST when no ``data_dir`` is given. Debian 12
#: (bookworm) and 13 (trixie) both ship the same dataset-fashion-mnist package,
#: version 0.0~git20200523.55506a9-1, which installs the four ``.gz`` files here.
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# NOTE: this mirror is the one TensorFlow's MNIST loader uses. No test here
# contacts it, so whether it is still online is not checked.
MNIST_BASE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

#: SHA-256 of the four gzip-compressed files of the original MNIST release
#: (yann.lecun.com/exdb/mnist). The TensorFlow and PyTorch mirrors serve the
#: same bytes.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

_DOWNLOAD_CHUNK_BYTES = 1 << 16


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set with fixed train, validation and test splits.

    Inputs ``x_*`` are float32 of shape (n, n_features) with values in [0, 1],
    each row an image flattened in C order from ``image_shape``. Labels ``y_*``
    are int64 class indices in ``0 .. n_classes - 1``. The test split must not
    be used to choose anything: see the module documentation.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_features: int
    n_classes: int
    image_shape: tuple[int, ...]
    #: Provenance: file paths and SHA-256 digests, or the package and version
    #: that supplied the data, plus the split parameters.
    source: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()

    def __post_init__(self):
        if math.prod(self.image_shape) != self.n_features:
            raise ValueError(
                f"Dataset {self.name!r}: image_shape {self.image_shape} has "
                f"{math.prod(self.image_shape)} pixels but n_features is {self.n_features}"
            )
        if self.class_names and len(self.class_names) != self.n_classes:
            raise ValueError(
                f"Dataset {self.name!r}: {len(self.class_names)} class_names for "
                f"n_classes={self.n_classes}. Give one name per class or none"
            )
        for split in ("train", "val", "test"):
            self._check_split(split, getattr(self, f"x_{split}"), getattr(self, f"y_{split}"))

    def _check_split(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"Dataset {self.name!r}: x_{split} is {x.dtype} of shape {x.shape}, "
                f"expected float32 of shape (n, {self.n_features})"
            )
        if y.dtype != np.int64 or y.shape != (len(x),):
            raise ValueError(
                f"Dataset {self.name!r}: y_{split} is {y.dtype} of shape {y.shape}, "
                f"expected int64 of shape ({len(x)},) to match x_{split}"
            )
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(
                f"Dataset {self.name!r}: y_{split} has labels from {y.min()} to {y.max()}, "
                f"expected 0 to {self.n_classes - 1}"
            )


def _split_indices(labels: np.ndarray, held_out_size: int | float,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into (remaining, held-out) indices, stratified by label.

    ``held_out_size`` is a count, or a fraction of ``len(labels)`` rounded up as
    scikit-learn's ``train_test_split`` does.
    """
    indices = np.arange(len(labels))
    remaining_indices, held_out_indices = train_test_split(
        indices, test_size=held_out_size, stratify=labels, random_state=seed)
    return remaining_indices, held_out_indices


def _images_to_features(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1)
    return flat.astype(np.float32) / np.float32(255)


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")


def load_digits_dataset(seed: int = 0, val_fraction: float = 0.2,
                        test_fraction: float = 0.2) -> Dataset:
    """Load scikit-learn's 8×8 digits with stratified train/validation/test splits.

    ``test_fraction`` and ``val_fraction`` are fractions of all 1,797 images;
    with the defaults the splits hold 1,077, 360 and 360 images. Pixel values
    0..16 are divided by 16. The same ``seed`` and fractions give byte-identical
    splits under the same scikit-learn version, which ``source`` records.
    Use the test split only for the final evaluation.
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave a training split, got "
            f"{val_fraction} + {test_fraction}"
        )

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)

    # Cut the test split first, so its contents do not depend on val_fraction.
    rest, test = _split_indices(y, test_fraction, seed)
    val_share_of_rest = val_fraction / (1 - test_fraction)
    train_positions, val_positions = _split_indices(y[rest], val_share_of_rest, seed)
    train, val = rest[train_positions], rest[val_positions]

    source = {
        "loader": "sklearn.datasets.load_digits",
        "package": "scikit-learn",
        "version": sklearn.__version__,
        # Digest of the pixel and label arrays as loaded, which reveals a changed copy.
        "sha256": hashlib.sha256(digits.data.tobytes() + digits.target.tobytes()).hexdigest(),
        "split": {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction},
    }
    return Dataset(
        name="digits",
        x_train=x[train], y_train=y[train],
        x_val=x[val], y_val=y[val],
        x_test=x[test], y_test=y[test],
        n_features=x.shape[1],
        n_classes=10,
        image_shape=(8, 8),
        source=source,
        class_names=tuple(str(digit) for digit in range(10)),
    )


def _find_idx_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Return the IDX files present in ``directory`` by role, and the missing file names.

    Each file may be gzip-compressed (``NAME.gz``) or plain (``NAME``). The
    ``.gz`` file is taken when both exist.
    """
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, stem in IDX_FILE_STEMS.items():
        for candidate in (directory / f"{stem}.gz", directory / stem):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(stem)
    return found, missing


def _sha256_of_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _describe_files(paths: dict[str, Path]) -> dict[str, dict[str, str]]:
    return {
        role: {"path": str(path), "sha256": _sha256_of_file(path)}
        for role, path in paths.items()
    }


def _dataset_from_idx_files(name: str, paths: dict[str, Path], *, val_size: int, seed: int,
                            source: dict[str, Any], class_names: tuple[str, ...]) -> Dataset:
    """Read the four IDX files and carve a stratified validation split from training."""
    train_images, train_labels = load_idx_pair(paths["train_images"], paths["train_labels"])
    test_images, test_labels = load_idx_pair(paths["test_images"], paths["test_labels"])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DatasetError(
            f"training images are {train_images.shape[1:]} but test images "
            f"{test_images.shape[1:]}: {paths['train_images']} and {paths['test_images']} "
            "come from different data sets",
            path=paths["test_images"],
        )

    if not isinstance(val_size, (int, np.integer)) or not 0 < val_size < len(train_labels):
        raise ValueError(
            f"val_size must be an integer between 1 and {len(train_labels) - 1} (the training "
            f"set has {len(train_labels)} images), got {val_size!r}"
        )
    train, val = _split_indices(train_labels, val_size, seed)

    train_labels = train_labels.astype(np.int64)
    test_labels = test_labels.astype(np.int64)
    source = dict(source, files=_describe_files(paths), split={"seed": seed, "val_size": val_size})
    return Dataset(
        name=name,
        x_train=_images_to_features(train_images[train]), y_train=train_labels[train],
        x_val=_images_to_features(train_images[val]), y_val=train_labels[val],
        x_test=_images_to_features(test_images), y_test=test_labels,
        n_features=math.prod(train_images.shape[1:]),
        n_classes=10,
        image_shape=tuple(train_images.shape[1:]),
        source=source,
        class_names=class_names,
    )


def _debian_package_version(package: str) -> str | None:
    """Return the installed version of a Debian package, or None if dpkg cannot tell."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return None
    try:
        result = subprocess.run([dpkg_query, "-W", "-f=${Version}", package],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("dpkg-query failed for package %s: %s", package, exc)
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _format_missing(directory: Path, missing: list[str]) -> str:
    names = ", ".join(f"{stem}[.gz]" for stem in missing)
    return f"{directory} lacks {names}"


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, *, val_size: int = 10_000,
                       seed: int = 0) -> Dataset:
    """Load Fashion-MNIST from IDX files, with a validation split cut from training.

    Without ``data_dir`` the folders in :data:`FASHION_MNIST_DIRS` are searched,
    where Debian's ``dataset-fashion-mnist`` package puts the files. The
    validation split takes ``val_size`` training images, stratified by class
    with ``seed``. The 10,000 test images are the test split.

    Raises:
        DatasetNotFoundError: one of the four files is missing.
        DatasetError: a file is invalid (see :func:`~spicecross.data.idx.read_idx`).
    """
    directories = list(FASHION_MNIST_DIRS) if data_dir is None else [Path(data_dir)]
    problems = []
    for directory in directories:
        paths, missing = _find_idx_files(directory)
        if not missing:
            break
        problems.append(_format_missing(directory, missing))
    else:
        raise DatasetNotFoundError(
            f"Fashion-MNIST IDX files not found: {'; '.join(problems)}. Install Debian's "
            f"package as root with 'apt-get install {FASHION_MNIST_PACKAGE}' (after "
            "'apt-get update' on a fresh machine), or pass data_dir (--data-dir on the command "
            "line) naming a folder that contains the four files",
            path=directories[0],
        )

    source: dict[str, Any] = {"directory": str(directory)}
    if directory in FASHION_MNIST_DIRS:
        source["package"] = FASHION_MNIST_PACKAGE
        source["version"] = _debian_package_version(FASHION_MNIST_PACKAGE)
    return _dataset_from_idx_files("fashion-mnist", paths, val_size=val_size, seed=seed,
                                   source=source, class_names=FASHION_MNIST_CLASSES)


def _download_file(url: str, destination: Path, expected_sha256: str, timeout: float) -> None:
    """Download ``url`` to ``destination`` if its SHA-256 matches ``expected_sha256``.

    The data goes to a temporary file in the destination folder, which is
    renamed only after the checksum matches and deleted on any failure.
    """
    logger.info("downloading %s to %s", url, destination)
    descriptor, temporary_name = tempfile.mkstemp(dir=destination.parent,
                                                  prefix=f".{destination.name}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(descriptor, "wb") as output, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(_DOWNLOAD_CHUNK_BYTES):
                    digest.update(chunk)
                    output.write(chunk)
        except (OSError, http.client.HTTPException) as exc:
            # URLError, HTTPError and socket timeouts are all OSError subclasses.
            raise DatasetError(
                f"download of {url} failed: {exc}. Check base_url and the network, or copy "
                f"{destination.name} into {destination.parent} by hand",
                path=destination,
            ) from exc

        actual_sha256 = digest.hexdigest()
        if actual_sha256 != expected_sha256:
            raise DatasetError(
                f"SHA-256 of {url} is {actual_sha256}, expected {expected_sha256}, so the "
                "download was deleted. Retry, or set base_url to another mirror if this server "
                "keeps sending a different file",
                path=destination,
            )
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("downloaded %s (sha256 %s)", destination, actual_sha256)


def _download_missing(directory: Path, missing: list[str], base_url: str,
                      checksums: dict[str, str], timeout: float) -> list[str]:
    scheme = urllib.parse.urlsplit(base_url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    file_names = [f"{stem}.gz" for stem in missing]
    unknown = [file_name for file_name in file_names if file_name not in checksums]
    if unknown:
        raise ValueError(
            f"no SHA-256 checksum known for {', '.join(unknown)}. Add them to checksums, "
            "because spicecross does not keep unverified downloads"
        )

    directory.mkdir(parents=True, exist_ok=True)
    for file_name in file_names:
        url = base_url.rstrip("/") + "/" + file_name
        _download_file(url, directory / file_name, checksums[file_name].lower(), timeout)
    return file_names


def load_mnist(data_dir: str | os.PathLike, download: bool = False, *,
               base_url: str = MNIST_BASE_URL, checksums: dict[str, str] | None = None,
               val_size: int = 10_000, seed: int = 0, timeout: float = 60.0) -> Dataset:
    """Load MNIST from the four IDX files in ``data_dir``.

    Each file may be gzip-compressed (``NAME.gz``) or plain. With
    ``download=True``, missing files are fetched as ``base_url + NAME.gz``
    and kept only if their SHA-256 matches ``checksums`` (by file name,
    default :data:`MNIST_SHA256`). Files already present are not downloaded
    or checked against ``checksums``, but ``source`` records their SHA-256.
    The validation split takes ``val_size`` training images, stratified by
    class with ``seed``. ``timeout`` is in seconds, per network operation.

    Raises:
        DatasetNotFoundError: files are missing and ``download`` is False.
        DatasetError: a download failed or did not match its checksum, or a
            file is invalid (see :func:`~spicecross.data.idx.read_idx`).
        ValueError: ``base_url`` is not http(s), or a missing file has no checksum.
    """
    if data_dir is None:
        raise ValueError("load_mnist needs data_dir, the folder that contains or receives the "
                         "MNIST IDX files (--data-dir on the command line)")
    directory = Path(data_dir)
    checksums = MNIST_SHA256 if checksums is None else checksums

    paths, missing = _find_idx_files(directory)
    downloaded: list[str] = []
    if missing and not download:
        raise DatasetNotFoundError(
            f"MNIST IDX files not found: {_format_missing(directory, missing)}. Pass "
            f"download=True to fetch them from {base_url}, or copy the files into that folder",
            path=directory,
        )
    if missing:
        downloaded = _download_missing(directory, missing, base_url, checksums, timeout)
        paths, _ = _find_idx_files(directory)

    source: dict[str, Any] = {"directory": str(directory)}
    if downloaded:
        source["downloaded"] = downloaded
        source["base_url"] = base_url
    return _dataset_from_idx_files("mnist", paths, val_size=val_size, seed=seed, source=source,
                                   class_names=tuple(str(digit) for digit in range(10)))


def load_dataset(name: str = "digits", *, data_dir: str | os.PathLike | None = None,
                 seed: int = 0, download: bool = False) -> Dataset:
    """Load a data set by name: ``digits``, ``fashion-mnist`` or ``mnist``.

    ``seed`` fixes the validation split (and for digits the test split).
    ``data_dir`` is required for ``mnist``, optional for ``fashion-mnist`` and
    ignored for ``digits``, which ships with scikit-learn. ``download``
    applies to ``mnist`` only.
    """
    if name == "digits":
        return load_digits_dataset(seed=seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir, seed=seed)
    if name == "mnist":
        if data_dir is None:
            raise ValueError("the mnist data set needs data_dir (--data-dir on the command "
                             "line), the folder that contains or receives its IDX files")
        return load_mnist(data_dir, download=download, seed=seed)
    raise ValueError(f"unknown data set {name!r}: valid names are {', '.join(DATASET_NAMES)}")


def _stratified_subset(x: np.ndarray, y: np.ndarray, count: int | None, seed: int,
                       argument: str) -> tuple[np.ndarray, np.ndarray]:
    if count is None:
        return x, y
    if not isinstance(count, (int, np.integer)) or not 0 < count <= len(y):
        raise ValueError(f"{argument} must be an integer from 1 to {len(y)}, got {count!r}")
    if count == len(y):
        return x, y

    present_classes = len(np.unique(y))
    if count < present_classes:
        raise ValueError(
            f"{argument}={count} is below the {present_classes} classes in that split, but "
            "stratified sampling needs at least one sample per class"
        )
    subset_indices, _ = train_test_split(np.arange(len(y)), train_size=int(count), stratify=y,
                                         random_state=seed)
    subset_indices.sort()
    return x[subset_indices], y[subset_indices]


def subsample(dataset: Dataset, n_train: int | None = None, n_test: int | None = None,
              seed: int = 0, *, n_val: int | None = None) -> Dataset:
    """Return a copy of ``dataset`` with smaller splits, stratified by class, for quick runs.

    Each count is the number of samples to keep from that split, and None keeps
    the whole split. Samples keep their order within a split, and the same
    ``seed`` gives the same subset. ``source`` records the counts and seed.
    """
    x_train, y_train = _stratified_subset(dataset.x_train, dataset.y_train, n_train, seed,
                                          "n_train")
    x_val, y_val = _stratified_subset(dataset.x_val, dataset.y_val, n_val, seed, "n_val")
    x_test, y_test = _stratified_subset(dataset.x_test, dataset.y_test, n_test, seed, "n_test")
    source = dict(dataset.source,
                  subsample={"n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": seed})
    return replace(dataset, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                   x_test=x_test, y_test=y_test, source=source)
