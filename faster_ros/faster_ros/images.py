"""numpy RGB to sensor_msgs/Image (the inverse of faster_core.images.to_rgb), for camera sources and tests."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from faster_core.images import RAW_ENCODINGS


def from_rgb(pixels: np.ndarray, *, encoding: str = "rgb8") -> Image:
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
