"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code
(0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
and the number of dimensions. One big-endian uint32 size per dimension
follows, then the elements in C order, big-endian. The distributed files are
often gzip-compressed, so :func:`read_idx` decompresses any file that starts
with the gzip magic bytes ``1f 8b``, whatever its name.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from spicecross.errors import SpicecrossError

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "IDX_DTYPES",
    "load_idx_pair",
    "read_idx",
    "write_idx",
]

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code to element dtype, as stored in the file (big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_TYPE_CODES_BY_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}
_MAX_DIMENSION_SIZE = 2**32 - 1


class DatasetError(SpicecrossError):
    """A data set file is missing, invalid or does not match what was expected.

    ``path`` is the file or folder concerned, or None when no single path is.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)

    def __reduce__(self):
        # Keep ``path`` when the error is pickled, for example by multiprocessing.
        return (_rebuild_dataset_error, (type(self), str(self), self.path))


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data set file, or a folder of them, was not found where it was searched."""


def _rebuild_dataset_error(cls, message, path):
    return cls(message, path=path)


def _describe_type_codes() -> str:
    return ", ".join(f"0x{code:02X} ({dtype.name})" for code, dtype in IDX_DTYPES.items())


def _read_file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(f"IDX file {path} not found, so check the path",
                                   path=path) from exc
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}", path=path) from exc


def _decompress_if_gzip(raw: bytes, path: Path) -> bytes:
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        # BadGzipFile (an OSError) covers a bad header or CRC, EOFError a cut-off
        # stream and zlib.error a damaged deflate block.
        raise DatasetError(
            f"gzip data in {path} is corrupt ({type(exc).__name__}: {exc}). "
            "Download or copy the file again",
            path=path,
        ) from exc


def _parse_idx(data: bytes, path: Path, compressed: bool) -> np.ndarray:
    described_path = f"{path} (after gzip decompression)" if compressed else str(path)

    if len(data) < 4:
        raise DatasetError(
            f"IDX file {described_path} is truncated: {len(data)} bytes, shorter than the "
            "4-byte magic number. Download or copy the file again",
            path=path,
        )
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{described_path} is not an IDX file: the magic number starts with bytes "
            f"0x{data[0]:02X} 0x{data[1]:02X}, expected 0x00 0x00. Check that the path "
            "points at an IDX file such as train-images-idx3-ubyte[.gz]",
            path=path,
        )

    type_code = data[2]
    if type_code not in IDX_DTYPES:
        raise DatasetError(
            f"IDX file {described_path} has unknown type code 0x{type_code:02X}, but the "
            f"supported codes are {_describe_type_codes()}. The file is corrupt or not an "
            "IDX file",
            path=path,
        )
    dtype = IDX_DTYPES[type_code]

    ndim = data[3]
    if ndim == 0:
        raise DatasetError(
            f"IDX file {described_path} declares 0 dimensions, but an IDX array needs at "
            "least one. The file is corrupt or not an IDX file",
            path=path,
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"IDX file {described_path} is truncated: its header declares {ndim} dimensions "
            f"and needs {header_size} bytes, but the file has {len(data)}. Download or copy "
            "the file again",
            path=path,
        )

    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_size = math.prod(shape) * dtype.itemsize
    actual_size = len(data) - header_size
    if actual_size < expected_size:
        raise DatasetError(
            f"IDX file {described_path} is truncated: shape {shape} of {dtype.name} needs "
            f"{expected_size} data bytes, but the file has {actual_size}. Download or copy "
            "the file again",
            path=path,
        )
    if actual_size > expected_size:
        raise DatasetError(
            f"IDX file {described_path} has {actual_size - expected_size} trailing bytes "
            f"after the {expected_size} data bytes of shape {shape}. The file is corrupt or "
            "several files were joined, so download or copy it again",
            path=path,
        )

    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_size)
    # astype copies into native byte order, so the result is writable and
    # independent of ``data``.
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into a native-endian array.

    Compression is detected from the first two bytes, not from the file name.
    The size of the data must match the header exactly.

    Raises:
        DatasetNotFoundError: the file does not exist.
        DatasetError: the file cannot be read, its gzip stream is corrupt, its
            magic number or type code is invalid, or its data is shorter or
            longer than the header declares.
    """
    path = Path(path)
    raw = _read_file_bytes(path)
    data = _decompress_if_gzip(raw, path)
    return _parse_idx(data, path, compressed=data is not raw)


def _encode_idx(array: np.ndarray) -> bytes:
    key = (array.dtype.kind, array.dtype.itemsize)
    if array.dtype.kind not in "uif" or key not in _TYPE_CODES_BY_KIND:
        raise TypeError(
            f"write_idx: array dtype {array.dtype} has no IDX type code, so convert the "
            "array to uint8, int8, int16, int32, float32 or float64 first"
        )
    if array.ndim == 0:
        raise ValueError("write_idx: array is 0-dimensional, but IDX needs at least one "
                         "dimension, so reshape it, for example with numpy.atleast_1d")
    if array.ndim > 255:
        raise ValueError(
            f"write_idx: array has {array.ndim} dimensions, but IDX stores at most 255")
    too_large = [size for size in array.shape if size > _MAX_DIMENSION_SIZE]
    if too_large:
        raise ValueError(
            f"write_idx: array shape {array.shape} has a dimension above {_MAX_DIMENSION_SIZE}, "
            "the largest size an IDX header can store"
        )

    type_code = _TYPE_CODES_BY_KIND[key]
    big_endian = np.ascontiguousarray(array, dtype=IDX_DTYPES[type_code])
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + big_endian.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The dtype must be uint8, int8, int16, int32, float32 or float64, and the
    array needs at least one dimension. The file is written to a temporary
    name in the same folder and renamed, so a reader never sees half a file.
    The gzip header carries no time stamp, so equal arrays give equal bytes.

    Raises:
        TypeError: the dtype has no IDX type code.
        ValueError: the array is 0-dimensional or a dimension is too large.
    """
    path = Path(path)
    payload = _encode_idx(np.asarray(array))
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)

    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False)
    try:
        with handle:
            handle.write(payload)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def load_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike,
                  *, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read an image file and its label file and check that they belong together.

    Returns ``(images, labels)`` as read: images of shape (n, rows, columns)
    and dtype uint8, labels of shape (n,) with integer values in
    ``0 .. n_classes - 1``.

    Raises:
        DatasetError: either file is invalid (see :func:`read_idx`), the images
            are not 3-D uint8, the labels are not 1-D integers in range, or the
            two counts differ.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)

    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"image file {images_path} contains a {images.ndim}-D {images.dtype} array of "
            f"shape {images.shape}, expected 3-D uint8 (count, rows, columns). Check that the "
            "image and label paths are not swapped",
            path=images_path,
        )
    if labels.ndim != 1 or labels.dtype.kind not in "ui":
        raise DatasetError(
            f"label file {labels_path} contains a {labels.ndim}-D {labels.dtype} array of "
            f"shape {labels.shape}, expected 1-D integers. Check that the image and label "
            "paths are not swapped",
            path=labels_path,
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"images has {len(images)} entries but labels {len(labels)}, so {images_path} "
            f"and {labels_path} do not belong together. Use the label file of the same split",
            path=labels_path,
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(
            f"label file {labels_path} has labels from {labels.min()} to {labels.max()}, "
            f"expected 0 to {n_classes - 1}. The file is corrupt or belongs to another data set",
            path=labels_path,
        )
    return images, labels
