"""QoS profiles the faster_ros nodes share."""

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

# The last message stays available to late subscribers: instructions, e-stop, episode events.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# A reliable publisher serves reliable and best-effort readers alike: sources of camera and joint topics.
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
