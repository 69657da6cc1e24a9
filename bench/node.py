"""The policy node's own overhead, excluding model time, with three 30 Hz cameras: `python bench/node.py`.

A publisher process sends three 640x480 rgb8 cameras at 30 Hz and joint states at 100 Hz to a policy node
(bimanual, 50 Hz control). The policy takes a fixed model time (sleeping, so it uses no CPU) and returns the
observed state plus a ramp, so every millisecond measured is the node's: taking the observation (locking, staleness
checks, image conversion), building and publishing the ActionChunk, and each control tick (schedule, limits,
JointTrajectory). Target: p99 < 5 ms per component and no missed control ticks. Run with `source env.sh`.

The rig publishes pre-serialized frames, as a C++ camera driver would (Python serialization of 900 kB frames is the
rig's cost, not the node's), under the shipped Fast DDS profile (faster_bringup/config/fastdds_large_frames.xml):
without it, frames fall back to fragmented delivery and a third to two thirds of them are lost on the way.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from faster_core.embodiment import Embodiment
from faster_core.policy.modeling import PolicyOutput, Timing
from faster_ros.images import from_rgb
from faster_ros.policy_node import PolicyNode
from faster_ros.qos import LATCHED

CONFIG_DIR = Path(__file__).resolve().parents[1] / "faster_bringup" / "config"
CONFIG = CONFIG_DIR / "bimanual.yaml"
DDS_PROFILE = CONFIG_DIR / "fastdds_large_frames.xml"


class SleepingPolicy:
    def __init__(self, spec: Embodiment, model_seconds: float):
        self.embodiment, self.model_seconds = spec, model_seconds
        self.tokenizer = SimpleNamespace(kind="fastervq")

    def predict(self, images, state, instruction, *, greedy=None, generator=None):
        time.sleep(self.model_seconds)
        ramp = 1e-3 * np.arange(1, self.embodiment.chunk_length + 1)[:, None]
        ms = self.model_seconds * 1e3
        return PolicyOutput(
            actions=state[None] + ramp,
            codes=np.zeros((3, 2, self.embodiment.dof), int),
            timing=Timing(preprocess_ms=0.0, prefix_ms=ms, decode_ms=0.0, detokenize_ms=0.0, total_ms=ms),
            forward_passes=0,
        )


class TimedPolicyNode(PolicyNode):
    """Records how long the node's own steps take; behaviour is unchanged."""

    def __init__(self, **kwargs):
        self.samples = {"observation": [], "chunk message": [], "control tick": []}
        self.frames_received: dict[str, int] = {}
        super().__init__(**kwargs)

    def _image_callback(self, camera):
        on_image = super()._image_callback(camera)
        self.frames_received[camera] = 0

        def counted(message):
            self.frames_received[camera] += 1
            on_image(message)

        return counted

    def _timed(self, name, function, *args):
        start = time.perf_counter()
        result = function(*args)
        self.samples[name].append((time.perf_counter() - start) * 1e3)
        return result

    def _snapshot(self):
        return self._timed("observation", super()._snapshot)

    def _chunk_message(self, *args):
        return self._timed("chunk message", super()._chunk_message, *args)

    def _tick(self):
        return self._timed("control tick", super()._tick)


def publish_inputs(config: str, width: int, height: int, stop) -> None:
    """The robot side, in its own process so that its serialisation does not share the node's interpreter."""
    spec = Embodiment.from_yaml(config)
    with rclpy.init():
        rig = rclpy.create_node("bench_rig")
        cameras = [rig.create_publisher(Image, c.topic, 10) for c in spec.cameras]
        joints = rig.create_publisher(JointState, spec.topics.joint_states, 10)
        rig.create_publisher(String, spec.topics.instruction, LATCHED).publish(String(data="fold the towel"))
        pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
        frame = serialize_message(from_rgb(pixels))
        state = JointState(
            name=list(spec.joint_names),
            position=np.clip(0.0, spec.limits.position_lower, spec.limits.position_upper).tolist(),
        )
        start, ticks = time.monotonic(), 0
        while not stop.is_set():
            if ticks % 10 in (0, 3, 6):  # 30 Hz of a 100 Hz loop
                for publisher in cameras:
                    publisher.publish(frame)
            joints.publish(state)
            ticks += 1
            time.sleep(max(0.0, start + ticks / 100 - time.monotonic()))
        rig.destroy_node()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement time after warm-up")
    parser.add_argument("--model-ms", type=float, default=60.0, help="simulated model time per chunk")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(DDS_PROFILE))  # before any participant exists
    if os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] != "LOCALHOST":
        sys.exit("refusing to run with DDS discovery beyond localhost")

    spec = Embodiment.from_yaml(CONFIG)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    rig = spawn.Process(target=publish_inputs, args=(str(CONFIG), args.width, args.height, stop), daemon=True)
    with rclpy.init(args=["--ros-args", "--params-file", str(CONFIG)]):
        node = TimedPolicyNode(policy=SleepingPolicy(spec, args.model_ms / 1e3))
        listener = rclpy.create_node("bench_listener")
        received: list[float] = []
        listener.create_subscription(
            JointTrajectory, spec.topics.trajectory, lambda _: received.append(time.monotonic()), 100
        )
        executor = SingleThreadedExecutor()  # as policy_node.main
        executor.add_node(node)
        executor.add_node(listener)
        threading.Thread(target=executor.spin, daemon=True).start()
        rig.start()
        time.sleep(5.0)  # warm-up: the rig's start, discovery, first chunks
        for samples in node.samples.values():
            samples.clear()
        received.clear()
        counters = ("missed_ticks", "stale_ticks", "invalid_ticks", "dropped_messages")
        before = {name: getattr(node._status, name) for name in counters}
        frames_before = dict(node.frames_received)
        time.sleep(args.seconds)
        after = {name: getattr(node._status, name) - before[name] for name in counters}
        frame_rates = {c: (n - frames_before[c]) / args.seconds for c, n in node.frames_received.items()}
        rate = len(received) / args.seconds
        stop.set()
        rig.join(timeout=10)

        print(
            f"policy node overhead: bimanual @ {spec.control_rate_hz:g} Hz, 3 cameras {args.width}x{args.height} "
            f"rgb8 @ 30 Hz and joint states @ 100 Hz from another process, model {args.model_ms:g} ms (excluded)"
        )
        print(f"DDS profile: {os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] or '(Fast DDS defaults)'}")
        print("frames received/s: " + ", ".join(f"{c} {r:.1f}" for c, r in frame_rates.items()))
        print(f"{'component':<16}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for name, samples in node.samples.items():
            values = np.array(samples)
            p50, p99 = np.percentile(values, [50, 99])
            print(f"{name:<16}{len(values):>8}{p50:>10.3f}{p99:>10.3f}{values.max():>10.3f}")
        print(
            f"trajectories received {rate:.1f}/s (control rate {spec.control_rate_hz:g}), "
            + ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in after.items())
        )
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
    return 0


if __name__ == "__main__":
    sys.exit(main())
