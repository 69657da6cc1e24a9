"""A policy node in this process over real DDS, fed by synthetic camera, joint and instruction publishers.

``RecordingPolicy`` stands in for FASTerVLA where a test is about the node's ROS behaviour: its output is a known
function of its inputs (observed joint state plus a ramp), so a test can check what reached the trajectory.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from faster_core.embodiment import Embodiment
from faster_core.policy.modeling import PolicyOutput, Timing
from faster_msgs.msg import ActionChunk, PolicyStatus
from faster_ros.images import from_rgb
from faster_ros.policy_node import PolicyNode
from faster_ros.qos import LATCHED


class RecordingPolicy:
    def __init__(self, spec: Embodiment, *, step: float = 0.001, error: Exception | None = None, delay: float = 0.0):
        self.spec, self.step, self.error, self.delay = spec, step, error, delay
        self.finished = 0  # predictions returned
        self.embodiment = spec
        self.tokenizer = SimpleNamespace(kind="fastervq")
        self.calls: list[dict] = []

    def predict(self, images, state, instruction, *, greedy=None, generator=None):
        self.calls.append({"images": images, "state": state, "instruction": instruction, "greedy": greedy})
        time.sleep(self.delay)
        self.finished += 1
        if self.error is not None:
            raise self.error
        assert set(images) == set(self.spec.camera_names)
        assert all(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 for image in images.values())
        ramp = self.step * np.arange(1, self.spec.chunk_length + 1)[:, None]
        return PolicyOutput(
            actions=state[None, :] + ramp,
            codes=np.zeros((self.spec.tokenizer.codebooks, self.spec.tokenizer.time_tokens, self.spec.dof), int),
            timing=Timing(preprocess_ms=1.0, prefix_ms=2.0, decode_ms=3.0, detokenize_ms=0.5, total_ms=6.5),
            forward_passes=3,
        )


class Rig:
    """Publishers for the robot's inputs and recorders of the node's outputs, all spun by one executor thread."""

    def __init__(self, context, spec: Embodiment, node: PolicyNode):
        self.spec, self.node = spec, node
        self.io = rclpy.create_node("rig", context=context)
        self.cameras = {c.name: self.io.create_publisher(Image, c.topic, 10) for c in spec.cameras}
        self.joints = self.io.create_publisher(JointState, spec.topics.joint_states, 10)
        self.instruction = self.io.create_publisher(String, spec.topics.instruction, LATCHED)
        self.estop = self.io.create_publisher(Bool, "/policy_node/estop", LATCHED)
        self.reset = self.io.create_client(Trigger, "/policy_node/reset_estop")
        self.trajectories: list[tuple[float, JointTrajectory]] = []
        self.chunks: list[ActionChunk] = []
        self.statuses: list[PolicyStatus] = []
        self.io.create_subscription(
            JointTrajectory, spec.topics.trajectory, lambda m: self.trajectories.append((time.monotonic(), m)), 50
        )
        self.io.create_subscription(ActionChunk, "/policy_node/action_chunk", self.chunks.append, 50)
        self.io.create_subscription(PolicyStatus, "/policy_node/status", self.statuses.append, 50)
        self.executor = SingleThreadedExecutor(context=context)  # as policy_node.main
        self.executor.add_node(node)
        self.executor.add_node(self.io)
        self._spinning = True
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()
        self.position = np.clip(0.0, spec.limits.position_lower, spec.limits.position_upper)
        self.image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        self.encoding = "rgb8"
        self.joint_names = list(spec.joint_names)
        self.publish_cameras = True

    def feed(self, seconds: float, *, rate: float = 50.0) -> None:
        """Publish camera frames and joint states at ``rate`` for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.publish_cameras:
                frame = from_rgb(self.image)
                frame.encoding = self.encoding  # a test may relabel a good frame with an unsupported encoding
                for publisher in self.cameras.values():
                    publisher.publish(frame)
            self.joints.publish(JointState(name=self.joint_names, position=self.position.tolist()))
            time.sleep(1.0 / rate)

    def running_trajectories(self) -> list[JointTrajectory]:
        return [t for _, t in self.trajectories if t.points]

    def last_status(self) -> PolicyStatus:
        return self.statuses[-1]

    def wait_for(self, condition, timeout: float = 10.0, feed: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            if feed:
                self.feed(0.05)
            else:
                time.sleep(0.02)
        return condition()

    def _spin(self) -> None:
        # Stopped by a flag and joined before the executor shuts down: rclpy races when shutdown() meets spin().
        while self._spinning:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._spinning = False
        self._spinner.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


def save_tiny_policy(spec: Embodiment, path, *, delta_bound: float = 0.0) -> None:
    """A random-init FASTerVLA (tiny PaliGemma, tiny FASTerVQ) for ``spec``, saved as a node loads it.

    With ``delta_bound`` its tokenizer holds delta actions within +-delta_bound of the observed state."""
    import torch

    from faster_core.policy import BackboneConfig, FASTerVLA, FASTerVLAConfig
    from faster_core.tokenizer import FASTerVQ
    from faster_core.tokenizer.presets import fastervq_config

    torch.manual_seed(0)
    bounds = {"q01": tuple(spec.limits.position_lower.tolist()), "q99": tuple(spec.limits.position_upper.tolist())}
    if delta_bound:
        bounds = {"q01": (-delta_bound,) * spec.dof, "q99": (delta_bound,) * spec.dof, "action_mode": "delta"}
    tokenizer = FASTerVQ(fastervq_config(spec, codebook_size=16, latent_dim=4, width=16, heads=2, **bounds)).eval()
    config = FASTerVLAConfig(backbone=BackboneConfig(source="tiny-paligemma", image_size=32))
    FASTerVLA(embodiment=spec, tokenizer=tokenizer, config=config).save_pretrained(path)
