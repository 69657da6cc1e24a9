"""The launch files cannot run here (launch is not installable from PyPI), so their contract is checked statically:
every executable exists, every embodiment has its parameter file, and every parameter they set is one the node
declares (the node tests load parameters exactly as launch_ros passes them: a params file plus overrides)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from repo_paths import CONFIG_DIR, EMBODIMENTS, REPO

rclpy = pytest.importorskip("rclpy")
from faster_core.embodiment import Embodiment  # noqa: E402
from faster_ros.episode_recorder import EpisodeRecorder  # noqa: E402
from faster_ros.policy_node import PolicyNode  # noqa: E402

from policy_harness import RecordingPolicy  # noqa: E402

pytestmark = pytest.mark.ros
LAUNCH_DIR = REPO / "faster_bringup" / "launch"


def _nodes(path: Path) -> list[dict]:
    """executable and the literal parameter keys of every launch_ros Node(...) in a launch file."""
    nodes = []
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            keywords = {k.arg: k.value for k in call.keywords}
            keys = {
                key.value
                for item in ast.walk(keywords["parameters"])
                if isinstance(item, ast.Dict)
                for key in item.keys
                if isinstance(key, ast.Constant)
            }
            nodes.append({"executable": keywords["executable"].value, "keys": keys})
    return nodes


def test_every_embodiment_has_a_launch_file_and_config():
    for name in EMBODIMENTS:
        text = (LAUNCH_DIR / f"{name}.launch.py").read_text()
        assert f'"embodiment": "{name}"' in text
        assert (CONFIG_DIR / f"{name}.yaml").is_file()


def test_executables_are_console_scripts():
    scripts = set(re.findall(r'"(\w+) = faster_ros\.', (REPO / "faster_ros" / "setup.py").read_text()))
    executables = {node["executable"] for node in _nodes(LAUNCH_DIR / "policy.launch.py")}
    assert executables == {"policy_node", "episode_recorder"}
    assert executables <= scripts


def test_launch_parameters_are_declared_by_the_nodes(ros_env):
    nodes = {node["executable"]: node["keys"] for node in _nodes(LAUNCH_DIR / "policy.launch.py")}
    path = CONFIG_DIR / "whole_body.yaml"
    context = rclpy.Context()
    rclpy.init(
        args=["--ros-args", "--params-file", str(path)], context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"])
    )
    try:
        policy_node = PolicyNode(policy=RecordingPolicy(Embodiment.from_yaml(path)), context=context)
        recorder = EpisodeRecorder(context=context)
        for node, keys in ((policy_node, nodes["policy_node"]), (recorder, nodes["episode_recorder"])):
            missing = [key for key in keys if not node.has_parameter(key)]
            assert not missing, f"{node.get_name()} does not declare {missing}"
        policy_node.destroy_node()
        recorder.destroy_node()
    finally:
        context.try_shutdown()
