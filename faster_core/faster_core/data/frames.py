"""Camera frames stored as compressed images, decoded only when a step is read.

An episode file keeps each camera's encoded images back to back in one byte tensor with an offsets tensor
beside it, so reading step ``t`` touches only that image's bytes (safetensors slices are memory-mapped).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
from PIL import Image
from safetensors import SafetensorError, safe_open

IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG"}


class FrameError(ValueError):
    """A frame that cannot be encoded or decoded; the message names the file, camera and step."""


def encode_image(image: np.ndarray, image_format: str, jpeg_quality: int = 95) -> bytes:
    """An RGB uint8 [H, W, 3] array as PNG or JPEG bytes."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FrameError(f"frames must be uint8 RGB arrays shaped [H, W, 3], got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    options = {"quality": jpeg_quality} if image_format == "jpeg" else {"compress_level": 1}
    Image.fromarray(image).save(buffer, format=IMAGE_FORMATS[image_format], **options)
    return buffer.getvalue()


def decode_image(encoded: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(encoded)) as image:
        return np.asarray(image.convert("RGB"))


def frame_keys(camera: str) -> tuple[str, str]:
    """Tensor names of a camera's encoded bytes and of its [T + 1] byte offsets."""
    return f"frames.{camera}.bytes", f"frames.{camera}.offsets"


@dataclass(frozen=True)
class LazyFrames(Sequence[np.ndarray]):
    """One camera's frames of one episode; each item is decoded from the file when indexed."""

    path: Path
    camera: str
    length: int
    shape: tuple[int, int, int]

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, t: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, t: slice) -> list[np.ndarray]: ...
    def __getitem__(self, t: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(self.length))]
        if not -self.length <= t < self.length:
            raise IndexError(f"step {t} out of range for {self.length} frames of camera {self.camera!r}")
        t %= self.length
        where = f"{self.path}: camera {self.camera!r} step {t}"
        try:
            image = decode_image(self.encoded(t))
        except (OSError, ValueError) as error:
            raise FrameError(f"{where}: cannot decode image: {error}") from error
        if image.shape != self.shape:
            raise FrameError(f"{where}: image is {image.shape}, the dataset declares {self.shape}")
        return image

    def encoded(self, t: int) -> bytes:
        """The stored image bytes of step ``t`` (no decoding)."""
        data_key, offsets_key = frame_keys(self.camera)
        try:
            with safe_open(str(self.path), framework="np") as file:
                start, stop = (int(v) for v in file.get_slice(offsets_key)[t : t + 2])
                return file.get_slice(data_key)[start:stop].tobytes()
        except (SafetensorError, OSError) as error:
            raise FrameError(f"{self.path}: camera {self.camera!r} step {t}: cannot read frame: {error}") from error
