from setuptools import find_packages, setup

PACKAGE = "faster_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="faster-ros maintainers",
    maintainer_email="maintainers@faster-ros.dev",
    description="rclpy nodes of faster-ros: thin shells around faster_core.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "episode_recorder = faster_ros.episode_recorder:main",
            "policy_node = faster_ros.policy_node:main",
            "episode_player = faster_ros.episode_player:main",
            "sim_robot = faster_ros.sim_robot:main",
        ],
    },
)
