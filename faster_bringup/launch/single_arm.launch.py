"""FASTer on the single_arm embodiment: policy.launch.py with config/single_arm.yaml; all its arguments pass through."""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    policy = PathJoinSubstitution([FindPackageShare("faster_bringup"), "launch", "policy.launch.py"])
    return LaunchDescription([IncludeLaunchDescription(policy, launch_arguments={"embodiment": "single_arm"}.items())])
