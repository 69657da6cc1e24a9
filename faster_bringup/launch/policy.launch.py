"""Run FASTer on a robot: `ros2 launch faster_bringup policy.launch.py embodiment:=single_arm checkpoint:=/path`.

Declarative only: the embodiment's parameter file and the overrides go to the nodes as ROS parameters, which the
nodes validate (faster_ros.parameters / faster_core.embodiment) and the test suite exercises the same way.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("embodiment", "single_arm", "embodiment name (faster_bringup/config/<name>.yaml)"),
    ("checkpoint", "", "FASTerVLA checkpoint directory (policy_path)"),
    ("namespace", "", "namespace for the nodes"),
    ("dry_run", "false", "compute and publish ActionChunk, but no trajectory"),
    ("use_sim_time", "false", "use /clock"),
    ("device", "cpu", "torch device for the policy"),
    ("record", "false", "also start the episode recorder"),
    ("episodes_dir", "episodes", "where the recorder writes one bag per episode"),
)


def generate_launch_description():
    installed_config = PathJoinSubstitution(
        [FindPackageShare("faster_bringup"), "config", [LaunchConfiguration("embodiment"), ".yaml"]]
    )
    config = LaunchConfiguration("config")
    use_sim_time = {"use_sim_time": LaunchConfiguration("use_sim_time")}
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS
            ),
            DeclareLaunchArgument(
                "config", default_value=installed_config, description="parameter file; defaults to the embodiment's"
            ),
            Node(
                package="faster_ros",
                executable="policy_node",
                namespace=LaunchConfiguration("namespace"),
                parameters=[
                    config,
                    use_sim_time,
                    {
                        "policy_path": LaunchConfiguration("checkpoint"),
                        "dry_run": LaunchConfiguration("dry_run"),
                        "device": LaunchConfiguration("device"),
                    },
                ],
                output="screen",
            ),
            Node(
                package="faster_ros",
                executable="episode_recorder",
                namespace=LaunchConfiguration("namespace"),
                parameters=[config, use_sim_time, {"output_dir": LaunchConfiguration("episodes_dir")}],
                condition=IfCondition(LaunchConfiguration("record")),
                output="screen",
            ),
        ]
    )
