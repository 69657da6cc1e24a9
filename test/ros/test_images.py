import io

import numpy as np
import pytest

pytest.importorskip("rclpy")
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image

from faster_core.images import RAW_ENCODINGS, check_image, to_rgb
from faster_ros.images import from_rgb

RGB = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_color_encodings_round_trip(encoding):
    message = from_rgb(RGB, encoding=encoding)
    assert message.step == 30 * RAW_ENCODINGS[encoding][0]
    np.testing.assert_array_equal(to_rgb(message), RGB)


def test_bgr_really_swaps_channels():
    message = from_rgb(RGB, encoding="rgb8")
    message.encoding = "bgr8"
    np.testing.assert_array_equal(to_rgb(message), RGB[:, :, ::-1])


def test_mono_becomes_gray_rgb():
    gray = to_rgb(from_rgb(RGB, encoding="mono8"))
    assert gray.shape == (20, 30, 3) and np.all(gray[:, :, 0] == gray[:, :, 2])


def test_row_padding_is_removed():
    padded = np.zeros((20, 100), np.uint8)
    padded[:, :90] = RGB.reshape(20, 90)
    message = Image(height=20, width=30, encoding="rgb8", step=100, data=padded.tobytes())
    np.testing.assert_array_equal(to_rgb(message), RGB)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed(fmt):
    buffer = io.BytesIO()
    PILImage.fromarray(RGB).save(buffer, format=fmt.upper())
    decoded = to_rgb(CompressedImage(format=fmt, data=buffer.getvalue()))
    assert decoded.shape == RGB.shape
    if fmt == "png":
        np.testing.assert_array_equal(decoded, RGB)


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (Image(height=20, width=30, encoding="yuv422", step=60, data=bytes(1200)), "unsupported image encoding"),
        (Image(height=20, width=30, encoding="rgb8", step=90, data=bytes(100)), "expected step 90 x height 20"),
        (Image(height=20, width=30, encoding="rgb8", step=60, data=bytes(1200)), "shorter than width 30"),
        (Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(48)), "smaller than 16x16"),
        (CompressedImage(format="jpeg", data=b""), "no data"),
    ],
)
def test_bad_frames_are_named(message, cause):
    with pytest.raises(ValueError, match=cause):
        check_image(message)


def test_undecodable_compressed_frame():
    with pytest.raises(ValueError, match="does not decode"):
        to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"))
