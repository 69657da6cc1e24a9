"""faster_ros: rclpy nodes that wrap faster_core for robots."""
