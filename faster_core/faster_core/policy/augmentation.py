"""Training-time image augmentation, as openpi trains its pi0 models and the paper's runs "with image augmentation":
a random crop of ~95% of the side resized back, a small rotation and brightness / contrast jitter. Wrist cameras get
only the colour jitter (their view is tied to the gripper; openpi does the same).

With few demonstrations a from-scratch vision tower memorises each episode's frames instead of learning where the
objects are; a few pixels of shift per sample makes the exact pixel layout useless as a key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor


@dataclass(frozen=True, kw_only=True)
class ImageAugmentation:
    crop_scale: float = 0.95  # side of the random crop relative to the image (openpi: 0.95)
    max_rotation_deg: float = 5.0  # uniform in [-max, max] (openpi: 5)
    brightness: float = 0.3  # multiplier uniform in [1 - b, 1 + b] (openpi: 0.3)
    contrast: float = 0.4  # blend with the image mean, factor uniform in [1 - c, 1 + c] (openpi: 0.4)

    def __post_init__(self):
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"crop_scale must be in (0, 1], got {self.crop_scale}")
        if self.max_rotation_deg < 0 or not 0 <= self.brightness < 1 or not 0 <= self.contrast < 1:
            raise ValueError("max_rotation_deg must be >= 0, brightness and contrast in [0, 1)")

    def __call__(
        self,
        pixels: Tensor,  # [B, cameras, 3, S, S], normalised with (mean, std)
        *,
        mean: Tensor,  # [3, 1, 1]
        std: Tensor,  # [3, 1, 1]
        camera_names: Sequence[str],
        generator: torch.Generator | None = None,
    ) -> Tensor:
        batch, cameras = pixels.shape[:2]
        if len(camera_names) != cameras:
            raise ValueError(f"{len(camera_names)} camera names for {cameras} cameras")
        device = pixels.device
        images = (pixels.flatten(0, 1).float() * std.to(device) + mean.to(device)).clamp(0, 1)  # [N, 3, S, S]
        count = images.shape[0]

        def uniform(low: float, high: float, shape: tuple[int, ...] = (count,)) -> Tensor:
            return (torch.rand(shape, generator=generator) * (high - low) + low).to(device)

        geometric = torch.tensor([("wrist" not in name) for name in camera_names] * batch, device=device)
        angle = uniform(-1.0, 1.0) * math.radians(self.max_rotation_deg) * geometric
        scale = torch.where(geometric, torch.full_like(angle, self.crop_scale), torch.ones_like(angle))
        # the crop's centre may move so that the crop stays inside the image: offset in [-(1 - s), 1 - s]
        shift = uniform(-1.0, 1.0, (count, 2)) * (1 - scale)[:, None]
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

        images = images * uniform(1 - self.brightness, 1 + self.brightness)[:, None, None, None]
        average = images.mean(dim=(1, 2, 3), keepdim=True)
        factor = uniform(1 - self.contrast, 1 + self.contrast)[:, None, None, None]
        images = ((images - average) * factor + average).clamp(0, 1)
        normalised = (images - mean.to(device)) / std.to(device)
        return normalised.reshape(pixels.shape).to(pixels.dtype)
