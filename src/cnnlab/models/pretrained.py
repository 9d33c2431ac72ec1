"""`model.weights=imagenet` (or a torchvision weight name): published weights by name, fetched once.

The name resolves to torchvision's own `Weights` entry (its URL; the file name carries the first hex digits
of the file's SHA-256, as torch.hub expects). The file is downloaded with a progress bar into torch's hub
cache (`torch.hub.get_dir()/checkpoints`, i.e. $TORCH_HOME/hub/checkpoints, the same file torchvision
itself would use), checked against that hash, and from then on read from there without any network.
torch.hub.download_url_to_file writes to a temporary file and renames it only after the hash matched, so a
corrupt or cut-short download never lands in the cache. A cached file is checked again before each use: one
put there by hand (the offline route) or damaged later is refused, not loaded.

cnnlab's `alexnet_tv`, `vgg*` and `resnet18/34/50/101/152` are torchvision's architectures with the same
parameter names and shapes (tests/models/test_pretrained.py checks all of them against torchvision), so
torchvision's state dicts load without renaming; `tv:<name>` is torchvision's model itself. The paper's
`alexnet` (two towers, 96 filters) has no published weights: `alexnet_tv` is torchvision's variant.
CNNLAB_WEIGHTS_URL replaces the URL's folder (a lab mirror holding the same file names).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..io import DISK_ERRORS, storage_error

URL_VARIABLE = "CNNLAB_WEIGHTS_URL"
# cnnlab models that are torchvision's architecture, parameter for parameter
TORCHVISION_TWINS = {
    "alexnet_tv": "alexnet",
    **{f"vgg{depth}{bn}": f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")},
    **{f"resnet{depth}": f"resnet{depth}" for depth in (18, 34, 50, 101, 152)},
}
_NAME = re.compile(r"^(imagenet|(\w+_Weights\.)?(IMAGENET\w*|DEFAULT))$", re.IGNORECASE)
_HASH = re.compile(r"-([a-f0-9]{6,})\.")  # torch.hub's convention: name-<sha256 prefix>.pth
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PublishedWeights:
    """One published weights file: what it is called, where it comes from, where it is kept."""

    name: str  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    url: str
    hash_prefix: str | None  # the first hex digits of the file's SHA-256, from its name
    meta: dict[str, Any]

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def cache_path(self) -> Path:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    def describe(self) -> dict[str, Any]:
        accuracy = (self.meta.get("_metrics") or {}).get("ImageNet-1K", {}).get("acc@1")
        return {"name": self.name, "url": self.url, "file": str(self.cache_path), "imagenet_top1": accuracy}


def is_weights_name(value: str) -> bool:
    """A weights name rather than a file: no such file exists and it looks like 'imagenet', 'DEFAULT',
    'IMAGENET1K_V1' or 'ResNet18_Weights.IMAGENET1K_V1'."""
    return not Path(value).expanduser().exists() and bool(_NAME.match(value))


def _torchvision_name(model: str) -> str:
    if model.startswith("tv:"):
        return model[3:]
    if model in TORCHVISION_TWINS:
        return TORCHVISION_TWINS[model]
    hint = " (the paper's two-tower AlexNet; model=alexnet_tv is torchvision's, which has them)" \
        if model.startswith("alexnet") else ""
    if model.startswith("timm:"):
        hint = (" here: timm keeps its weights on the Hugging Face hub, which cnnlab does not download; save "
                "them with timm (create_model(..., pretrained=True)) and pass the file")
    with_weights = ", ".join(sorted(TORCHVISION_TWINS))
    raise ConfigError(f"model '{model}' has no published weights{hint}. Models with ImageNet weights by name: "
                      f"{with_weights} and tv:<torchvision name>; any model can start from a file: "
                      "model.weights=PATH (or --weights FILE)")


def resolve(model: str, value: str) -> PublishedWeights:
    """The published weights `value` names for `model` (ConfigError naming the valid names if none)."""
    from torchvision import models

    library_name = _torchvision_name(model)
    try:
        enum = models.get_model_weights(library_name)
    except (ValueError, KeyError):
        raise ConfigError(f"torchvision publishes no weights for '{library_name}' (model '{model}'); give a "
                          "file: model.weights=PATH") from None
    member = value.rsplit(".", 1)[-1].upper()
    if value.lower() == "imagenet":
        member = "DEFAULT"
    prefix = value.rsplit(".", 1)[0] if "." in value else enum.__name__
    if member not in enum.__members__ or prefix.lower() != enum.__name__.lower():
        names = ", ".join(["imagenet (= DEFAULT)", *enum.__members__])
        raise ConfigError(f"model.weights='{value}' is neither a file nor a weights name of {model} "
                          f"({enum.__name__}: {names}); give one of these names or an existing file")
    weights = enum[member]
    url = weights.url
    base = os.environ.get(URL_VARIABLE)
    if base:
        url = f"{base.rstrip('/')}/{url.rsplit('/', 1)[-1]}"
    found = _HASH.search(url.rsplit("/", 1)[-1])
    return PublishedWeights(f"{enum.__name__}.{weights.name}", url, found.group(1) if found else None,
                            dict(weights.meta))


def fetch(weights: PublishedWeights, progress: bool = True) -> tuple[Path, str]:
    """The local file of `weights` and its SHA-256: from the cache, or downloaded into it (once)."""
    path = weights.cache_path
    if not path.is_file():
        _download(weights, path, progress)
    digest = sha256(path)
    if weights.hash_prefix and not digest.startswith(weights.hash_prefix):
        raise DataError(f"'{path}' does not match the SHA-256 its name states ({weights.hash_prefix}..., the file "
                        f"has {digest[:16]}...): it is damaged or another file. Delete it; cnnlab downloads it "
                        f"again from {weights.url} (or put the right file there)")
    return path, digest


def _download(weights: PublishedWeights, path: Path, progress: bool) -> None:
    import torch.hub

    offline = (f"Without network: download {weights.url} elsewhere and put it at {path} (torch's hub cache, "
               "$TORCH_HOME/hub/checkpoints), then run again; or give a file: model.weights=PATH (--weights FILE)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if progress:
            print(f"downloading {weights.name} from {weights.url} to {path}", file=sys.stderr, flush=True)
        torch.hub.download_url_to_file(weights.url, str(path), hash_prefix=weights.hash_prefix, progress=progress)
    except RuntimeError as exc:  # torch.hub's hash check; its temporary file is already removed
        if "invalid hash" not in str(exc):
            raise
        raise DataError(f"the file downloaded from {weights.url} does not match its published SHA-256 (which "
                        f"starts {weights.hash_prefix}): it was cut short or corrupted in transit, and was not "
                        f"kept. Run again to retry. {offline}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:  # offline, refused, reset
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:  # the cache's disk, not the network
            raise storage_error(exc, path, "write") from None
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"cannot download {weights.name} from {weights.url} ({type(exc).__name__}: {reason}); "
                        f"nothing was kept. {offline}") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_source(model: str, value: str) -> None:
    """Before any run starts: `value` is an existing file, or a weights name `model` has (no download)."""
    if Path(value).expanduser().exists():
        return
    if not is_weights_name(value):
        raise ConfigError(f"model.weights '{value}' does not exist (relative paths are relative to the directory "
                          f"you run cnnlab in, here {Path.cwd()}); put the file there or change the path")
    resolve(model, value)
