"""Nodes read the embodiment the way the launch files give it to them: the YAML as a --params-file."""

import pytest

from faster_core.embodiment import Embodiment, EmbodimentError

from repo_paths import CONFIG_DIR, EMBODIMENTS

rclpy = pytest.importorskip("rclpy")
from faster_ros.parameters import declare_embodiment  # noqa: E402

pytestmark = pytest.mark.ros


def _node_with_params_file(ros_env, path):
    context = rclpy.Context()
    rclpy.init(
        args=["--ros-args", "--params-file", str(path)], context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"])
    )
    return context, rclpy.create_node("any_faster_node", context=context)


@pytest.mark.parametrize("name", EMBODIMENTS)
def test_node_sees_the_same_embodiment_as_faster_core(ros_env, name):
    path = CONFIG_DIR / f"{name}.yaml"
    context, node = _node_with_params_file(ros_env, path)
    try:
        from_node = declare_embodiment(node)
        assert from_node.to_parameters() == Embodiment.from_yaml(path).to_parameters()
        assert node.describe_parameter("joint_names").read_only
    finally:
        node.destroy_node()
        context.try_shutdown()


def test_missing_file_names_the_parameter(ros_env):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("bare_node", context=context)
    try:
        with pytest.raises(EmbodimentError, match="parameter 'embodiment' is not set"):
            declare_embodiment(node)
    finally:
        node.destroy_node()
        context.try_shutdown()
