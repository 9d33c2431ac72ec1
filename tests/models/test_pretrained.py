"""Published weights by name (models/pretrained.py): resolved to torchvision's URL and hash, downloaded once
into torch's hub cache from a real HTTP server on 127.0.0.1, hash-checked, reused offline; a corrupt file, a
connection dropped mid-file and no network at all each end in one message, exit 2, and nothing cached.

No test contacts anything but 127.0.0.1: a process that would download is given a local URL (its torchvision
URL patched to the test server, or CNNLAB_WEIGHTS_URL pointing at a closed local port)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision

from cnnlab.errors import ConfigError, DataError
from cnnlab.models import build_model
from cnnlab.models.pretrained import TORCHVISION_TWINS, URL_VARIABLE, check_source, fetch, is_weights_name, resolve

ROOT = Path(__file__).resolve().parents[2]
TINY = ["data=digits", "data.train_limit=64", "data.val_fraction=0", "epochs=1", "batch_size=32", "model.freeze=conv"]
# a real `cnnlab` process whose torchvision ResNet-18 URL is the test server's file (argv[1]): the only patch
PATCHED = ("import sys, torchvision.models as m\n"
           "m.ResNet18_Weights.IMAGENET1K_V1.value.url = sys.argv.pop(1)\n"
           "from cnnlab.cli import run\nrun()\n")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def local_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Weights resolve to a closed local port unless a test serves them; the hub cache is the test's own."""
    monkeypatch.setenv(URL_VARIABLE, f"http://127.0.0.1:{closed_port()}/models")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


class Server:
    """http.server in a thread serving `files` (name -> bytes); `mode` 'drop' sends half of a file under
    the full Content-Length and closes the connection. `requests` counts what was asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode = "whole"
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                name = self.path.rsplit("/", 1)[-1]
                owner.requests.append(name)
                if name not in owner.files:
                    self.send_error(404)
                    return
                body = owner.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if owner.mode == "drop" else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/models"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, stem: str, body: bytes) -> str:
        """Serve `body` as torchvision names its files, `<stem>-<first 8 hex digits of SHA-256>.pth`."""
        name = f"{stem}-{hashlib.sha256(body).hexdigest()[:8]}.pth"
        self.files[name] = body
        return f"{self.base}/{name}"


@pytest.fixture
def server() -> Iterator[Server]:
    serving = Server()
    yield serving
    serving.httpd.shutdown()
    serving.httpd.server_close()


def resnet18_file() -> bytes:
    """A state dict of torchvision's own ResNet-18 (seeded), saved as torchvision publishes them."""
    torch.manual_seed(3)
    path = Path(os.environ["TORCH_HOME"]).parent / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path.read_bytes()


def cnnlab(*args: str, url: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    if url:  # the patched URL is the server's own: no folder override on top of it
        env.pop(URL_VARIABLE)
    command = [sys.executable, "-c", PATCHED, url] if url else [sys.executable, "-m", "cnnlab"]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("ours", sorted(TORCHVISION_TWINS))
def test_our_twins_have_torchvision_parameter_names_and_shapes(ours: str) -> None:
    """What lets a torchvision state dict load by name: every tensor, same name, same shape."""
    with torch.device("meta"):
        mine = build_model(ours, {}, num_classes=1000, in_channels=3, image_size=224).state_dict()
        theirs = torchvision.models.get_model(TORCHVISION_TWINS[ours]).state_dict()
    assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in theirs.items()}


def test_names_resolve_to_torchvision_url_and_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_VARIABLE)
    resnet18 = resolve("resnet18", "imagenet")
    assert resnet18.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert resnet18.hash_prefix == "f37072fd" and resnet18.name == "ResNet18_Weights.IMAGENET1K_V1"
    assert resnet18.cache_path == tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert resolve("resnet50", "imagenet").name == "ResNet50_Weights.IMAGENET1K_V2"  # DEFAULT: the best
    assert resolve("resnet50", "IMAGENET1K_V1").url.endswith("resnet50-0676ba61.pth")
    assert resolve("resnet50", "ResNet50_Weights.IMAGENET1K_V1").hash_prefix == "0676ba61"
    assert resolve("alexnet_tv", "imagenet").url.endswith("alexnet-owt-7be5be79.pth")
    assert resolve("vgg16_bn", "DEFAULT").url.endswith("vgg16_bn-6c64b313.pth")
    assert resolve("tv:squeezenet1_1", "imagenet").url.endswith("squeezenet1_1-b8a52dc0.pth")
    monkeypatch.setenv(URL_VARIABLE, "http://mirror.example/weights/")
    assert resolve("resnet18", "imagenet").url == "http://mirror.example/weights/resnet18-f37072fd.pth"
    with pytest.raises(ConfigError, match="model 'alexnet' has no published weights.*alexnet_tv is torchvision's"):
        resolve("alexnet", "imagenet")
    with pytest.raises(ConfigError, match="model 'convnet' has no published weights.*model.weights=PATH"):
        check_source("convnet", "imagenet")
    with pytest.raises(ConfigError, match=r"'IMAGENET1K_V9' is neither a file nor .*IMAGENET1K_V1, IMAGENET1K_V2"):
        resolve("resnet50", "IMAGENET1K_V9")
    with pytest.raises(ConfigError, match="model.weights 'missing.pth' does not exist"):
        check_source("resnet18", "missing.pth")
    check_source("resnet18", "IMAGENET1K_V1")  # a study checks names without any download
    monkeypatch.chdir(tmp_path)
    assert is_weights_name("imagenet")
    (tmp_path / "imagenet").write_bytes(b"")  # a file of that name is the file
    assert not is_weights_name("imagenet") and not is_weights_name("best.pth")


@pytest.mark.slow
def test_downloaded_once_with_its_hash_then_reused_offline(tmp_path: Path, server: Server, local_only: Path) -> None:
    body = resnet18_file()
    url = server.publish("resnet18", body)
    first = cnnlab("train", "--name", "first", "model=resnet18", "model.weights=imagenet", *TINY, url=url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "downloading ResNet18_Weights.IMAGENET1K_V1" in first.stderr and "data.normalize=imagenet" in first.stdout
    cached = local_only / url.rsplit("/", 1)[-1]
    assert sorted(p.name for p in local_only.iterdir()) == [cached.name] and cached.read_bytes() == body
    weights = json.loads((tmp_path / "runs" / "first" / "run.json").read_text())["weights"]
    assert weights["published"]["sha256"] == hashlib.sha256(body).hexdigest() and weights["path"] == str(cached)
    # the 8x8 digits take the small 3x3 stem on 1 channel, and 10 classes: conv1 and fc start fresh, all else loads
    assert [m.split(":")[0] for m in weights["mismatched"]] == ["conv1.weight", "fc.weight", "fc.bias"]
    assert weights["loaded"] == weights["total"] - 3
    offline = f"http://127.0.0.1:{closed_port()}/models/{cached.name}"  # the same file, nowhere to be had
    second = cnnlab("train", "--name", "second", "model=resnet18", "model.weights=imagenet", *TINY, url=offline,
                    cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "downloading" not in second.stderr and server.requests == [cached.name]
    state = torch.load(cached, weights_only=True)
    from safetensors.torch import load_file

    trained = load_file(tmp_path / "runs" / "second" / "checkpoints" / "last.safetensors")
    assert torch.equal(trained["model.layer2.0.conv1.weight"], state["layer2.0.conv1.weight"])  # frozen: as loaded


def test_corrupt_download_is_refused_and_not_kept(tmp_path: Path, server: Server, local_only: Path) -> None:
    url = server.publish("resnet18", resnet18_file())
    server.files[url.rsplit("/", 1)[-1]] = b"not the published file" * 1000
    result = cnnlab("train", "--name", "run", "model=resnet18", "model.weights=imagenet", *TINY, url=url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"downloaded from {url} does not match its published SHA-256" in error[0]
    assert "was not kept" in error[0] and "Traceback" not in result.stderr
    assert not local_only.exists() or not list(local_only.iterdir())
    assert not (tmp_path / "runs" / "run").exists()  # checked before the run directory exists


def test_connection_dropped_mid_file_leaves_no_partial_file(tmp_path: Path, server: Server, local_only: Path) -> None:
    url = server.publish("resnet18", resnet18_file())
    server.mode = "drop"
    result = cnnlab("train", "--name", "run", "model=resnet18", "model.weights=imagenet", *TINY, url=url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cut short or corrupted in transit, and was not kept" in result.stderr and "Traceback" not in result.stderr
    assert server.requests == [url.rsplit("/", 1)[-1]]
    assert not local_only.exists() or not list(local_only.iterdir())  # no .partial left either


def test_without_network_one_message_says_which_file_to_put_where(tmp_path: Path, local_only: Path) -> None:
    result = cnnlab("train", "--name", "run", "model=resnet18", "model.weights=imagenet", *TINY, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert "cannot download ResNet18_Weights.IMAGENET1K_V1" in error[0]
    assert f"put it at {local_only / 'resnet18-f37072fd.pth'}" in error[0] and "--weights FILE" in error[0]
    assert not (tmp_path / "runs" / "run").exists()


def test_a_damaged_cached_file_is_refused(local_only: Path) -> None:
    weights = resolve("resnet18", "imagenet")
    local_only.mkdir(parents=True)
    weights.cache_path.write_bytes(b"a file put there by hand, not the published one")
    with pytest.raises(DataError, match="does not match the SHA-256 its name states .*Delete it"):
        fetch(weights)
