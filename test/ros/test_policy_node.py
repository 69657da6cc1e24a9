"""The policy node through real rclpy and DDS: what a robot receives, and what it never receives."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from repo_paths import CONFIG_DIR, EMBODIMENTS

rclpy = pytest.importorskip("rclpy")
from std_msgs.msg import Bool, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from faster_core.embodiment import Embodiment  # noqa: E402
from faster_msgs.msg import PolicyStatus  # noqa: E402
from faster_ros.policy_node import PolicyNode  # noqa: E402

from policy_harness import RecordingPolicy, Rig, save_tiny_policy  # noqa: E402

pytestmark = pytest.mark.ros
INSTRUCTION = "pick up the cube"


@pytest.fixture
def make_rig(ros_env):
    rigs, contexts = [], []

    def make(embodiment: str = "single_arm", *overrides: str, policy=None) -> Rig:
        path = CONFIG_DIR / f"{embodiment}.yaml"
        spec = Embodiment.from_yaml(path)
        context = rclpy.Context()
        args = ["--ros-args", "--params-file", str(path)]
        for override in overrides:
            args += ["-p", override]
        rclpy.init(args=args, context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
        contexts.append(context)
        # policy=False: load from the policy_path parameter, as on a robot
        given = None if policy is False else policy or RecordingPolicy(spec)
        node = PolicyNode(policy=given, context=context)
        rig = Rig(context, spec, node)
        rigs.append(rig)
        rig.instruction.publish(String(data=INSTRUCTION))
        return rig

    yield make
    for rig in rigs:
        rig.close()
    for context in contexts:
        context.try_shutdown()


def start_running(rig: Rig) -> None:
    assert rig.wait_for(lambda: len(rig.running_trajectories()) >= 3), (
        f"no trajectory; status: {rig.statuses[-1].last_error if rig.statuses else 'none'}"
    )


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_trajectory_for_each_embodiment(make_rig, embodiment):
    rig = make_rig(embodiment, "execution_horizon:=8")
    spec = rig.spec
    start_running(rig)
    trajectory = rig.running_trajectories()[-1]
    assert list(trajectory.joint_names) == list(spec.joint_names)
    assert trajectory.header.stamp.sec == 0 and trajectory.header.stamp.nanosec == 0
    assert 1 <= len(trajectory.points) <= 8
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in trajectory.points]
    assert times[0] > 0 and all(b > a for a, b in itertools.pairwise(times))
    positions = np.array([p.positions for p in trajectory.points])
    assert positions.shape[1] == spec.dof and len(trajectory.points[0].velocities) == spec.dof
    assert np.all(positions >= spec.limits.position_lower - 1e-9)
    assert np.all(positions <= spec.limits.position_upper + 1e-9)
    # The recording policy adds a small ramp to the observed state: the command follows it.
    assert np.all(positions[-1] >= rig.position - 1e-9)

    chunk = rig.chunks[-1]
    assert (chunk.embodiment, chunk.horizon, chunk.action_dim) == (spec.name, spec.chunk_length, spec.dof)
    assert list(chunk.codes_shape) == [3, spec.tokenizer.time_tokens, spec.dof]
    assert len(chunk.actions) == spec.chunk_length * spec.dof
    assert list(chunk.observation_sources) == [*spec.camera_names, "joint_states"]
    status = rig.last_status()
    assert status.chunks_computed >= 1 and status.decoder_forward_passes == 3 and status.decode_ms == 3.0
    assert rig.node._policy.calls[-1]["instruction"] == INSTRUCTION


def _assert_holds(rig: Rig, cause: str, counter: str | None = None) -> None:
    def holding() -> bool:
        return (
            bool(rig.statuses)
            and rig.last_status().state == PolicyStatus.STATE_HOLDING
            and cause in (rig.last_status().last_error)
        )

    assert rig.wait_for(holding), f"expected a hold naming {cause!r}; last: {rig.statuses[-1].last_error!r}"
    rig.feed(0.1)
    before = len(rig.running_trajectories())
    rig.feed(0.4)
    assert len(rig.running_trajectories()) == before, "a trajectory was published from bad input"
    assert [t for _, t in rig.trajectories if not t.points], "the controller was not told to stop (empty trajectory)"
    assert rig.node.context.ok(), "node died"
    if counter:
        assert getattr(rig.last_status(), counter) > 0 or getattr(rig.node._status, counter) > 0


def test_stale_images_hold(make_rig):
    rig = make_rig("single_arm", "image_timeout_s:=0.2")
    start_running(rig)
    rig.publish_cameras = False
    _assert_holds(rig, "stale", "stale_ticks")


def test_nan_joints_hold(make_rig):
    rig = make_rig()
    start_running(rig)
    rig.position = rig.position.copy()
    rig.position[2] = np.nan
    _assert_holds(rig, "NaN/inf positions for ['joint3']", "dropped_messages")


def test_unknown_joint_names_never_run(make_rig):
    rig = make_rig()
    rig.joint_names = [f"other_{name}" for name in rig.spec.joint_names]
    _assert_holds(rig, "other names")
    assert not rig.running_trajectories()


@pytest.mark.parametrize(
    ("attribute", "value", "cause"),
    [("encoding", "yuv422", "unsupported image encoding 'yuv422'"), ("image", np.zeros((8, 8, 3), np.uint8), "8x8")],
)
def test_bad_images_hold(make_rig, attribute, value, cause):
    rig = make_rig()
    start_running(rig)
    if attribute == "encoding":
        rig.encoding = value
    else:
        rig.image = value
    _assert_holds(rig, cause, "dropped_messages")


@pytest.mark.parametrize(("text", "cause"), [("   ", "instruction is empty"), ("x" * 100_000, "100000 characters")])
def test_bad_instruction_holds(make_rig, text, cause):
    rig = make_rig()
    start_running(rig)
    rig.instruction.publish(String(data=text))
    _assert_holds(rig, cause, "dropped_messages")


def test_estop_stops_within_one_period_and_reset_resumes(make_rig):
    rig = make_rig()
    start_running(rig)
    rig.estop.publish(Bool(data=True))
    assert rig.wait_for(lambda: rig.last_status().state == PolicyStatus.STATE_ESTOPPED, timeout=2.0)
    engaged = rig.statuses[-1]
    rig.feed(0.5)
    # The node answers the e-stop with an empty trajectory (stop and hold); nothing that moves may follow it.
    stopped_at = next(t for t, m in reversed(rig.trajectories) if not m.points)
    late = [t for t, m in rig.trajectories if m.points and t > stopped_at]
    assert not late, "trajectories kept coming after the e-stop"
    assert engaged.last_error.startswith("e-stop engaged")

    assert rig.reset.wait_for_service(timeout_sec=5.0)
    future = rig.reset.call_async(Trigger.Request())
    assert rig.wait_for(future.done)
    assert future.result().success
    count = len(rig.running_trajectories())
    assert rig.wait_for(lambda: len(rig.running_trajectories()) > count + 2)


def test_dry_run_publishes_chunks_but_no_trajectory(make_rig):
    rig = make_rig("bimanual", "dry_run:=true")
    assert rig.wait_for(lambda: len(rig.chunks) >= 3)
    rig.feed(0.3)
    assert not rig.trajectories
    assert rig.last_status().state == PolicyStatus.STATE_RUNNING


def test_model_error_holds_and_node_survives(make_rig):
    spec = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")
    policy = RecordingPolicy(spec, error=RuntimeError("CUDA exploded"))
    rig = make_rig("single_arm", policy=policy)
    _assert_holds(rig, "model error: CUDA exploded", "model_errors")
    policy.error = None
    assert rig.wait_for(lambda: len(rig.running_trajectories()) >= 2), "did not recover after the model recovered"


class NumberedPolicy(RecordingPolicy):
    """Every action of the n-th chunk is the observed state + n * 1e-4 rad: a command names the chunk it came from."""

    def predict(self, images, state, instruction, *, greedy=None, generator=None):
        output = super().predict(images, state, instruction, greedy=greedy, generator=generator)
        numbered = np.repeat(state[None] + 1e-4 * self.finished, len(output.actions), axis=0)
        return dataclasses.replace(output, actions=numbered)


@pytest.mark.parametrize("replan_steps", [1, 20])
def test_replan_steps_keeps_a_chunk_driving_for_that_many_actions(make_rig, replan_steps):
    spec = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")  # 20 actions per chunk at 20 Hz: 1 s each
    rig = make_rig(
        "single_arm",
        f"replan_steps:={replan_steps}",
        "ensemble.enabled:=false",
        "blend_steps:=0",
        policy=NumberedPolicy(spec),
    )
    start_running(rig)
    seen = len(rig.running_trajectories())
    computed = rig.node._policy.finished
    rig.feed(1.5)
    sources = {round((t.points[0].positions[0] - rig.position[0]) / 1e-4) for t in rig.running_trajectories()[seen:]}
    assert rig.node._policy.finished - computed >= 10  # inference kept running either way
    if replan_steps == 1:
        assert len(sources) >= 10, sources  # each fresh chunk took over
    else:
        # One chunk per second of commands, counted from its observation: a chunk that lands late (inference on a
        # loaded machine) drives for less, so 1.5 s may show up to 5 chunks, still far fewer than were computed.
        assert len(sources) <= 5, sources


def test_by_default_every_chunk_joins_an_ensemble_of_the_earlier_predictions(make_rig):
    spec = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")
    rig = make_rig("single_arm", "ensemble.coeff:=0.0", policy=NumberedPolicy(spec))
    assert rig.node.get_parameter("replan_steps").value == 1 and rig.node._schedule.ensemble_coeff == 0.0
    start_running(rig)
    rig.feed(1.0)
    computed = rig.node._policy.finished
    offsets = [(t.points[0].positions[0] - rig.position[0]) / 1e-4 for t in rig.running_trajectories()[-5:]]
    # means of the chunks numbered up to `computed` (a cross-fade mixes chunks too; only ensembling sums weights)
    assert all(0.0 <= offset <= computed for offset in offsets), (offsets, computed)
    assert any(abs(offset - round(offset)) > 0.05 for offset in offsets), offsets
    assert rig.node._schedule._weights.max() >= 3  # at least three predictions averaged for one time


class PressingPolicy(RecordingPolicy):
    """Commands the jaw shut and the shoulder 1 rad past where they stand, as on a cube or against an obstacle."""

    def predict(self, images, state, instruction, **kwargs):
        output = super().predict(images, state, instruction, **kwargs)
        actions = np.repeat(state[None], self.spec.chunk_length, axis=0)
        actions[:, 0] -= 1.0
        actions[:, -1] = self.spec.limits.position_lower[-1]
        return dataclasses.replace(output, actions=actions)


def test_a_blocked_joint_is_commanded_past_it_by_at_most_its_tracking_error(make_rig):
    spec = Embodiment.from_yaml(CONFIG_DIR / "so101.yaml")  # tracking error: shoulder pan 0.1 rad, jaw 1.6 rad
    rig = make_rig("so101", "ensemble.enabled:=false", policy=PressingPolicy(spec))
    rig.position = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # the joints never move: the robot is blocked
    start_running(rig)
    shut = spec.limits.position_lower[-1]
    assert rig.wait_for(lambda: rig.running_trajectories()[-1].points[0].positions[-1] <= shut + 1e-9), (
        "the jaw command stayed near the measured jaw: the velocity limit ran from the joint, not the command"
    )
    rig.feed(0.5)
    for trajectory in rig.running_trajectories():
        for point in trajectory.points:
            t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            lead = spec.limits.tracking_error[0] + spec.limits.velocity[0] * max(t, spec.dt)
            assert point.positions[0] >= rig.position[0] - lead - 1e-6  # time_from_start is in whole ns
    first = np.array([t.points[0].positions[0] for t in rig.running_trajectories()[-3:]])
    steady = rig.position[0] - spec.limits.tracking_error[0] - spec.limits.velocity[0] * spec.dt
    np.testing.assert_allclose(first, steady)  # a steady lead: the tracking error and one period's travel
    assert rig.last_status().limited_commands > 0

    # After a stop the controller holds where the joints are: the next command starts from there again.
    rig.estop.publish(Bool(data=True))
    assert rig.wait_for(lambda: rig.last_status().state == PolicyStatus.STATE_ESTOPPED, timeout=2.0)
    count = len(rig.running_trajectories())
    future = rig.reset.call_async(Trigger.Request())
    assert rig.wait_for(future.done) and future.result().success
    assert rig.wait_for(lambda: len(rig.running_trajectories()) > count)
    point = rig.running_trajectories()[count].points[0]
    t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
    assert point.positions[-1] >= rig.position[-1] - spec.limits.velocity[-1] * t - 1e-6


def test_inference_waits_until_every_input_has_a_newer_message(make_rig):
    rig = make_rig("single_arm", "image_timeout_s:=5.0")
    start_running(rig)
    rig.publish_cameras = False
    rig.feed(0.3)  # lets a chunk already being computed finish
    computed = rig.node._policy.finished
    rig.feed(1.0)  # joint states only: the frames held are not new, and no observation mixes old frames with new joints
    assert rig.node._policy.finished == computed
    rig.publish_cameras = True
    assert rig.wait_for(lambda: rig.node._policy.finished > computed, timeout=5.0)


@pytest.mark.parametrize(("overrides", "greedy"), [((), True), (("greedy:=false",), False)])
def test_the_greedy_parameter_chooses_how_codes_are_decoded(make_rig, overrides, greedy):
    rig = make_rig("single_arm", *overrides)
    start_running(rig)
    assert {call["greedy"] for call in rig.node._policy.calls} == {greedy}


@pytest.mark.parametrize(("embodiment", "half_a_chunk"), [("single_arm", 10), ("so101", 5)])
def test_without_ensembling_replan_steps_defaults_to_half_a_chunk(make_rig, embodiment, half_a_chunk):
    rig = make_rig(embodiment, "ensemble.enabled:=false")
    assert rig.node.get_parameter("replan_steps").value == half_a_chunk
    assert rig.node._schedule.replan_steps == half_a_chunk and rig.node._schedule.ensemble_coeff is None


def test_runtime_change_of_checkpoint_is_refused(make_rig):
    rig = make_rig()
    from rclpy.parameter import Parameter

    result = rig.node.set_parameters([Parameter("policy_path", value="/elsewhere")])[0]
    assert not result.successful and "read-only" in result.reason
    assert not rig.node.set_parameters([Parameter("joint_names", value=["a"])])[0].successful
    assert rig.node.set_parameters([Parameter("execution_horizon", value=5)])[0].successful
    assert not rig.node.set_parameters([Parameter("execution_horizon", value=500)])[0].successful


def test_a_real_fastervla_checkpoint_drives_the_node(make_rig, tmp_path):
    """policy_path -> FASTerVLA.from_pretrained: a tiny random-init model end to end through real DDS."""
    save_tiny_policy(Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml"), tmp_path / "policy")

    rig = make_rig("single_arm", f"policy_path:={tmp_path / 'policy'}", "seed:=3", policy=False)
    start_running(rig)
    chunk = rig.chunks[-1]
    assert chunk.tokenizer == "fastervq" and list(chunk.codes_shape) == [3, 1, 8]
    assert all(0 <= code < 16 for code in chunk.codes)
    status = rig.last_status()
    assert status.decoder_forward_passes == 4  # ceil(24 tokens / block 7)
    assert status.prefix_ms > 0 and status.decode_ms > 0 and status.total_ms >= status.decode_ms


def test_a_missing_checkpoint_leaves_the_node_up_in_error(make_rig, tmp_path):
    rig = make_rig("single_arm", f"policy_path:={tmp_path / 'missing'}", policy=False)
    assert rig.node._status.state == PolicyStatus.STATE_ERROR
    assert "cannot load policy" in rig.node._status.last_error
    rig.feed(0.3)
    assert not rig.trajectories


def test_a_checkpoint_for_another_robot_is_refused(make_rig, tmp_path):
    save_tiny_policy(Embodiment.from_yaml(CONFIG_DIR / "so101.yaml"), tmp_path / "so101_policy")
    rig = make_rig("single_arm", f"policy_path:={tmp_path / 'so101_policy'}", policy=False)
    assert rig.node._status.state == PolicyStatus.STATE_ERROR
    assert "does not fit this robot: joint_names" in rig.node._status.last_error
    rig.feed(0.3)
    assert not rig.trajectories


def test_a_delta_checkpoint_commands_targets_around_the_observed_state(make_rig, tmp_path):
    """The checkpoint's tokenizer says its actions are deltas; the robot still receives absolute joint targets."""
    spec = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")
    save_tiny_policy(spec, tmp_path / "policy", delta_bound=0.01)
    rig = make_rig("single_arm", f"policy_path:={tmp_path / 'policy'}", policy=False)
    limits = spec.limits  # three quarters up each joint's range: away from zero, where +-0.01 absolute targets lie
    rig.position = limits.position_lower + 0.75 * (limits.position_upper - limits.position_lower)
    start_running(rig)
    for trajectory in rig.running_trajectories()[-3:]:
        positions = np.array([point.positions for point in trajectory.points])
        assert np.abs(positions - rig.position).max() <= 0.01 + 1e-6


@pytest.mark.parametrize("second", ["put it back", INSTRUCTION])  # the same instruction again: a new episode
def test_a_chunk_from_before_an_instruction_is_never_executed(make_rig, second):
    spec = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml")
    policy = RecordingPolicy(spec, delay=0.4)
    rig = make_rig("single_arm", policy=policy)
    assert rig.wait_for(lambda: policy.calls, timeout=10.0)
    rig.instruction.publish(String(data=second))  # while the first chunk is being computed
    assert rig.wait_for(lambda: policy.finished >= 2, timeout=10.0)
    rig.feed(0.2)
    assert policy.calls[0]["instruction"] == INSTRUCTION and policy.calls[1]["instruction"] == second
    assert rig.node._status.chunks_computed == policy.finished - 1  # the first one was discarded
    assert len(rig.chunks) == policy.finished - 1


def test_an_undecodable_compressed_frame_holds(make_rig):
    import io

    from PIL import Image as PILImage
    from sensor_msgs.msg import CompressedImage

    rig = make_rig("single_arm", "cameras.compressed:=true")
    publishers = [rig.io.create_publisher(CompressedImage, f"{c.topic}/compressed", 10) for c in rig.spec.cameras]
    buffer = io.BytesIO()
    PILImage.fromarray(rig.image).save(buffer, format="JPEG")
    rig.publish_cameras = False

    def feed_compressed(data: bytes):
        for publisher in publishers:
            publisher.publish(CompressedImage(format="jpeg", data=data))

    assert rig.wait_for(lambda: feed_compressed(buffer.getvalue()) or len(rig.running_trajectories()) >= 2)
    assert rig.wait_for(
        lambda: (
            feed_compressed(b"\xff\xd8 not a jpeg")
            or (rig.statuses and "does not decode" in rig.last_status().last_error)
        )
    ), f"last status: {rig.last_status().last_error!r}"
    assert rig.last_status().state == PolicyStatus.STATE_HOLDING


def test_chunk_preview_draws_each_joints_plan(make_rig):
    from visualization_msgs.msg import MarkerArray

    rig = make_rig("single_arm", "preview.enabled:=true", "preview.frame_id:=world")
    previews: list[MarkerArray] = []
    rig.io.create_subscription(MarkerArray, "/policy_node/chunk_preview", previews.append, 10)
    assert rig.wait_for(lambda: len(previews) >= 2 and len(rig.chunks) >= 2)
    spec, chunk = rig.spec, rig.chunks[-1]
    markers = previews[-1].markers
    assert [m.text for m in markers] == list(spec.joint_names)
    assert all(m.header.frame_id == "world" and len(m.points) == spec.chunk_length for m in markers)
    times = [p.x for p in markers[0].points]
    assert times == pytest.approx(spec.dt * np.arange(1, spec.chunk_length + 1))
    # The last preview and the last chunk may come from different inferences; both follow the recorded ramp.
    previewed = np.array([[p.y for p in m.points] for m in markers]).T
    actions = np.asarray(chunk.actions).reshape(spec.chunk_length, spec.dof)
    assert np.allclose(np.diff(previewed, axis=0), np.diff(actions, axis=0))
