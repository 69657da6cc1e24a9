"""faster_msgs across two real rclpy processes over Fast DDS, with discovery confined to loopback."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopback_sniffer import DdsSniffer

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from faster_msgs.msg import ActionChunk  # noqa: E402
from faster_msgs.srv import StartEpisode  # noqa: E402

pytestmark = pytest.mark.ros
PEER = Path(__file__).parent / "peers" / "chunk_peer.py"


def _spin_until(executor, condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def test_action_chunk_and_service_between_processes(rclpy_context, ros_env):
    domain = int(ros_env["ROS_DOMAIN_ID"])
    with DdsSniffer(domain) as sniffer:
        peer = subprocess.Popen([sys.executable, str(PEER), "20", "8"], env=ros_env)
        try:
            node = rclpy.create_node("roundtrip_test", context=rclpy_context)
            executor = SingleThreadedExecutor(context=rclpy_context)
            executor.add_node(node)
            received: list[ActionChunk] = []
            node.create_subscription(ActionChunk, "action_chunk", received.append, 10)
            assert _spin_until(executor, lambda: received, 20.0), "no ActionChunk from the peer process"

            chunk = received[0]
            assert (chunk.horizon, chunk.action_dim, chunk.tokenizer) == (20, 8, "fastervq")
            assert list(chunk.codes_shape) == [3, 1, 8] and list(chunk.codes) == list(range(24))
            assert len(chunk.actions) == 160 and chunk.actions[-1] == pytest.approx(1.59)
            assert list(chunk.observation_sources) == ["base", "joint_states"]
            assert chunk.observation_stamps[0] == chunk.header.stamp

            client = node.create_client(StartEpisode, "start_episode")
            assert client.wait_for_service(timeout_sec=10.0)
            future = client.call_async(StartEpisode.Request(instruction="pick the cube"))
            assert _spin_until(executor, future.done, 10.0)
            response = future.result()
            assert response.success and response.episode_id == "episode-13"
            assert response.message == "PICK THE CUBE"
            executor.shutdown()
            node.destroy_node()
        finally:
            peer.terminate()
            peer.wait(timeout=10)
    # The sniffer proves both halves: DDS traffic of this domain flowed on loopback, and none left on other interfaces.
    assert sniffer.loopback_packets > 0
    assert sniffer.external_packets == 0, f"DDS packets left loopback on {sniffer.external_interfaces}"
