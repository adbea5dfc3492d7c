"""Tests of the IDX reader and writer on files the tests write themselves."""

import gzip
import pickle

import numpy as np
import pytest

from spicecross.data.idx import (
    DatasetError,
    DatasetNotFoundError,
    load_idx_pair,
    read_idx,
    write_idx,
)
from spicecross.errors import SpicecrossError

IDX_DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def sample_array(dtype: str) -> np.ndarray:
    """Return a 3-D array that uses the sign and range of ``dtype``."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else np.finfo(dtype)
    values = np.linspace(float(info.min) / 2, float(info.max) / 2, num=2 * 3 * 4)
    return values.astype(dtype).reshape(2, 3, 4)


def idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    header = bytes([0, 0, type_code, len(shape)])
    return header + b"".join(size.to_bytes(4, "big") for size in shape) + payload


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", IDX_DTYPES)
def test_round_trip_values(tmp_path, dtype, suffix):
    array = sample_array(dtype)
    path = tmp_path / f"array.idx{suffix}"
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", IDX_DTYPES)
def test_round_trip_dtype(tmp_path, dtype, suffix):
    path = tmp_path / f"array.idx{suffix}"
    write_idx(path, sample_array(dtype))
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype)
    assert result.dtype.isnative


def test_round_trip_one_dimension(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "labels.idx", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.idx"), labels)


def test_round_trip_empty_array(tmp_path):
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "empty.idx", empty)
    assert read_idx(tmp_path / "empty.idx").shape == (0, 28, 28)


def test_read_big_endian_layout(tmp_path):
    path = tmp_path / "handmade.idx"
    path.write_bytes(idx_bytes(0x0B, (2,), b"\x00\x01\xff\xfe"))
    np.testing.assert_array_equal(read_idx(path), np.array([1, -2], dtype=np.int16))


def test_write_header_bytes(tmp_path):
    path = tmp_path / "written.idx"
    write_idx(path, np.array([[1, 2, 3]], dtype=np.int32))
    expected = idx_bytes(0x0C, (1, 3), b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03")
    assert path.read_bytes() == expected


def test_result_is_writable(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.uint8))
    assert read_idx(tmp_path / "a.idx").flags.writeable


def test_write_gz_compresses(tmp_path):
    write_idx(tmp_path / "a.idx.gz", np.zeros(100, dtype=np.uint8))
    assert (tmp_path / "a.idx.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_write_gz_is_reproducible(tmp_path):
    array = sample_array("float32")
    write_idx(tmp_path / "first.idx.gz", array)
    write_idx(tmp_path / "second.idx.gz", array)
    assert (tmp_path / "first.idx.gz").read_bytes() == (tmp_path / "second.idx.gz").read_bytes()


def test_write_leaves_no_temporary(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.uint8))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.idx"]


def test_gzip_detected_without_suffix(tmp_path):
    write_idx(tmp_path / "a.idx.gz", np.arange(5, dtype=np.uint8))
    renamed = (tmp_path / "a.idx.gz").rename(tmp_path / "a.idx")
    np.testing.assert_array_equal(read_idx(renamed), np.arange(5, dtype=np.uint8))


def test_plain_file_named_gz(tmp_path):
    write_idx(tmp_path / "a.idx", np.arange(5, dtype=np.uint8))
    renamed = (tmp_path / "a.idx").rename(tmp_path / "a.idx.gz")
    np.testing.assert_array_equal(read_idx(renamed), np.arange(5, dtype=np.uint8))


def test_write_rejects_int64(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))


def test_write_rejects_bool(tmp_path):
    with pytest.raises(TypeError, match="bool"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=bool))


def test_write_rejects_scalar(tmp_path):
    with pytest.raises(ValueError, match="0-dimensional"):
        write_idx(tmp_path / "a.idx", np.array(7, dtype=np.uint8))


# Corrupted files: each must raise DatasetError that names the path.


def test_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not found"):
        read_idx(tmp_path / "absent.idx")


def test_truncated_data(tmp_path):
    path = tmp_path / "cut.idx"
    write_idx(path, np.zeros((4, 5), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    message = r"truncated: shape \(4, 5\) of uint8 needs 20 data bytes, but the file has 17"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "cut.idx"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (5).to_bytes(4, "big"))
    with pytest.raises(DatasetError, match="truncated: its header declares 3 dimensions"):
        read_idx(path)


def test_truncated_magic(tmp_path):
    path = tmp_path / "cut.idx"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="truncated: 2 bytes"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long.idx"
    write_idx(path, np.zeros((4, 5), dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(DatasetError, match="has 2 trailing bytes"):
        read_idx(path)


def test_trailing_bytes_in_gzip(tmp_path):
    path = tmp_path / "long.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (2,), b"\x01\x02\x03")))
    with pytest.raises(DatasetError, match=r"after gzip decompression\) has 1 trailing bytes"):
        read_idx(path)


def test_bad_magic(tmp_path):
    path = tmp_path / "text.idx"
    path.write_bytes(b"hello, not an IDX file")
    message = "not an IDX file: the magic number starts with bytes 0x68 0x65"
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "odd.idx"
    path.write_bytes(idx_bytes(0x0A, (1,), b"\x00"))
    with pytest.raises(DatasetError, match="unknown type code 0x0A"):
        read_idx(path)


def test_zero_dimensions(tmp_path):
    path = tmp_path / "scalar.idx"
    path.write_bytes(bytes([0, 0, 0x08, 0]) + b"\x07")
    with pytest.raises(DatasetError, match="declares 0 dimensions"):
        read_idx(path)


def test_corrupt_gzip_body(tmp_path):
    path = tmp_path / "bad.idx.gz"
    write_idx(path, sample_array("float64"))
    damaged = bytearray(path.read_bytes())
    damaged[20:40] = bytes(20)
    path.write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match="gzip data in .* is corrupt"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "cut.idx.gz"
    write_idx(path, sample_array("float64"))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="gzip data in .* is corrupt"):
        read_idx(path)


def test_error_carries_path(tmp_path):
    path = tmp_path / "text.idx"
    path.write_bytes(b"not idx")
    with pytest.raises(DatasetError) as caught:
        read_idx(path)
    assert caught.value.path == str(path)


def test_error_message_has_path(tmp_path):
    path = tmp_path / "text.idx"
    path.write_bytes(b"not idx")
    with pytest.raises(DatasetError, match=str(path)):
        read_idx(path)


def test_error_is_spicecross_error():
    assert issubclass(DatasetError, SpicecrossError)


def test_not_found_is_file_not_found():
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_error_pickles_path():
    error = pickle.loads(pickle.dumps(DatasetError("broken", path="/data/x.idx")))
    assert error.path == "/data/x.idx"


# Image and label pairs.


def write_pair(directory, n_images: int, n_labels: int):
    images = np.arange(n_images * 4, dtype=np.uint8).reshape(n_images, 2, 2)
    labels = (np.arange(n_labels) % 10).astype(np.uint8)
    write_idx(directory / "images.idx", images)
    write_idx(directory / "labels.idx", labels)
    return directory / "images.idx", directory / "labels.idx"


def test_pair_loads(tmp_path):
    images, labels = load_idx_pair(*write_pair(tmp_path, 12, 12))
    assert images.shape == (12, 2, 2)
    assert labels.shape == (12,)


def test_pair_count_mismatch(tmp_path):
    with pytest.raises(DatasetError, match="images has 12 entries but labels 11"):
        load_idx_pair(*write_pair(tmp_path, 12, 11))


def test_pair_swapped_paths(tmp_path):
    images_path, labels_path = write_pair(tmp_path, 12, 12)
    with pytest.raises(DatasetError, match="expected 3-D uint8"):
        load_idx_pair(labels_path, images_path)


def test_pair_float_images(tmp_path):
    write_idx(tmp_path / "images.idx", np.zeros((3, 2, 2), dtype=np.float32))
    write_idx(tmp_path / "labels.idx", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DatasetError, match="float32"):
        load_idx_pair(tmp_path / "images.idx", tmp_path / "labels.idx")


def test_pair_label_out_of_range(tmp_path):
    write_idx(tmp_path / "images.idx", np.zeros((3, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "labels.idx", np.array([0, 9, 10], dtype=np.uint8))
    with pytest.raises(DatasetError, match="labels from 0 to 10, expected 0 to 9"):
        load_idx_pair(tmp_path / "images.idx", tmp_path / "labels.idx")
