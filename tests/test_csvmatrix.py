"""CSV matrices: the values read, and errors that name the file, line and column."""

import numpy as np
import pytest

from spicecross.csvmatrix import load_csv_matrix


@pytest.mark.parametrize("content, expected", [
    ("1,2\n3,4\n", [[1.0, 2.0], [3.0, 4.0]]),
    ("# conductances, S\n1e-4, 2e-4\n\n3e-4,4e-4 # last row\n", [[1e-4, 2e-4], [3e-4, 4e-4]]),
    ("1,2\r\n3,4\r\n", [[1.0, 2.0], [3.0, 4.0]]),
    ("0.5\n", [[0.5]]),
    ("1,2,3\n", [[1.0, 2.0, 3.0]]),
])
def test_valid_csv_matrix_loads(tmp_path, content, expected):
    path = tmp_path / "m.csv"
    path.write_bytes(content.encode())
    np.testing.assert_array_equal(load_csv_matrix(path), np.array(expected))


@pytest.mark.parametrize("content, found, fix", [
    ("1,2\n3,abc\n", "line 2, column 2 is 'abc', which is not a number", "Replace it with a number."),
    ("g1,g2\n1,2\n", "line 1, column 1 is 'g1', which is not a number", "delete the line if it is a header"),
    ("# header comment\n\n1,2\n3,,4\n", "line 4, column 2 is empty", "delete the extra comma"),
    ("1,2\n3\n", "line 2 has 1 value but line 1, the first line of numbers, has 2 values, "
                 "so line 2 has no column 2", "Give every line the same count"),
    ("# c\n1,2\n\n3,4,5\n", "line 4 has 3 values but line 2, the first line of numbers, has 2 values, "
                            "so line 4 has values beyond column 2", "Give every line the same count"),
    ("1,1_000\n", "line 1, column 2 is '1_000', which is not a number", "Replace it with a number"),
    ("", "it contains no numbers", "Write one matrix row per line"),
    ("# only a comment\n\n", "it contains no numbers", "Write one matrix row per line"),
])
def test_invalid_csv_matrix_names_line(tmp_path, content, found, fix):
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(ValueError) as caught:
        load_csv_matrix(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a valid CSV matrix because ")
    assert found in message
    assert fix in message
    assert "usecols" not in message
    assert "row" not in message.split("because")[1].split(".")[0]
