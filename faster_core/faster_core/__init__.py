"""faster_core: the ROS-free half of faster-ros (embodiments, tokenizers, policy, data, training, CLIs)."""

from faster_core.embodiment import Embodiment, EmbodimentError

__all__ = ["Embodiment", "EmbodimentError"]
__version__ = "0.1.0"
