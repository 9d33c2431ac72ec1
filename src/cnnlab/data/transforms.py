"""torchvision.transforms.v2 pipelines for folder datasets, run in loader workers on uint8 tensors
[C, H, W] (torch's antialiased resampling measured 2x faster than Pillow's on these images).

Training: random resized crop (when `augment.scale` is a range; Szegedy et al. 2015) or resize of the
shorter side to the input size plus a random crop (with `crop_padding`), then flip and rotation. Colour
jitter and random erasing are not here: they run batched on the device for every loader (data/augment.py).
Evaluation: resize the shorter side to size / 0.875 and take the centre crop (256 -> 224, the usual
ImageNet protocol).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .augment import AugmentPlan

if TYPE_CHECKING:
    from torchvision.transforms import v2

EVAL_CROP_RATIO = 0.875


def eval_resize(size: int) -> int:
    """The shorter side an image is resized to before the centre crop of `size`."""
    return int(round(size / EVAL_CROP_RATIO))


# torchvision is imported where a folder pipeline is built, not at module load: importing it loads
# torch._dynamo (about 1 s of every `cnnlab` start), and in-memory datasets never need it
def train_transform(plan: AugmentPlan | None, size: int) -> v2.Transform:
    from torchvision.transforms import v2

    plan = plan or AugmentPlan()
    if tuple(plan.scale) != (1.0, 1.0):
        steps: list[v2.Transform] = [v2.RandomResizedCrop(size, scale=tuple(plan.scale), antialias=True)]
    else:
        steps = [v2.Resize(size, antialias=True), v2.RandomCrop(size, padding=plan.crop_padding or None,
                                                                pad_if_needed=True)]
    if plan.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if plan.rotation > 0:
        steps.append(v2.RandomRotation(plan.rotation))
    return v2.Compose(steps)


def eval_transform(size: int, resize: int | None = None) -> v2.Transform:
    """Shorter side to `resize` (default size / 0.875), then the centre size x size crop."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(resize or eval_resize(size), antialias=True), v2.CenterCrop(size)])
