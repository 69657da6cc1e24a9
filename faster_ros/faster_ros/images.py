"""sensor_msgs images to numpy RGB without cv_bridge (not installable with the PyPI ROS wheels).

``check_image`` looks only at the header fields and byte count, cheap enough to run on every arrival so a bad
message is dropped and counted; ``to_rgb`` does the conversion once, when an observation is actually used.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image

# encoding -> (channels, index order that yields RGB)
RAW_ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
MIN_SIDE = 16  # pixels; anything smaller is not a camera frame a policy can use


def check_image(message: Image | CompressedImage) -> None:
    """Raise ValueError naming what is wrong with a frame, without decoding it."""
    if isinstance(message, CompressedImage):
        if not message.data:
            raise ValueError("compressed image has no data")
        return
    if message.encoding not in RAW_ENCODINGS:
        raise ValueError(f"unsupported image encoding {message.encoding!r} (supported: {sorted(RAW_ENCODINGS)})")
    if message.height < MIN_SIDE or message.width < MIN_SIDE:
        raise ValueError(f"image is {message.width}x{message.height}, smaller than {MIN_SIDE}x{MIN_SIDE}")
    channels = RAW_ENCODINGS[message.encoding][0]
    if message.step < message.width * channels:
        raise ValueError(f"image step {message.step} is shorter than width {message.width} x {channels} channels")
    if len(message.data) != message.step * message.height:
        raise ValueError(
            f"image data has {len(message.data)} bytes, expected step {message.step} x height {message.height}"
        )


def to_rgb(message: Image | CompressedImage) -> np.ndarray:
    """HxWx3 uint8 RGB; raises ValueError for frames ``check_image`` rejects or that fail to decode."""
    check_image(message)
    if isinstance(message, CompressedImage):
        try:
            with PILImage.open(io.BytesIO(bytes(message.data))) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as error:
            raise ValueError(
                f"compressed image ({message.format or 'unknown format'}) does not decode: {error}"
            ) from error
    channels, order = RAW_ENCODINGS[message.encoding]
    rows = np.frombuffer(message.data, dtype=np.uint8).reshape(message.height, message.step)
    pixels = rows[:, : message.width * channels].reshape(message.height, message.width, channels)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def from_rgb(pixels: np.ndarray, *, encoding: str = "rgb8") -> Image:
    """An Image message of an HxWx3 RGB array; the inverse of ``to_rgb`` for camera sources and tests."""
    channels, order = RAW_ENCODINGS[encoding]
    height, width, _ = pixels.shape
    if channels == 1:
        data = pixels.mean(axis=2).astype(np.uint8)
    else:
        data = np.empty((height, width, channels), dtype=np.uint8)
        data[:, :, list(order)] = pixels
        if channels == 4:
            data[:, :, 3] = 255
    return Image(height=height, width=width, encoding=encoding, step=width * channels, data=data.tobytes())
