"""Tests of the data set loaders.

The Fashion-MNIST tests read the files of Debian's dataset-fashion-mnist
package and are marked ``dataset``. The MNIST tests use small IDX files that
the tests write, and the download test serves them from a local HTTP server
on 127.0.0.1, so no test reaches the network.
"""

import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from spicecross.data import (
    FASHION_MNIST_DIRS,
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    load_dataset,
    load_digits_dataset,
    load_fashion_mnist,
    load_mnist,
    subsample,
    write_idx,
)

SPLITS = ("train", "val", "test")


def split_arrays(dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    return getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")


def sorted_rows(x: np.ndarray) -> np.ndarray:
    return x[np.lexsort(x.T[::-1])]


# Digits.


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_digits_split_sizes(digits):
    assert (len(digits.y_train), len(digits.y_val), len(digits.y_test)) == (1077, 360, 360)


@pytest.mark.parametrize("split", SPLITS)
def test_digits_x_shape(digits, split):
    x, y = split_arrays(digits, split)
    assert x.shape == (len(y), 64)


@pytest.mark.parametrize("split", SPLITS)
def test_digits_x_float32(digits, split):
    x, _ = split_arrays(digits, split)
    assert x.dtype == np.float32


@pytest.mark.parametrize("split", SPLITS)
def test_digits_y_int64(digits, split):
    _, y = split_arrays(digits, split)
    assert y.dtype == np.int64


def test_digits_x_range(digits):
    x = np.concatenate([digits.x_train, digits.x_val, digits.x_test])
    assert x.min() == 0.0
    assert x.max() == 1.0


def test_digits_metadata(digits):
    assert digits.n_features == 64
    assert digits.n_classes == 10
    assert digits.image_shape == (8, 8)


def test_digits_source_version(digits):
    assert digits.source["package"] == "scikit-learn"
    assert digits.source["version"]


@pytest.mark.parametrize("split", SPLITS)
def test_digits_stratified(digits, split):
    all_labels = np.concatenate([digits.y_train, digits.y_val, digits.y_test])
    overall = np.bincount(all_labels, minlength=10) / len(all_labels)
    _, y = split_arrays(digits, split)
    expected = overall * len(y)
    counts = np.bincount(y, minlength=10)
    assert np.all(np.abs(counts - expected) <= 1), f"counts {counts}, expected {expected.round(1)}"


def test_digits_deterministic(digits):
    again = load_digits_dataset(seed=0)
    for split in SPLITS:
        pairs = zip(split_arrays(digits, split), split_arrays(again, split), strict=True)
        for first, second in pairs:
            assert first.tobytes() == second.tobytes(), f"{split} split differs between calls"


def test_digits_seed_changes_split(digits):
    other = load_digits_dataset(seed=1)
    assert digits.x_test.tobytes() != other.x_test.tobytes()


def test_digits_splits_partition(digits):
    from sklearn.datasets import load_digits

    original = (load_digits().data / 16.0).astype(np.float32)
    combined = np.concatenate([digits.x_train, digits.x_val, digits.x_test])
    np.testing.assert_array_equal(sorted_rows(combined), sorted_rows(original))


@pytest.mark.parametrize("first, second", [("train", "val"), ("train", "test"), ("val", "test")])
def test_digits_splits_disjoint(digits, first, second):
    # load_digits has no duplicate images, so a shared row means a shared sample.
    rows_first = {row.tobytes() for row in split_arrays(digits, first)[0]}
    rows_second = {row.tobytes() for row in split_arrays(digits, second)[0]}
    assert not rows_first & rows_second


def test_digits_test_ignores_val_fraction(digits):
    other = load_digits_dataset(val_fraction=0.1)
    assert digits.x_test.tobytes() == other.x_test.tobytes()


@pytest.mark.parametrize("val_fraction, test_fraction",
                         [(0, 0.2), (0.2, 1.0), (0.5, 0.5), (-0.1, 0.2)])
def test_digits_rejects_fractions(val_fraction, test_fraction):
    with pytest.raises(ValueError, match="fraction"):
        load_digits_dataset(val_fraction=val_fraction, test_fraction=test_fraction)


# Dispatch and subsets.


def test_load_dataset_default_digits():
    assert load_dataset().name == "digits"


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError, match="valid names are digits, fashion-mnist, mnist"):
        load_dataset("cifar-10")


def test_load_dataset_mnist_needs_dir():
    with pytest.raises(ValueError, match="needs data_dir"):
        load_dataset("mnist")


def test_subsample_sizes(digits):
    small = subsample(digits, n_train=100, n_test=50, n_val=30)
    assert (len(small.y_train), len(small.y_val), len(small.y_test)) == (100, 30, 50)


def test_subsample_stratified(digits):
    small = subsample(digits, n_train=100)
    assert np.all(np.bincount(small.y_train, minlength=10) == 10)


def test_subsample_keeps_unset_split(digits):
    small = subsample(digits, n_train=100)
    assert small.x_val.tobytes() == digits.x_val.tobytes()


def test_subsample_deterministic(digits):
    first = subsample(digits, n_train=100, seed=3)
    second = subsample(digits, n_train=100, seed=3)
    assert first.x_train.tobytes() == second.x_train.tobytes()


def test_subsample_records_source(digits):
    small = subsample(digits, n_train=100, seed=3)
    assert small.source["subsample"] == {"n_train": 100, "n_val": None, "n_test": None, "seed": 3}


def test_subsample_too_few(digits):
    with pytest.raises(ValueError, match="below the 10 classes"):
        subsample(digits, n_train=5)


def test_subsample_too_many(digits):
    with pytest.raises(ValueError, match="n_test must be an integer from 1 to 360"):
        subsample(digits, n_test=361)


def test_dataset_rejects_float64(digits):
    with pytest.raises(ValueError, match="x_train is float64"):
        Dataset(
            name="bad", x_train=digits.x_train.astype(np.float64), y_train=digits.y_train,
            x_val=digits.x_val, y_val=digits.y_val, x_test=digits.x_test, y_test=digits.y_test,
            n_features=64, n_classes=10, image_shape=(8, 8),
        )


# MNIST-format folders written by the tests: 3 training and 2 test images per
# class, 4×4 pixels.

MNIST_FILES = {
    "train-images-idx3-ubyte": lambda rng: rng.integers(0, 256, (30, 4, 4), dtype=np.uint8),
    "train-labels-idx1-ubyte": lambda rng: np.repeat(np.arange(10, dtype=np.uint8), 3),
    "t10k-images-idx3-ubyte": lambda rng: rng.integers(0, 256, (20, 4, 4), dtype=np.uint8),
    "t10k-labels-idx1-ubyte": lambda rng: np.repeat(np.arange(10, dtype=np.uint8), 2),
}


def write_mnist_folder(directory, suffix: str = ".gz") -> dict[str, str]:
    """Write small MNIST-format files and return their SHA-256 by file name."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    checksums = {}
    for stem, make_array in MNIST_FILES.items():
        path = directory / f"{stem}{suffix}"
        write_idx(path, make_array(rng))
        checksums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return checksums


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_local_shapes(tmp_path, suffix):
    write_mnist_folder(tmp_path, suffix)
    dataset = load_mnist(tmp_path, val_size=10)
    shapes = (dataset.x_train.shape, dataset.x_val.shape, dataset.x_test.shape)
    assert shapes == ((20, 16), (10, 16), (20, 16))


def test_mnist_local_val_stratified(tmp_path):
    write_mnist_folder(tmp_path)
    dataset = load_mnist(tmp_path, val_size=10)
    assert np.all(np.bincount(dataset.y_val, minlength=10) == 1)


def test_mnist_local_scaled(tmp_path):
    write_mnist_folder(tmp_path)
    dataset = load_mnist(tmp_path, val_size=10)
    assert dataset.x_test.max() <= 1.0


def test_mnist_records_sha256(tmp_path):
    checksums = write_mnist_folder(tmp_path)
    dataset = load_mnist(tmp_path, val_size=10)
    recorded = dataset.source["files"]["test_labels"]["sha256"]
    assert recorded == checksums["t10k-labels-idx1-ubyte.gz"]


def test_mnist_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        load_mnist(tmp_path)


def test_mnist_mismatched_counts(tmp_path):
    write_mnist_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DatasetError, match="images has 20 entries but labels 19"):
        load_mnist(tmp_path, val_size=10)


def test_mnist_rejects_val_size(tmp_path):
    write_mnist_folder(tmp_path)
    with pytest.raises(ValueError, match="val_size must be an integer between 1 and 29"):
        load_mnist(tmp_path, val_size=30)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """Serve a folder of small MNIST files on 127.0.0.1 and yield (folder, base URL, checksums)."""
    # urllib sends requests through a proxy named in the environment, so remove any.
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                     "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    served = tmp_path / "served"
    checksums = write_mnist_folder(served)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/", checksums
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_loads(tmp_path, mnist_server):
    _, base_url, checksums = mnist_server
    dataset = load_mnist(tmp_path / "mnist", download=True, base_url=base_url,
                         checksums=checksums, val_size=10, timeout=10)
    assert len(dataset.y_test) == 20


def test_download_writes_files(tmp_path, mnist_server):
    _, base_url, checksums = mnist_server
    load_mnist(tmp_path / "mnist", download=True, base_url=base_url, checksums=checksums,
               val_size=10, timeout=10)
    assert sorted(path.name for path in (tmp_path / "mnist").iterdir()) == sorted(checksums)


def test_download_records_source(tmp_path, mnist_server):
    _, base_url, checksums = mnist_server
    dataset = load_mnist(tmp_path / "mnist", download=True, base_url=base_url,
                         checksums=checksums, val_size=10, timeout=10)
    assert sorted(dataset.source["downloaded"]) == sorted(checksums)


def test_download_only_missing(tmp_path, mnist_server):
    served, base_url, checksums = mnist_server
    target = tmp_path / "mnist"
    write_mnist_folder(target)
    (target / "t10k-labels-idx1-ubyte.gz").unlink()
    dataset = load_mnist(target, download=True, base_url=base_url, checksums=checksums,
                         val_size=10, timeout=10)
    assert dataset.source["downloaded"] == ["t10k-labels-idx1-ubyte.gz"]


def test_download_checksum_mismatch(tmp_path, mnist_server):
    _, base_url, checksums = mnist_server
    wrong = dict(checksums, **{"train-images-idx3-ubyte.gz": "0" * 64})
    message = "SHA-256 of .*train-images-idx3-ubyte.gz is [0-9a-f]{64}, expected 0{64}"
    with pytest.raises(DatasetError, match=message):
        load_mnist(tmp_path / "mnist", download=True, base_url=base_url, checksums=wrong,
                   val_size=10, timeout=10)


def test_download_mismatch_leaves_nothing(tmp_path, mnist_server):
    _, base_url, checksums = mnist_server
    wrong = dict(checksums, **{"train-images-idx3-ubyte.gz": "0" * 64})
    with pytest.raises(DatasetError):
        load_mnist(tmp_path / "mnist", download=True, base_url=base_url, checksums=wrong,
                   val_size=10, timeout=10)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_download_not_found(tmp_path, mnist_server):
    served, base_url, checksums = mnist_server
    (served / "t10k-images-idx3-ubyte.gz").unlink()
    message = "download of .*t10k-images-idx3-ubyte.gz failed: HTTP Error 404"
    with pytest.raises(DatasetError, match=message):
        load_mnist(tmp_path / "mnist", download=True, base_url=base_url, checksums=checksums,
                   val_size=10, timeout=10)


def test_download_needs_checksum(tmp_path, mnist_server):
    _, base_url, checksums = mnist_server
    del checksums["train-labels-idx1-ubyte.gz"]
    message = "no SHA-256 checksum known for train-labels-idx1-ubyte.gz"
    with pytest.raises(ValueError, match=message):
        load_mnist(tmp_path / "mnist", download=True, base_url=base_url, checksums=checksums)


def test_download_rejects_file_url(tmp_path):
    with pytest.raises(ValueError, match="base_url must be an http:// or https:// URL"):
        load_mnist(tmp_path, download=True, base_url="file:///etc/")


# Fashion-MNIST from Debian's package.


def test_fashion_missing_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_fashion_from_written_files(tmp_path):
    write_mnist_folder(tmp_path, suffix="")
    dataset = load_fashion_mnist(tmp_path, val_size=10)
    assert dataset.class_names[9] == "Ankle boot"


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist()
    except DatasetNotFoundError:
        searched = ", ".join(str(directory) for directory in FASHION_MNIST_DIRS)
        pytest.skip(f"Fashion-MNIST not found in {searched}; run scripts/install-test-data.sh "
                    "as root to install Debian's dataset-fashion-mnist")


@pytest.mark.dataset
def test_fashion_found_in_known_dir(fashion):
    assert fashion.source["directory"] in {str(directory) for directory in FASHION_MNIST_DIRS}


@pytest.mark.dataset
def test_fashion_image_shape(fashion):
    assert fashion.image_shape == (28, 28)
    assert fashion.n_features == 784


@pytest.mark.dataset
def test_fashion_training_count(fashion):
    assert len(fashion.y_train) + len(fashion.y_val) == 60_000


@pytest.mark.dataset
def test_fashion_split_sizes(fashion):
    sizes = (len(fashion.y_train), len(fashion.y_val), len(fashion.y_test))
    assert sizes == (50_000, 10_000, 10_000)


@pytest.mark.dataset
def test_fashion_labels_range(fashion):
    labels = np.concatenate([fashion.y_train, fashion.y_val, fashion.y_test])
    assert set(np.unique(labels)) == set(range(10))


@pytest.mark.dataset
def test_fashion_training_class_counts(fashion):
    counts = np.bincount(np.concatenate([fashion.y_train, fashion.y_val]), minlength=10)
    assert np.all(counts == 6000), f"class counts {counts}"


@pytest.mark.dataset
def test_fashion_val_class_counts(fashion):
    assert np.all(np.bincount(fashion.y_val, minlength=10) == 1000)


@pytest.mark.dataset
def test_fashion_pixels_scaled(fashion):
    assert fashion.x_test.dtype == np.float32
    assert fashion.x_test.min() == 0.0
    assert fashion.x_test.max() == 1.0


@pytest.mark.dataset
def test_fashion_source_package(fashion):
    assert fashion.source["package"] == "dataset-fashion-mnist"
    assert fashion.source["version"]


@pytest.mark.dataset
def test_fashion_source_sha256(fashion):
    for role, description in fashion.source["files"].items():
        assert len(description["sha256"]) == 64, f"{role} has no SHA-256"
