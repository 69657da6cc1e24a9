"""Camera frames to numpy RGB, for ROS messages without cv_bridge (not installable with the PyPI ROS wheels).

Works on anything shaped like ``sensor_msgs/Image`` (encoding, height, width, step, data) or
``sensor_msgs/CompressedImage`` (format, data): rclpy messages on a robot and rosbags messages read from a bag
alike. ``check_image`` looks only at header fields and the byte count, cheap enough for every arrival;
``to_rgb`` converts once, when a frame is used.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# encoding -> (channels, index order that yields RGB)
RAW_ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
MIN_SIDE = 16  # pixels; anything smaller is not a camera frame a policy can use


def is_raw(message) -> bool:
    return hasattr(message, "encoding")


def check_image(message) -> None:
    """Raise ValueError naming what is wrong with a frame, without decoding it."""
    if not is_raw(message):
        if len(message.data) == 0:
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


def to_rgb(message) -> np.ndarray:
    """HxWx3 uint8 RGB; raises ValueError for frames ``check_image`` rejects or that fail to decode."""
    check_image(message)
    if not is_raw(message):
        try:
            with Image.open(io.BytesIO(bytes(message.data))) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as error:
            kind = message.format or "unknown format"
            raise ValueError(f"compressed image ({kind}) does not decode: {error}") from error
    channels, order = RAW_ENCODINGS[message.encoding]
    rows = np.frombuffer(message.data, dtype=np.uint8).reshape(message.height, message.step)
    pixels = rows[:, : message.width * channels].reshape(message.height, message.width, channels)
    if order == (0, 1, 2) and channels == 3:
        return pixels.copy()  # own the memory: the message buffer is reused by the middleware
    return np.ascontiguousarray(pixels[:, :, list(order)])
