"""Batched augmentation on the device, with per-sample randomness and no per-sample Python.

The random draws of a whole epoch (one set of parameters per training position) are made at the start of
the epoch from a CPU generator seeded by (seed, epoch), then moved to the device. So each sample gets its
own transform, computed for the whole batch in a few tensor ops; the training step draws nothing (what
CUDA-graph capture needs); and a resumed run regenerates exactly the same draws.

Geometry (uint8 in):
- horizontal flip, p = 1/2 (Krizhevsky et al. 2012, section 4.1);
- random crop after zero padding by `crop_padding` px, i.e. translations of up to +-padding (He et al.
  2016, section 4.2: 4 px on CIFAR); from images larger than the output (a decoded cache at 256 for
  224 inputs) a random output-sized window, as AlexNet's 224 crops of 256 images;
- with rotation or a `scale` range, one affine resampling per batch instead (`F.affine_grid` +
  `F.grid_sample`, bilinear, zeros outside): random resized crop (Szegedy et al. 2015: area fraction
  uniform in `scale`, aspect ratio log-uniform in [3/4, 4/3]), rotation uniform in +-`rotation` degrees,
  flip and translation, all folded into one 2x3 matrix per sample. Bilinear resampling does not
  antialias: a strong downscale aliases (the worker path, torchvision v2, antialiases).
Photometry (float, after geometry, before normalisation): brightness, contrast and saturation factors
uniform in [1 - j, 1 + j] (torchvision's ColorJitter order); AlexNet's "fancy PCA" lighting (Krizhevsky et
al. 2012, section 4.1): to every pixel of an image add sum_i alpha_i s_i p_i, where p_i are the eigenvectors
of the 3x3 covariance of the training set's RGB values (in [0, 1] units), lambda_i its eigenvalues and
alpha_i ~ N(0, sigma) per image, sigma = augment.pca_lighting (the paper's 0.1). The paper writes s_i =
lambda_i without saying in which units; augment.pca_lighting_scale chooses:
- `sqrt` (the default): s_i = sqrt(lambda_i), the standard deviation along p_i, so alpha_i is in units of the
  data's own spread along each axis and sigma = 0.1 means a tenth of it whatever the pixel units;
- `eigenvalue`: s_i = lambda_i literally, in [0, 1] units (the form alpha * eigval * eigvec on [0, 1] pixels
  of some reimplementations). Its size depends on the units: in 0-255 units lambda is 255^2 times larger and
  would shift pixels by hundreds of grey levels; in [0, 1] units it is the sqrt reading's shift times
  sqrt(lambda_i), always smaller (lambda_i <= 3/4 for values in [0, 1]).
Unlike the paper, the shifted image is clamped to [0, 255] (as the colour jitter is): it stays a valid image,
and only pixels within a shift of either end of the range change differently. Random erasing (Zhong et
al. 2020: p, area 2-33%, aspect log-uniform in [0.3, 3.3]) runs on the normalised batch and writes 0, the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentPlan:
    hflip: bool = False
    crop_padding: int = 0
    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    color_jitter: float = 0.0
    erasing: float = 0.0
    pca_lighting: float = 0.0
    pca_lighting_scale: str = "sqrt"  # s_i: "sqrt" (sqrt(lambda_i)) or "eigenvalue" (lambda_i), see above

    @property
    def affine(self) -> bool:
        return self.rotation > 0 or tuple(self.scale) != (1.0, 1.0)

    @property
    def active(self) -> bool:
        return (self.hflip or self.crop_padding > 0 or self.affine or self.color_jitter > 0 or self.erasing > 0
                or self.pca_lighting > 0)

    @classmethod
    def from_config(cls, config) -> AugmentPlan:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    def device_part(self) -> AugmentPlan:
        """What stays on the device when loader workers do the geometry: photometry and erasing."""
        return AugmentPlan(color_jitter=self.color_jitter, erasing=self.erasing, pca_lighting=self.pca_lighting,
                           pca_lighting_scale=self.pca_lighting_scale)


@dataclass(frozen=True)
class Draws:
    """Random parameters for every position of one epoch, on the device ([N] or [N, k] each)."""

    flip: torch.Tensor | None = None  # bool
    offset: torch.Tensor | None = None  # [N, 2] uniform in [0, 1): where the crop window sits
    area: torch.Tensor | None = None  # random-resized-crop area fraction
    log_ratio: torch.Tensor | None = None
    angle: torch.Tensor | None = None  # radians
    jitter: torch.Tensor | None = None  # [N, 3] brightness, contrast, saturation factors
    erase: torch.Tensor | None = None  # [N, 5]: apply?, area, log ratio, top, left (uniform parts)
    lighting: torch.Tensor | None = None  # [N, C] alpha_i ~ N(0, pca_lighting)

    def need(self, name: str) -> torch.Tensor:
        """The draws of `name` (epoch_draws makes them for every augmentation its plan turns on)."""
        value: torch.Tensor | None = getattr(self, name)
        if value is None:
            raise ValueError(f"an augmentation ran without its '{name}' draws (data/augment.epoch_draws makes them)")
        return value

    def slice(self, lo: int, hi: int) -> Draws:
        return Draws(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[lo:hi]
                        for f in fields(self)})


def epoch_draws(plan: AugmentPlan, count: int, seed: int, epoch: int, device: torch.device) -> Draws:
    """All random numbers of one epoch, a pure function of (plan, count, seed, epoch)."""
    # a stream apart from the shuffling permutation of the same (seed, epoch)
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch + 7_777_777_777) % (2**63))

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * (high - low) + low).to(device)

    draws = {
        "flip": (torch.rand(count, generator=generator) < 0.5).to(device) if plan.hflip else None,
        "offset": uniform(count, 2),
    }
    if tuple(plan.scale) != (1.0, 1.0):
        draws["area"] = uniform(count, low=plan.scale[0], high=plan.scale[1])
        draws["log_ratio"] = uniform(count, low=math.log(3 / 4), high=math.log(4 / 3))
    if plan.rotation > 0:
        draws["angle"] = uniform(count, low=-math.radians(plan.rotation), high=math.radians(plan.rotation))
    if plan.color_jitter > 0:
        draws["jitter"] = uniform(count, 3, low=1 - plan.color_jitter, high=1 + plan.color_jitter)
    if plan.erasing > 0:
        draws["erase"] = uniform(count, 5)
    if plan.pca_lighting > 0:
        draws["lighting"] = (torch.randn(count, 3, generator=generator) * plan.pca_lighting).to(device)
    return Draws(**draws)


# ------------------------------------------------------------------------------------------ geometry
def geometric(images: torch.Tensor, plan: AugmentPlan, draws: Draws, size: int) -> torch.Tensor:
    """uint8 [B, C, H, W] -> [B, C, size, size]: uint8 on the exact path, float on the affine path."""
    if plan.affine:
        return _affine(images, plan, draws, size)
    if draws.flip is not None:
        images = torch.where(draws.flip.view(-1, 1, 1, 1), images.flip(3), images)
    height, width = images.shape[-2:]
    padding = plan.crop_padding
    if padding == 0 and (height, width) == (size, size):
        return images
    room = torch.tensor([height + 2 * padding - size, width + 2 * padding - size], device=images.device)
    assert draws.offset is not None, "crop offsets are drawn whenever a plan crops"
    offsets = (draws.offset * (room + 1)).long().clamp_max(room)  # uniform integers in [0, room]
    return crop(images, padding, offsets, size)


def crop(images: torch.Tensor, padding: int, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad by `padding`, then cut each sample's size x size window at its own (dy, dx): two gathers."""
    batch, channels, _, _ = images.shape
    if padding:
        images = F.pad(images, (padding, padding, padding, padding))
    width = images.shape[-1]
    rows = offsets[:, 0:1] + torch.arange(size, device=images.device)  # [B, size]
    cols = offsets[:, 1:2] + torch.arange(size, device=images.device)
    images = images.gather(2, rows.view(batch, 1, size, 1).expand(batch, channels, size, width))
    return images.gather(3, cols.view(batch, 1, 1, size).expand(batch, channels, size, size))


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]


def _affine(images: torch.Tensor, plan: AugmentPlan, draws: Draws, size: int) -> torch.Tensor:
    batch = images.shape[0]
    height, width = images.shape[-2:]
    device = images.device
    assert draws.offset is not None, "crop offsets are drawn whenever a plan crops"
    if draws.area is not None and draws.log_ratio is not None:  # random resized crop: fractions of the side
        ratio = draws.log_ratio.exp()
        half_w = (draws.area * ratio).sqrt().clamp_max(1.0)
        half_h = (draws.area / ratio).sqrt().clamp_max(1.0)
    else:  # an output-sized window (plus the padding translations) of a possibly larger source
        half_w = torch.full((batch,), size / width, device=device)
        half_h = torch.full((batch,), size / height, device=device)
    pad_w, pad_h = 2 * plan.crop_padding / width, 2 * plan.crop_padding / height
    center_x = (draws.offset[:, 1] * 2 - 1) * ((1 - half_w) + pad_w)
    center_y = (draws.offset[:, 0] * 2 - 1) * ((1 - half_h) + pad_h)
    angle = draws.angle if draws.angle is not None else torch.zeros(batch, device=device)
    flip = 1.0 - 2.0 * draws.flip.float() if draws.flip is not None else torch.ones(batch, device=device)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([
        torch.stack([half_w * cos * flip, -half_h * sin, center_x], dim=1),
        torch.stack([half_w * sin * flip, half_h * cos, center_y], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, [batch, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------------------------- photometry
def color_jitter(images: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """float [B, C, H, W] in [0, 255]; jitter [B, 3] = brightness, contrast, saturation factors."""
    brightness, contrast, saturation = (jitter[:, i].view(-1, 1, 1, 1) for i in range(3))
    images = images * brightness
    luma = _luma(images)
    images = (images - luma.mean(dim=(1, 2, 3), keepdim=True)) * contrast + luma.mean(dim=(1, 2, 3), keepdim=True)
    if images.shape[1] == 3:
        luma = _luma(images)
        images = luma + (images - luma) * saturation
    return images.clamp(0, 255)


def pca_lighting(images: torch.Tensor, alphas: torch.Tensor, stds: torch.Tensor, vectors: torch.Tensor,
                 scale: str = "sqrt") -> torch.Tensor:
    """float [B, C, H, W] in [0, 255] plus, per image, 255 * sum_i alpha_i s_i p_i, clamped to [0, 255]
    (vectors [C, C], one eigenvector p_i per column; stds = sqrt(lambda_i), PCA in [0, 1] units); s_i is
    std_i for scale "sqrt", std_i^2 = lambda_i for scale "eigenvalue" (the module docstring says why)."""
    if scale not in ("sqrt", "eigenvalue"):
        raise ValueError(f"scale must be 'sqrt' or 'eigenvalue', got {scale!r}")
    channels = images.shape[1]
    magnitudes = stds if scale == "sqrt" else stds * stds
    shift = (alphas[:, :channels] * magnitudes) @ vectors.T * 255.0  # [B, C]: row b = sum_i a_bi s_i p_i
    return (images + shift.view(-1, channels, 1, 1)).clamp(0, 255)


def _luma(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] != 3:
        return images
    weights = torch.tensor(_LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def erase(images: torch.Tensor, probability: float, draws: torch.Tensor) -> torch.Tensor:
    """Random erasing on a normalised batch: one rectangle per chosen sample set to 0 (the mean)."""
    batch, _, height, width = images.shape
    apply = draws[:, 0] < probability
    area = (0.02 + draws[:, 1] * (0.33 - 0.02)) * height * width
    ratio = (math.log(0.3) + draws[:, 2] * (math.log(3.3) - math.log(0.3))).exp()
    box_h = (area * ratio).sqrt().round().clamp(1, height)
    box_w = (area / ratio).sqrt().round().clamp(1, width)
    top = (draws[:, 3] * (height - box_h + 1)).floor()
    left = (draws[:, 4] * (width - box_w + 1)).floor()
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + box_h).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + box_w).view(-1, 1, 1)) & apply.view(-1, 1, 1))
    return images.masked_fill(inside.unsqueeze(1), 0.0)
