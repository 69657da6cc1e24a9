"""A simulated SO-101 behind the topics a real robot uses: cameras and joint states out, JointTrajectory in.

``mode:=policy`` follows trajectories with joint_trajectory_controller semantics (TrajectoryFollower) at the
simulator's control rate; ``mode:=expert`` lets the shipped scripted controller act and publishes the joint targets
it commands on the trajectory topic, each just before the observation it was decided from (as a teleoperation
leader's command accompanies the follower's state), so episodes recorded through ROS convert into pairs of an
observation and its command, the first at the reset pose; ``expert_noise`` and ``expert_shut_probability``
disturb the arm's execution of those commands (DART), so recordings also show the expert's answers to states off
its path. Each episode ends on success, on the block leaving the workspace, or after ``max_steps``; the outcome goes
out on ``~/outcome`` (JSON) and the next episode starts (``~/reset`` starts one at once).

Clocks. ``clock:=realtime`` steps on a wall-clock timer. ``clock:=lockstep`` owns ``/clock`` (run the policy node
with ``use_sim_time:=true``): after publishing the observation at simulated time t it waits until the policy has
answered that observation (an ActionChunk stamped with it, then a trajectory), and only then steps to t + dt. An
evaluation then measures the policy, not this machine's speed; a policy that does not answer within
``lockstep_timeout_s`` (wall) is stepped past, holding its last command, and counted. Until the policy has answered
once (a model still loading) the wait is ``lockstep_startup_s``: a policy that never answers (one whose every chunk
fails to decode) still gets its episodes stepped through and scored.
"""

from __future__ import annotations

import json
import time

from builtin_interfaces.msg import Duration, Time
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from faster_core.control import TrajectoryFollower
from faster_core.data.sim.so101 import INSTRUCTION, Disturbance, So101PickPlace
from faster_msgs.msg import ActionChunk
from faster_ros.images import from_rgb
from faster_ros.parameters import declare_embodiment
from faster_ros.qos import LATCHED, RELIABLE
from faster_ros.spinning import run_node

NS = 1_000_000_000
REPUBLISH_S = 0.5  # lockstep: wall seconds between repeats of an unanswered observation


class SimRobot(Node):
    def __init__(self, **node_kwargs):
        super().__init__("sim_robot", **node_kwargs)
        spec = self.embodiment = declare_embodiment(self)
        self.mode = self.declare_parameter(
            "mode", "policy", ParameterDescriptor(description="policy: follow trajectories; expert", read_only=True)
        ).value
        if self.mode not in ("policy", "expert"):
            raise ValueError(f"mode must be 'policy' or 'expert', got {self.mode!r}")
        self.seed = self.declare_parameter("seed", 0, ParameterDescriptor(description="first episode's seed")).value
        expert_noise = self.declare_parameter(
            "expert_noise",
            0.0,
            ParameterDescriptor(
                description="expert mode: std (m) of the disturbance on the arm's full-speed moves (DART); the "
                "published command stays the expert's own",
                floating_point_range=[FloatingPointRange(from_value=0.0, to_value=0.05)],
                read_only=True,
            ),
        ).value
        shut_probability = self.declare_parameter(
            "expert_shut_probability",
            0.0,
            ParameterDescriptor(
                description="expert mode: chance per descent step that the jaw shuts early for a few steps (DART)",
                floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1.0)],
                read_only=True,
            ),
        ).value
        self.max_steps = self.declare_parameter(
            "max_steps",
            150,
            ParameterDescriptor(
                description="control steps before an episode counts as failed",
                integer_range=[IntegerRange(from_value=1, to_value=100_000, step=1)],
            ),
        ).value
        image_size = self.declare_parameter(
            "image_size", spec.image_size, ParameterDescriptor(description="rendered frame side", read_only=True)
        ).value

        self.clock_mode = self.declare_parameter(
            "clock",
            "realtime",
            ParameterDescriptor(description="realtime or lockstep (publishes /clock)", read_only=True),
        ).value
        if self.clock_mode not in ("realtime", "lockstep"):
            raise ValueError(f"clock must be 'realtime' or 'lockstep', got {self.clock_mode!r}")
        self.lockstep_timeout = self.declare_parameter(
            "lockstep_timeout_s", 10.0, ParameterDescriptor(description="wall seconds to wait for the policy")
        ).value
        self.lockstep_startup = self.declare_parameter(
            "lockstep_startup_s",
            120.0,
            ParameterDescriptor(description="wall seconds to wait for a policy that has not answered yet (loading)"),
        ).value
        chunk_topic = self.declare_parameter(
            "chunk_topic", "/policy_node/action_chunk", ParameterDescriptor(description="lockstep: the policy's chunks")
        ).value

        self.sim = So101PickPlace(
            spec, self.seed, spec.camera_names, image_size, Disturbance(expert_noise, shut_probability)
        )
        # lockstep: simulated time in integer nanoseconds (a float sum of 0.1 s steps reaches 4.999999..., whose
        # stamp would wrap to 4.0 s: a clock jump back). From 1 s, since ROS reads time 0 as "no /clock yet".
        self.sim_time_ns = NS
        self.lockstep_timeouts = 0
        self._awaiting_since: float | None = None  # wall time the current observation went out (lockstep)
        self._published_at = 0.0  # wall time of its last (re)publication
        self._started = False  # the policy has answered at least once, or the startup wait ran out
        self._chunk_answered = self._trajectory_answered = False
        self.episode, self.steps, self.commands = 0, 0, 0  # commands: trajectories followed this episode
        self.follower = TrajectoryFollower(self.sim.joint_positions())
        self.rejected_trajectories = 0

        self._cameras = {c.name: self.create_publisher(Image, c.topic, RELIABLE) for c in spec.cameras}
        self._joints = self.create_publisher(JointState, spec.topics.joint_states, RELIABLE)
        self._instruction = self.create_publisher(String, spec.topics.instruction, LATCHED)
        self._outcome = self.create_publisher(String, "~/outcome", RELIABLE)
        if self.mode == "expert":
            self._commands = self.create_publisher(JointTrajectory, spec.topics.trajectory, RELIABLE)
        else:
            self.create_subscription(JointTrajectory, spec.topics.trajectory, self._on_trajectory, RELIABLE)
        self.create_service(Trigger, "~/reset", self._on_reset)
        if self.clock_mode == "lockstep":
            self._clock_pub = self.create_publisher(Clock, "/clock", 10)
            self.create_subscription(ActionChunk, chunk_topic, self._on_chunk, RELIABLE)
            self.create_timer(0.002, self._lockstep)
        else:
            self._step_timer = self.create_timer(self.sim.dt, self._step)
        self._start_episode()

    def _now_ns(self) -> int:
        return self.sim_time_ns if self.clock_mode == "lockstep" else self.get_clock().now().nanoseconds

    def _now(self) -> float:
        return self._now_ns() / NS

    def _stamp(self) -> Time:
        sec, nanosec = divmod(self._now_ns(), NS)
        return Time(sec=sec, nanosec=nanosec)

    def _on_chunk(self, message: ActionChunk) -> None:
        sources = dict(zip(message.observation_sources, message.observation_stamps, strict=False))
        stamp = sources.get("joint_states")
        if stamp is not None and stamp.sec * NS + stamp.nanosec >= self.sim_time_ns:
            self._chunk_answered = True

    def _lockstep(self) -> None:
        """Step once the policy answered the current observation (or gave up waiting); then publish the next.

        The observation is published again every ``REPUBLISH_S`` while waiting (a policy that joined late missed it),
        and until the policy has answered at all the wait is the startup one (loading a model is not a late answer).
        """
        now = time.monotonic()
        if self._awaiting_since is not None and not (self._chunk_answered and self._trajectory_answered):
            waited = now - self._awaiting_since
            if waited < (self.lockstep_timeout if self._started else self.lockstep_startup):
                if now - self._published_at >= REPUBLISH_S:
                    self._publish_lockstep_observation()
                return
            self.lockstep_timeouts += 1
            self._started = True
            self.get_logger().warning("the policy did not answer in time; stepping with its last command")
        if self._awaiting_since is not None:
            self._started |= self._chunk_answered
            self._step()
        self._publish_lockstep_observation()
        self._awaiting_since = now
        self._chunk_answered = self._trajectory_answered = False

    def _publish_lockstep_observation(self) -> None:
        self._clock_pub.publish(Clock(clock=self._stamp()))
        self._publish_observation()
        self._published_at = time.monotonic()

    def _start_episode(self) -> None:
        self.sim.reset(self.seed + self.episode)
        self.steps = self.commands = 0
        if self.mode == "expert":
            self._expert = self.sim.expert_targets()
        self.follower = TrajectoryFollower(self.sim.joint_positions())
        self._instruction.publish(String(data=INSTRUCTION))
        if self.clock_mode == "realtime":
            self._step_timer.reset()  # the first step comes a whole period after the first observation, as every other
            self._publish_observation()
        self.get_logger().info(f"episode {self.episode} ({self.mode}): {INSTRUCTION}")

    def _on_trajectory(self, message: JointTrajectory) -> None:
        names = list(message.joint_names)
        try:
            if message.points and sorted(names) != sorted(self.embodiment.joint_names):
                raise ValueError(f"joint names {names} are not the robot's {list(self.embodiment.joint_names)}")
            order = [names.index(joint) for joint in self.embodiment.joint_names] if message.points else []
            times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in message.points]
            positions = [[p.positions[i] for i in order] for p in message.points]
            self.follower.accept(times, positions, received_at=self._now())
            self.commands += 1
            self._trajectory_answered = self._chunk_answered
        except (ValueError, IndexError) as error:
            self.rejected_trajectories += 1
            self.get_logger().warning(f"trajectory refused: {error}", throttle_duration_sec=2.0)

    def _on_reset(self, _request, response: Trigger.Response) -> Trigger.Response:
        self._finish(success=False, reason="reset")
        response.success, response.message = True, f"episode {self.episode} started"
        return response

    def _step(self) -> None:
        if self.mode == "expert":
            self.sim.command(self._expert.executed)
            self._expert = self.sim.expert_targets()  # decided from the new observation, published with it
        else:
            self.sim.command(self.follower.target(self._now() + self.sim.dt))  # where the arm should be at step end
        self.steps += 1
        if self.clock_mode == "lockstep":
            self.sim_time_ns += round(self.sim.dt * NS)  # _lockstep publishes the clock and the observation
        else:
            self._publish_observation()
        if self.sim.success or self.sim.terminated or self.steps >= self.max_steps:
            reason = "success" if self.sim.success else "out of workspace" if self.sim.terminated else "time limit"
            self._finish(success=self.sim.success, reason=reason)

    def _finish(self, *, success: bool, reason: str) -> None:
        outcome = {
            "episode": self.episode,
            "success": success,
            "steps": self.steps,
            "reason": reason,
            "commands": self.commands,
            "lockstep_timeouts": self.lockstep_timeouts,
            **self.sim.progress(),
        }
        self._outcome.publish(String(data=json.dumps(outcome)))
        self.get_logger().info(f"episode {self.episode}: {'success' if success else 'failure'} ({reason})")
        self.episode += 1
        self._start_episode()

    def _publish_observation(self) -> None:
        """In expert mode the command decided from this observation goes out with it, so that a recording pairs
        each observation with the command it led to, from the reset pose on. The messages reach a recorder in any
        order; the converter's ticks, half a period after each frame (``BagConversion.sync_window``), hold them all.
        """
        stamp = self._stamp()
        frames = self.sim.frames()  # rendering takes most of a control period: nothing goes out before it is done
        if self.mode == "expert":
            command = JointTrajectory(joint_names=list(self.embodiment.joint_names))
            command.points = [
                JointTrajectoryPoint(
                    positions=self._expert.targets.tolist(), time_from_start=Duration(nanosec=int(self.sim.dt * 1e9))
                )
            ]
            self._commands.publish(command)
        state = JointState(name=list(self.embodiment.joint_names), position=self.sim.joint_positions().tolist())
        state.header.stamp = stamp
        self._joints.publish(state)
        for camera, image in frames.items():
            message = from_rgb(image)
            message.header.stamp, message.header.frame_id = stamp, camera
            self._cameras[camera].publish(message)

    def destroy_node(self) -> None:
        self.sim.close()
        super().destroy_node()


def main(args=None) -> None:
    run_node(SimRobot, args)


if __name__ == "__main__":
    main()
