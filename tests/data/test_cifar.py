import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from cnnlab.config import DataConfig
from cnnlab.data import load_raw
from cnnlab.data.cifar import load_pickle
from cnnlab.errors import DataError
from tests.helpers import write_cifar10


def test_cifar10_reader(tmp_path: Path) -> None:
    directory = write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=12)
    raw = load_raw(DataConfig(name="cifar10", root=str(tmp_path)))
    assert raw.train.images.shape == (60, 3, 32, 32) and raw.test.images.shape == (12, 3, 32, 32)
    assert raw.classes[:3] == ("airplane", "automobile", "bird")
    # the row layout is 1024 red, 1024 green, 1024 blue values, each row-major
    with open(directory / "data_batch_1", "rb") as handle:
        first = pickle.load(handle, encoding="bytes")[b"data"][0]
    assert np.array_equal(raw.train.images[0, 0].numpy().ravel(), first[:1024])
    assert np.array_equal(raw.train.images[0, 2, 31].numpy(), first[3072 - 32 :])


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    directory = write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=2)
    with open(directory / "data_batch_3", "wb") as handle:
        pickle.dump({b"data": _Exploit()}, handle, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_3: .*refused to load global '(posix|os)\.system'"):
        load_raw(DataConfig(name="cifar10", root=str(tmp_path)))


def test_truncated_batch(tmp_path: Path) -> None:
    directory = write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=4)
    path = directory / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="test_batch: truncated or corrupt"):
        load_pickle(path)


def test_wrong_array_shape(tmp_path: Path) -> None:
    directory = write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=4)
    with open(directory / "data_batch_2", "wb") as handle:
        pickle.dump({b"data": np.zeros((4, 1000), np.uint8), b"labels": [0] * 4}, handle, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_2: 'data' must be a uint8 array \[N, 3072\]"):
        load_raw(DataConfig(name="cifar10", root=str(tmp_path)))


def test_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    from tests.helpers import write_cifar100

    write_cifar100(tmp_path / "cifar-100-python")
    fine = load_raw(DataConfig(name="cifar100", root=str(tmp_path)))
    coarse = load_raw(DataConfig(name="cifar100", root=str(tmp_path), coarse_labels=True))
    assert len(fine.classes) == 100 and len(coarse.classes) == 20 and coarse.classes[3] == "coarse_3"
    assert len(fine.train) == 40 and len(fine.test) == 20
    assert (fine.train.labels // 5).tolist() == coarse.train.labels.tolist()
