"""Training-time image augmentation: what moves, what stays, and that training applies it."""

from __future__ import annotations

import pytest
import torch

from faster_core.policy.augmentation import ImageAugmentation
from faster_core.policy.training import train_policy

from policy_helpers import make_policy, one_thread, samples  # noqa: F401 -- one_thread is a fixture

MEAN = torch.full((3, 1, 1), 0.5)
STD = torch.full((3, 1, 1), 0.5)


def _scene(batch: int = 3, cameras: int = 2, side: int = 32) -> torch.Tensor:
    """A bright square off-centre on a dark background, normalised like the processor does."""
    images = torch.zeros(batch, cameras, 3, side, side)
    images[..., 4:12, 20:28] = 1.0
    return (images - MEAN) / STD


def _augment(augmentation: ImageAugmentation, pixels: torch.Tensor, cameras=("front", "left_wrist"), seed=0):
    return augmentation(pixels, mean=MEAN, std=STD, camera_names=cameras, generator=torch.Generator().manual_seed(seed))


def test_identity_settings_change_nothing():
    pixels = _scene()
    same = _augment(ImageAugmentation(crop_scale=1.0, max_rotation_deg=0, brightness=0, contrast=0), pixels)
    torch.testing.assert_close(same, pixels, atol=1e-5, rtol=0)


def test_crops_move_scene_cameras_only_and_are_reproducible():
    pixels = _scene()
    geometric = ImageAugmentation(crop_scale=0.8, max_rotation_deg=5, brightness=0, contrast=0)
    out = _augment(geometric, pixels)
    assert out.shape == pixels.shape and out.dtype == pixels.dtype
    torch.testing.assert_close(out[:, 1], pixels[:, 1], atol=1e-5, rtol=0)  # the wrist camera is not moved
    assert (out[:, 0] - pixels[:, 0]).abs().amax() > 0.5  # the scene camera's square moved
    assert not torch.equal(out[0, 0], out[1, 0])  # each sample draws its own crop
    torch.testing.assert_close(_augment(geometric, pixels), out)  # same generator seed, same images
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6  # still valid normalised pixels


def test_colour_jitter_reaches_every_camera():
    pixels = _scene()
    colour = ImageAugmentation(crop_scale=1.0, max_rotation_deg=0, brightness=0.3, contrast=0.4)
    out = _augment(colour, pixels)
    assert (out[:, 1] - pixels[:, 1]).abs().amax() > 1e-3


def test_bad_settings_and_camera_lists_are_refused():
    with pytest.raises(ValueError, match="crop_scale"):
        ImageAugmentation(crop_scale=0)
    with pytest.raises(ValueError, match="brightness"):
        ImageAugmentation(brightness=1.5)
    with pytest.raises(ValueError, match="camera names"):
        _augment(ImageAugmentation(), _scene(cameras=2), cameras=("front",))


@pytest.mark.usefixtures("one_thread")
def test_training_sees_augmented_images(monkeypatch):
    seen = []
    augmentation = ImageAugmentation()
    original = ImageAugmentation.__call__

    def spy(self, pixels, **kwargs):
        out = original(self, pixels, **kwargs)
        seen.append((pixels.clone(), out))
        return out

    monkeypatch.setattr(ImageAugmentation, "__call__", spy)
    policy = make_policy()
    train_policy(policy, samples(2), steps=2, batch_size=2, learning_rate=1e-3, augmentation=augmentation,
                 progress=False)  # fmt: skip
    assert len(seen) == 2 and all(not torch.equal(before, after) for before, after in seen)
