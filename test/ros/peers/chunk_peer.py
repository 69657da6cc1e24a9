"""A second rclpy process for the message/service round trip: publishes a known ActionChunk and serves StartEpisode."""

import sys

import rclpy
from rclpy.node import Node

from faster_msgs.msg import ActionChunk
from faster_msgs.srv import StartEpisode


class ChunkPeer(Node):
    def __init__(self, horizon: int, dim: int):
        super().__init__("chunk_peer")
        self._publisher = self.create_publisher(ActionChunk, "action_chunk", 10)
        self._chunk = ActionChunk(
            embodiment="single_arm",
            joint_names=[f"joint{i}" for i in range(dim)],
            horizon=horizon,
            action_dim=dim,
            dt=0.05,
            tokenizer="fastervq",
            codes_shape=[3, 1, dim],
            codes=list(range(3 * dim)),
            actions=[0.01 * i for i in range(horizon * dim)],
            observation_sources=["base", "joint_states"],
        )
        self.create_timer(0.05, self._publish)
        self.create_service(StartEpisode, "start_episode", self._start)

    def _publish(self):
        self._chunk.header.stamp = self.get_clock().now().to_msg()
        self._chunk.observation_stamps = [self._chunk.header.stamp, self._chunk.header.stamp]
        self._publisher.publish(self._chunk)

    def _start(self, request, response):
        response.success = True
        response.episode_id = f"episode-{len(request.instruction)}"
        response.message = request.instruction.upper()
        return response


def main():
    with rclpy.init():
        rclpy.spin(ChunkPeer(int(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    main()
