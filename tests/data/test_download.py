"""Downloads end to end against a local HTTP server (127.0.0.1) serving archives the tests build: resume
of a partial file, checksum verification, mirrors, and refusal of path-traversal archives."""

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.config import DataConfig
from cnnlab.data import download as dl
from cnnlab.data import load_raw
from cnnlab.errors import DataError
from tests.helpers import write_cifar10, write_mnist_like


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that honours 'Range: bytes=N-' (Python's own does not) and counts requests."""

    requests: list[tuple[str, str | None]] = []

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        RangeHandler.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        if start >= len(data) and start:
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()
    RangeHandler.requests = []
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_mnist_download_then_read(server, tmp_path: Path, monkeypatch) -> None:
    served, url = server
    write_mnist_like(served, gz=True)
    resources = [dl.Resource(r.filename, md5(served / r.filename), (f"{url}/{r.filename}",), "mnist")
                 for r in dl.RESOURCES["mnist"]]
    monkeypatch.setitem(dl.RESOURCES, "mnist", resources)
    assert main(["data", "download", "mnist", "--root", str(tmp_path / "data")]) == 0
    raw = load_raw(DataConfig(name="mnist", root=str(tmp_path / "data")))
    assert len(raw.train) == 200 and len(raw.test) == 50
    assert not list((tmp_path / "data" / "mnist").glob("*.part"))
    before = len(RangeHandler.requests)
    assert main(["data", "download", "mnist", "--root", str(tmp_path / "data")]) == 0
    assert len(RangeHandler.requests) == before  # verified files are not fetched again


def test_partial_file_is_resumed_with_a_range_request(server, tmp_path: Path) -> None:
    served, url = server
    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(payload[:123_456])
    dl.fetch((f"{url}/blob.bin",), dest, hashlib.md5(payload).hexdigest(), progress=False)
    assert dest.read_bytes() == payload
    assert RangeHandler.requests[-1] == ("/blob.bin", "bytes=123456-")


def test_checksum_mismatch_deletes_the_file(server, tmp_path: Path) -> None:
    served, url = server
    (served / "x.gz").write_bytes(b"not what was published")
    target = tmp_path / "data"
    target.mkdir()
    with pytest.raises(DataError, match=r"x.gz: checksum mismatch .* the corrupt download was deleted"):
        dl.fetch((f"{url}/x.gz",), target / "x.gz", "0" * 32, progress=False)
    assert list(target.iterdir()) == []


def test_mirrors_are_tried_in_order(server, tmp_path: Path) -> None:
    served, url = server
    (served / "f.txt").write_bytes(b"hello")
    dest = dl.fetch((f"{url}/missing/f.txt", f"{url}/f.txt"), tmp_path / "f.txt", hashlib.md5(b"hello").hexdigest(),
                    progress=False)
    assert dest.read_bytes() == b"hello"
    with pytest.raises(DataError, match=r"could not download g.txt:\n  .*404"):
        dl.fetch((f"{url}/g.txt",), tmp_path / "g.txt", "0" * 32, progress=False)


def test_cifar10_archive_download_and_extract(server, tmp_path: Path, monkeypatch) -> None:
    served, url = server
    write_cifar10(tmp_path / "build" / "cifar-10-batches-py", per_batch=4)
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setitem(dl.RESOURCES, "cifar10", [dl.Resource(archive.name, md5(archive), (), ".", extract=True)])
    assert main(["data", "download", "cifar10", "--root", str(tmp_path / "data"), "--mirror", url]) == 0
    raw = load_raw(DataConfig(name="cifar10", root=str(tmp_path / "data")))
    assert len(raw.train) == 20 and len(raw.test) == 4


def _zip_with(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("fine.txt", "ok")
        bundle.writestr(name, "evil")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/evil.txt", "a/../../escape.txt"])
def test_zip_slip_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip_with(name))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(DataError, match="path traversal"):
        dl.extract(archive, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


def test_tar_link_out_of_the_target_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as bundle:
        link = tarfile.TarInfo("data/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        bundle.addfile(link)
    with pytest.raises(DataError, match="pointing outside"):
        dl.extract(archive, tmp_path / "out")


def test_caltech_nested_archive(server, tmp_path: Path, monkeypatch) -> None:
    """caltech-101.zip holds 101_ObjectCategories.tar.gz, which holds the class folders."""
    from tests.helpers import write_jpeg_tree

    served, url = server
    write_jpeg_tree(tmp_path / "build" / "101_ObjectCategories", {"BACKGROUND_Google": 2, "ant": 3, "bee": 3})
    inner = tmp_path / "build" / "101_ObjectCategories.tar.gz"
    with tarfile.open(inner, "w:gz") as bundle:
        bundle.add(tmp_path / "build" / "101_ObjectCategories", arcname="101_ObjectCategories")
    outer = served / "caltech-101.zip"
    with zipfile.ZipFile(outer, "w") as bundle:
        bundle.write(inner, "caltech-101/101_ObjectCategories.tar.gz")
    resource = dl.Resource("caltech-101.zip", md5(outer), (f"{url}/caltech-101.zip",), "caltech101", extract=True,
                           nested=("caltech-101/101_ObjectCategories.tar.gz",))
    monkeypatch.setitem(dl.RESOURCES, "caltech101", [resource])
    dl.download_dataset("caltech101", tmp_path / "data", progress=False)
    raw = load_raw(DataConfig(name="caltech101", root=str(tmp_path / "data")))
    assert raw.classes == ("BACKGROUND_Google", "ant", "bee") and len(raw.train) == 8


def test_unknown_dataset_download(capsys) -> None:
    assert main(["data", "download", "digits"]) == 2
    assert "no download is known for dataset 'digits'" in capsys.readouterr().err
