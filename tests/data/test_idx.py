import gzip
from pathlib import Path

import numpy as np
import pytest

from cnnlab.config import DataConfig
from cnnlab.data import load_raw
from cnnlab.data.idx import read_idx
from cnnlab.errors import DataError
from tests.helpers import write_idx, write_mnist_like


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", array, gz=gz)
    assert np.array_equal(read_idx(path), array)


def test_truncated_idx_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated.*download it again"):
        read_idx(path)


def test_trailing_bytes_are_refused(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", np.zeros(10, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError, match="not an IDX file.*magic bytes 3c68746d"):
        read_idx(path)


def test_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", np.ones((50, 28, 28), np.uint8), gz=True)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_idx(path)


def test_mnist_reader_on_written_files(mnist_root: Path) -> None:
    raw = load_raw(DataConfig(name="mnist", root=str(mnist_root)))
    assert raw.train.images.shape == (200, 1, 28, 28)
    assert raw.test.images.shape == (50, 1, 28, 28)
    assert sorted(raw.train.labels.unique().tolist()) == list(range(10))
    assert raw.classes == tuple(str(d) for d in range(10))


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    directory = write_mnist_like(tmp_path / "mnist")
    write_idx(directory / "train-labels-idx1-ubyte", np.zeros(199, np.uint8))
    with pytest.raises(DataError, match="200 images but .* has 199 labels"):
        load_raw(DataConfig(name="mnist", root=str(tmp_path)))


def test_label_out_of_range(tmp_path: Path) -> None:
    directory = write_mnist_like(tmp_path / "mnist")
    write_idx(directory / "t10k-labels-idx1-ubyte", np.full(50, 12, np.uint8))
    with pytest.raises(DataError, match="label 12 out of range for 10 classes"):
        load_raw(DataConfig(name="mnist", root=str(tmp_path)))


def test_fashion_mnist_found_through_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist_like(tmp_path / "fashion-mnist", train=30, test=20)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    raw = load_raw(DataConfig(name="fashion-mnist"))
    assert len(raw.train) == 30 and raw.classes[0] == "T-shirt/top" and raw.source == str(tmp_path / "fashion-mnist")


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_raw(DataConfig(name="mnist", root=str(tmp_path / "nowhere")))
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "mnist") in message
    assert "How to get it" in message and "--data-root" in message


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_debian_package() -> None:
    raw = load_raw(DataConfig(name="fashion-mnist"))
    assert raw.train.images.shape == (60000, 1, 28, 28) and raw.test.images.shape == (10000, 1, 28, 28)
    assert raw.train.labels.bincount().tolist() == [6000] * 10
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as handle:
        assert handle.read(4) == b"\x00\x00\x08\x01"
