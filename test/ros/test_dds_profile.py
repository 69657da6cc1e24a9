"""The shipped Fast DDS profile parses and takes effect: a publishing participant gets the camera-sized segment.

Fast DDS ignores a profile it cannot parse (it logs and falls back to a 512 KiB segment), so the check is on what the
participant actually allocates in /dev/shm, in a fresh process that starts with the profile in its environment.
"""

from __future__ import annotations

import subprocess
import sys
from xml.etree import ElementTree

from repo_paths import CONFIG_DIR

PROFILE = CONFIG_DIR / "fastdds_large_frames.xml"

PUBLISH_ONE_FRAME = """
import os, time
import numpy as np, rclpy
from sensor_msgs.msg import Image
before = set(os.listdir("/dev/shm"))
with rclpy.init():
    node = rclpy.create_node("profile_probe")
    node.create_publisher(Image, "/profile_probe/image", 10).publish(
        Image(height=480, width=640, encoding="rgb8", step=1920, data=bytes(640 * 480 * 3))
    )
    time.sleep(0.2)
    created = [name for name in set(os.listdir("/dev/shm")) - before if name.startswith("fastdds_")]
    print(max(os.path.getsize(os.path.join("/dev/shm", name)) for name in created))
    node.destroy_node()
"""


def _largest_segment(env: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PUBLISH_ONE_FRAME], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])


def test_profile_declares_a_segment_larger_than_a_frame():
    segment = ElementTree.parse(PROFILE).getroot().find(".//{http://www.eprosima.com}segment_size")
    assert int(segment.text) >= 10 * 640 * 480 * 3


def test_publishing_participant_allocates_the_profile_segment(ros_env):
    with_profile = _largest_segment({**ros_env, "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)})
    without = _largest_segment({**ros_env, "FASTDDS_DEFAULT_PROFILES_FILE": ""})
    assert with_profile >= 32 * 2**20 > without
