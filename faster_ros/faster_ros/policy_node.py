"""The policy node: cameras + joint states + instruction in, a safe JointTrajectory out at the control rate.

Inference runs on its own thread, back to back, on a snapshot of the latest inputs, each time every camera and the
joint state have sent a newer message than the last snapshot holds; a timer publishes at the embodiment's control
rate from the latest plan, after skipping what inference latency consumed: each new chunk is averaged with the
earlier predictions for the same times (``ensemble.enabled``, temporal ensembling) or cross-faded over the previous
chunk (``blend_steps``); with ``replan_steps`` > 1 a chunk drives the robot for that many actions before a newer one
joins the plan (every computed chunk is still published on ``~/action_chunk``). Every tick re-checks
the inputs: anything missing, stale, NaN or malformed holds the robot (an empty trajectory, which makes
joint_trajectory_controller stop and hold position) and the status names the cause. A latched e-stop does the same
until ``~/reset_estop`` is called. The node never dies on bad input or a model error.

All ROS callbacks are short (a frame or joint state is only checked and cached; conversion happens on the inference
thread), so one SingleThreadedExecutor serves them all. rclpy's Python MultiThreadedExecutor was measured to starve
the control timer here: with three 30 Hz cameras its polling used the cores and ticks came late (bench/node.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from faster_core.control import (
    ActionSchedule,
    CommandLimiter,
    JointStateCache,
    MissingJointsError,
    StaleJointsError,
    TrajectoryFollower,
    default_replan_steps,
)
from faster_core.images import check_image, to_rgb
from faster_msgs.msg import ActionChunk, PolicyStatus
from faster_ros.parameters import declare_embodiment
from faster_ros.qos import LATCHED
from faster_ros.spinning import run_node

STATE_NAMES = {
    PolicyStatus.STATE_IDLE: "idle",
    PolicyStatus.STATE_RUNNING: "running",
    PolicyStatus.STATE_HOLDING: "holding",
    PolicyStatus.STATE_ESTOPPED: "estopped",
    PolicyStatus.STATE_ERROR: "error",
}


class InputProblemError(Exception):
    """Inputs cannot be used now; ``idle`` means nothing is wrong yet, we are only waiting for the first data."""

    def __init__(self, message: str, *, idle: bool = False, stale: bool = False):
        super().__init__(message)
        self.idle, self.stale = idle, stale


@dataclass
class _Frame:
    message: Image | CompressedImage | None
    received_at: float
    rejected: str = ""  # why the last frame was refused; the camera holds the robot until a good frame arrives


@dataclass
class _Observation:
    taken_at: float  # receive time of its oldest input: the actions are due from then on
    epoch: int
    images: dict[str, np.ndarray]
    state: np.ndarray
    instruction: str
    stamps: list


def _descriptor(description: str, *, read_only: bool = False, integers=None, floats=None) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if integers:
        descriptor.integer_range = [IntegerRange(from_value=integers[0], to_value=integers[1], step=1)]
    if floats:
        descriptor.floating_point_range = [FloatingPointRange(from_value=floats[0], to_value=floats[1])]
    return descriptor


class PolicyNode(Node):
    def __init__(self, *, policy=None, **node_kwargs):
        """``policy``: an already loaded object with ``predict(images, state, instruction)``; else ``policy_path``."""
        super().__init__("policy_node", **node_kwargs)
        spec = self.embodiment = declare_embodiment(self)
        horizon = spec.chunk_length
        self._declare_parameters(horizon)

        self._lock = threading.Lock()  # input caches, schedule and counters
        self._command_lock = threading.Lock()  # one trajectory decision at a time (timer and inference thread)
        # Sources (cameras, "joint_states") with a message newer than the last observation inferred on; inference
        # waits until all have one, so it never recomputes an old observation or mixes one source's new message with
        # another's old one (under lock-step simulation a frame and the joint state of one step arrive one by one).
        self._sources = {*(camera.name for camera in spec.cameras), "joint_states"}
        self._renewed: set[str] = set()
        self._inputs_renewed = threading.Event()
        self._frames = {camera.name: _Frame(None, -np.inf) for camera in spec.cameras}
        self._joints = JointStateCache(spec.joint_names)
        self._joint_error = ""
        self._joint_stamp = None
        self._instruction = ""
        self._instruction_error = ""
        self._estopped = False
        self._schedule = ActionSchedule(
            dt=spec.dt,
            blend_steps=self._param("blend_steps"),
            replan_steps=self._param("replan_steps"),
            ensemble_coeff=self._param("ensemble.coeff") if self._param("ensemble.enabled") else None,
        )
        self._limiter = CommandLimiter(spec.limits, period=spec.dt, velocity_scale=self._param("velocity_scale"))
        # What the controller is commanding, as joint_trajectory_controller runs our last trajectory; None when
        # unknown (nothing sent yet, or a hold, reset or restart since), and the limiter starts from the joints.
        self._controller: TrajectoryFollower | None = None
        self._status = PolicyStatus(state=PolicyStatus.STATE_IDLE)
        self._holding_sent = False
        self._last_tick: float | None = None
        # Bumped whenever the plan is thrown away (hold, e-stop, reset, new instruction): a chunk computed from an
        # observation taken before that must not be executed after it.
        self._epoch = 0

        if policy is not None and (mismatch := self._mismatch(policy.embodiment)):
            raise ValueError(f"the given policy does not fit this robot: {mismatch}")

        compressed = self._param("cameras.compressed")
        for camera in spec.cameras:
            msg_type, topic = (CompressedImage, f"{camera.topic}/compressed") if compressed else (Image, camera.topic)
            self.create_subscription(msg_type, topic, self._image_callback(camera.name), qos_profile_sensor_data)
        self.create_subscription(JointState, spec.topics.joint_states, self._on_joint_state, qos_profile_sensor_data)
        self.create_subscription(String, spec.topics.instruction, self._on_instruction, LATCHED)
        self.create_subscription(Bool, "~/estop", self._on_estop, LATCHED)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop)

        self._trajectory_pub = self.create_publisher(JointTrajectory, spec.topics.trajectory, 10)
        self._chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", 10)
        self._status_pub = self.create_publisher(PolicyStatus, "~/status", 10)
        self._preview_pub = (
            self.create_publisher(MarkerArray, "~/chunk_preview", 1) if self._param("preview.enabled") else None
        )
        self.create_timer(spec.dt, self._tick)

        self._policy = policy
        if self._policy is None:
            self._load_policy()  # after the publishers: a failure is reported on ~/status
        if self._policy is not None:  # sampling on the policy's device, reproducible from the seed parameter
            self._generator = torch.Generator(device=self._param("device")).manual_seed(self._param("seed"))
        self._running = True
        self._worker = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{spec.name}: {spec.dof} joints at {spec.control_rate_hz:g} Hz -> {spec.topics.trajectory}"
            + (" (dry run: no trajectories)" if self._param("dry_run") else "")
        )

    # ----------------------------------------------------------------------------------------------- parameters
    def _declare_parameters(self, horizon: int) -> None:
        self.declare_parameter(
            "policy_path", "", _descriptor("FASTerVLA checkpoint directory (save_pretrained)", read_only=True)
        )
        self.declare_parameter("device", "cpu", _descriptor("torch device for the policy", read_only=True))
        self.declare_parameter(
            "greedy", True, _descriptor("argmax codes instead of the checkpoint's top-k sampling", read_only=True)
        )
        self.declare_parameter("seed", 0, _descriptor("seed for sampling action codes", read_only=True))
        self.declare_parameter(
            "cameras.compressed", False, _descriptor("subscribe to <topic>/compressed", read_only=True)
        )
        self.declare_parameter(
            "execution_horizon",
            horizon,
            _descriptor("trajectory points published per tick", integers=(1, horizon)),
        )
        self.declare_parameter(
            "ensemble.enabled",
            True,
            _descriptor("average each new chunk with the earlier predictions for the same times", read_only=True),
        )
        self.declare_parameter(
            "ensemble.coeff",
            0.01,
            _descriptor(
                "the k-th prediction of a time (0 the oldest) weighs exp(-coeff k)", read_only=True, floats=(-1.0, 1.0)
            ),
        )
        self.declare_parameter(
            "blend_steps",
            min(3, horizon - 1),
            _descriptor(
                "without ensembling: actions over which a new chunk fades in over the previous one",
                read_only=True,
                integers=(0, horizon),
            ),
        )
        self.declare_parameter(
            "replan_steps",
            default_replan_steps(horizon, ensemble=self._param("ensemble.enabled")),
            _descriptor(
                "actions of a chunk executed before a newer chunk joins the plan", read_only=True, integers=(1, horizon)
            ),
        )
        self.declare_parameter(
            "velocity_scale",
            1.0,
            _descriptor("fraction of each joint's velocity limit allowed", read_only=True, floats=(0.01, 1.0)),
        )
        self.declare_parameter(
            "image_timeout_s", 0.5, _descriptor("hold when a camera's latest frame is older", floats=(0.01, 10.0))
        )
        self.declare_parameter(
            "joint_state_timeout_s", 0.2, _descriptor("hold when a joint's latest state is older", floats=(0.005, 10.0))
        )
        self.declare_parameter(
            "max_instruction_chars", 1000, _descriptor("longer instructions are refused", integers=(1, 100_000))
        )
        self.declare_parameter(
            "dry_run", False, _descriptor("compute and publish ActionChunk, but no trajectory", read_only=True)
        )
        self.declare_parameter(
            "preview.enabled",
            False,
            _descriptor("publish each chunk as RViz line strips on ~/chunk_preview", read_only=True),
        )
        self.declare_parameter("preview.frame_id", "base_link", _descriptor("frame the preview is drawn in"))
        self.declare_parameter(
            "preview.seconds_to_m", 1.0, _descriptor("preview x axis: metres per second of plan", floats=(0.01, 10.0))
        )

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _load_policy(self) -> None:
        path = self._param("policy_path")
        if not path:
            self._fail("no policy: set policy_path to a FASTerVLA checkpoint directory")
            return
        try:
            from faster_core.policy import FASTerVLA

            policy = FASTerVLA.from_pretrained(path, device=self._param("device"))
        except Exception as error:
            self._fail(f"cannot load policy from {path}: {error}")
            return
        mismatch = self._mismatch(policy.embodiment)
        if mismatch:
            self._fail(f"policy {path} does not fit this robot: {mismatch}")
            return
        self.get_logger().info(
            f"policy {path}: {policy.tokenizer.kind} tokens, {policy.tokenizer.config.action_mode} actions"
        )
        self._policy = policy

    def _mismatch(self, trained) -> str:
        """Why a policy trained for ``trained`` cannot drive this embodiment, or ''."""
        spec = self.embodiment
        for field in ("joint_names", "camera_names", "chunk_length", "control_rate_hz"):
            if getattr(trained, field) != getattr(spec, field):
                return f"{field} {getattr(trained, field)} != {getattr(spec, field)}"
        return ""

    def _fail(self, message: str) -> None:
        self.get_logger().error(message)
        self._set_state(PolicyStatus.STATE_ERROR, message)

    # --------------------------------------------------------------------------------------------------- inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _image_callback(self, camera: str):
        def on_image(message: Image | CompressedImage) -> None:
            try:
                check_image(message)
            except ValueError as error:
                with self._lock:
                    self._frames[camera] = _Frame(None, self._now(), rejected=str(error))
                    self._status.dropped_messages += 1
                return
            now = self._now()
            if now <= 0.0:  # use_sim_time before the first /clock: no time to age it by; the next frame counts
                return
            with self._lock:
                self._frames[camera] = _Frame(message, now)
                self._renew(camera)

        return on_image

    def _on_joint_state(self, message: JointState) -> None:
        now = self._now()
        if now <= 0.0:  # as for frames: received before the simulated clock started, it would read as stale
            return
        with self._lock:
            try:
                self._joints.update(message.name, message.position, now)
            except ValueError as error:
                self._joint_error = str(error)
                self._status.dropped_messages += 1
                return
            self._joint_error = ""
            self._joint_stamp = message.header.stamp
            self._renew("joint_states")

    def _renew(self, source: str) -> None:
        """Call with the lock held."""
        self._renewed.add(source)
        if self._renewed == self._sources:
            self._inputs_renewed.set()

    def _on_instruction(self, message: String) -> None:
        text = message.data.strip()
        limit = self._param("max_instruction_chars")
        with self._lock:
            if not text or len(text) > limit:
                # A refused instruction also retires the old one: the operator meant to change the task.
                self._instruction = ""
                self._discard_plan()
                self._instruction_error = (
                    "instruction is empty" if not text else f"instruction has {len(text)} characters (limit {limit})"
                )
                self._status.dropped_messages += 1
            else:  # a new task, or the same one started again (a new episode): nothing planned before carries over
                self._instruction, self._instruction_error = text, ""
                self._discard_plan()

    def _on_estop(self, message: Bool) -> None:
        if message.data:
            # Under the command lock: a trajectory being decided right now goes out before the stop, never after.
            with self._command_lock:
                with self._lock:
                    self._estopped = True
                    self._discard_plan()
                self._hold(PolicyStatus.STATE_ESTOPPED, "e-stop engaged; call ~/reset_estop to resume")

    def _on_reset_estop(self, _request, response: Trigger.Response) -> Trigger.Response:
        with self._command_lock:
            with self._lock:
                was_estopped, self._estopped = self._estopped, False
                self._discard_plan()
            if was_estopped:
                self._set_state(PolicyStatus.STATE_IDLE, "")
        response.success = True
        response.message = "e-stop released; waiting for a fresh chunk" if was_estopped else "e-stop was not engaged"
        return response

    def _discard_plan(self) -> None:
        """Forget the running plan and any chunk still being computed. Call with the lock held."""
        self._schedule.clear()
        self._controller = None
        self._epoch += 1

    def _input_problem(self, now: float) -> InputProblemError | None:
        """Why the current inputs may not drive the robot, or None. Call with the lock held."""
        if now <= 0.0:
            return InputProblemError("waiting for the clock (use_sim_time without /clock?)", idle=True)
        if self._instruction_error:
            return InputProblemError(self._instruction_error)
        if not self._instruction:
            return InputProblemError("waiting for an instruction", idle=True)
        timeout = self._param("image_timeout_s")
        for camera, frame in self._frames.items():
            if frame.rejected:
                return InputProblemError(f"camera {camera!r}: {frame.rejected}")
            if frame.message is None:
                return InputProblemError(f"waiting for camera {camera!r}", idle=True)
            if now - frame.received_at > timeout:
                return InputProblemError(
                    f"camera {camera!r} stale: {now - frame.received_at:.3f} s > {timeout:.3f} s", stale=True
                )
        if self._joint_error:
            return InputProblemError(f"joint state refused: {self._joint_error}")
        try:
            self._joints.positions(now, self._param("joint_state_timeout_s"))
        except StaleJointsError as error:
            return InputProblemError(str(error), stale=True)
        except MissingJointsError as error:
            idle = len(self._joints.missing()) == self.embodiment.dof and not self._joints.unknown_names
            return InputProblemError(str(error), idle=idle)
        return None

    # ------------------------------------------------------------------------------------------------ inference
    def _snapshot(self) -> _Observation:
        with self._lock:
            now = self._now()
            problem = self._input_problem(now)
            if problem:
                raise problem
            messages = {camera: frame.message for camera, frame in self._frames.items()}
            state = self._joints.positions(now, self._param("joint_state_timeout_s"))
            observed_at = min(self._joints.oldest(), *(frame.received_at for frame in self._frames.values()))
            instruction, epoch = self._instruction, self._epoch
            stamps = [m.header.stamp for m in messages.values()] + [self._joint_stamp]
            self._renewed.clear()
            self._inputs_renewed.clear()
        images = {}
        for camera, message in messages.items():
            try:
                images[camera] = to_rgb(message)
            except ValueError as error:  # a frame that passed the arrival check but does not decode
                with self._lock:
                    if self._frames[camera].message is message:
                        self._frames[camera] = _Frame(None, now, rejected=str(error))
                        self._status.dropped_messages += 1
                raise InputProblemError(f"camera {camera!r}: {error}") from error
        return _Observation(observed_at, epoch, images, state, instruction, stamps)

    def _inference_loop(self) -> None:
        """Replan at most once per control period (a faster model gains nothing from more plans than ticks), and only
        once every input has a message newer than the last observation's."""
        period, started = self.embodiment.dt, -np.inf
        while self._running and self.context.ok():
            time.sleep(max(0.0, started + period - time.perf_counter()))
            if not self._inputs_renewed.wait(timeout=period):
                continue
            started = time.perf_counter()
            if self._policy is None or self._estopped:
                continue
            try:
                observation = self._snapshot()
            except InputProblemError:
                continue  # the tick reports the problem and holds
            try:
                self._infer(observation, started)
            except Exception as error:  # the thread must outlive any failure, and the robot must hold
                if not self.context.ok():  # shutting down: publishers are gone
                    return
                self._model_failed(f"inference step failed: {error}")

    def _infer(self, observation: _Observation, started: float) -> None:
        try:
            result = self._policy.predict(
                images=observation.images,
                state=observation.state,
                instruction=observation.instruction,
                greedy=self._param("greedy"),
                generator=self._generator,
            )
            targets = self._targets(np.asarray(result.actions, dtype=np.float64))
        except Exception as error:  # a model failure holds the robot; the node stays up
            self._model_failed(f"model error: {error}")
            return
        ready_at = self._now()
        with self._lock:
            if self._estopped or observation.epoch != self._epoch:
                return  # the plan was discarded while this chunk was computed
            self._schedule.push(targets, observed_at=observation.taken_at, ready_at=ready_at)
            status = self._status
            status.chunks_computed += 1
            timing = result.timing
            status.preprocess_ms = timing.preprocess_ms
            status.prefix_ms = timing.prefix_ms
            status.decode_ms = timing.decode_ms
            status.detokenize_ms = timing.detokenize_ms
            status.total_ms = (time.perf_counter() - started) * 1e3  # with snapshot and conversion
            status.decoder_forward_passes = result.forward_passes
        self._chunk_pub.publish(self._chunk_message(observation, targets, result))
        if self._preview_pub is not None:
            self._preview_pub.publish(self._preview(targets))
        self._publish_status()
        with self._command_lock:  # a fresh plan reaches the robot now, not up to one period later
            self._command(self._now())

    def _model_failed(self, reason: str) -> None:
        with self._command_lock:
            with self._lock:
                self._status.model_errors += 1
                self._discard_plan()
            self.get_logger().error(reason, throttle_duration_sec=5.0)
            self._hold(PolicyStatus.STATE_HOLDING, reason)

    def _targets(self, actions: np.ndarray) -> np.ndarray:
        """The policy's absolute joint targets (a delta-mode policy adds the observed state itself), checked."""
        spec = self.embodiment
        if actions.shape != (spec.chunk_length, spec.dof):
            raise ValueError(
                f"policy returned actions of shape {actions.shape}, expected {(spec.chunk_length, spec.dof)}"
            )
        if not np.all(np.isfinite(actions)):
            raise ValueError("policy returned NaN/inf actions")
        return actions

    def _chunk_message(self, observation: _Observation, targets: np.ndarray, result) -> ActionChunk:
        spec = self.embodiment
        codes = np.asarray(result.codes, dtype=np.int64)
        message = ActionChunk(
            embodiment=spec.name,
            joint_names=list(spec.joint_names),
            horizon=spec.chunk_length,
            action_dim=spec.dof,
            dt=spec.dt,
            tokenizer=self._policy.tokenizer.kind,
            codes_shape=list(codes.shape),
            codes=codes.ravel().astype(np.int32).tolist(),
            actions=targets.ravel().tolist(),
            observation_sources=[*spec.camera_names, "joint_states"],
            observation_stamps=[s for s in observation.stamps if s is not None],
        )
        message.header.stamp = self.get_clock().now().to_msg()
        return message

    def _preview(self, targets: np.ndarray) -> MarkerArray:
        """The chunk in joint space, one line strip per joint: x is time (``preview.seconds_to_m``), y the target
        position in rad, joints stacked 0.1 m apart along z. Joint space needs no URDF or forward kinematics."""
        spec = self.embodiment
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._param("preview.frame_id"))
        seconds_to_m = self._param("preview.seconds_to_m")
        markers = MarkerArray()
        for index, name in enumerate(spec.joint_names):
            marker = Marker(
                header=header, ns=f"{self.get_name()}/chunk", id=index, type=Marker.LINE_STRIP, action=Marker.ADD
            )
            marker.text = name
            marker.pose.orientation.w = 1.0
            marker.scale.x = 0.01  # line width, m
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = 0.1, 0.6, 1.0, 1.0
            marker.lifetime = Duration(sec=1)  # a stalled policy leaves no stale plan on screen
            for step, position in enumerate(targets[:, index]):
                marker.points.append(Point(x=(step + 1) * spec.dt * seconds_to_m, y=float(position), z=0.1 * index))
            markers.markers.append(marker)
        return markers

    # --------------------------------------------------------------------------------------------------- output
    def _tick(self) -> None:
        now = self._now()
        period = self.embodiment.dt
        with self._command_lock:
            with self._lock:
                if self._last_tick is not None and now < self._last_tick:
                    # The clock jumped back (a simulator reset): every input time and the plan are meaningless.
                    self._joints.clear()
                    for camera in self._frames:
                        self._frames[camera] = _Frame(None, -np.inf)
                    self._discard_plan()
                elif self._last_tick is not None and now - self._last_tick > 2 * period:
                    self._status.missed_ticks += int((now - self._last_tick) / period) - 1
                self._last_tick = now
            self._command(now)

    def _command(self, now: float) -> None:
        """Publish the next actions of the plan, or hold; runs on every tick and as soon as a new chunk lands."""
        if self._status.state == PolicyStatus.STATE_ERROR and self._policy is None:
            return
        with self._lock:
            if self._estopped:
                return
            problem = self._input_problem(now)
            if problem is None:
                times, actions = self._schedule.upcoming(now, limit=self._param("execution_horizon"))
                measured = self._joints.positions(now, self._param("joint_state_timeout_s"))
                commanded = None if self._controller is None else self._controller.target(now)
            else:
                self._discard_plan()
                if problem.stale:
                    self._status.stale_ticks += 1
                elif not problem.idle:
                    self._status.invalid_ticks += 1
        if problem is not None:
            state = PolicyStatus.STATE_IDLE if problem.idle else PolicyStatus.STATE_HOLDING
            self._hold(state, "" if problem.idle else str(problem))
            return
        if len(times) == 0:
            return  # the first chunk is still being computed
        points = self._limiter.apply(times, actions, measured=measured, commanded=commanded)
        self._set_state(PolicyStatus.STATE_RUNNING, "")
        if points.clipped:
            with self._lock:
                self._status.limited_commands += 1
        if self._param("dry_run"):
            return
        self._trajectory_pub.publish(self._trajectory(points))
        self._holding_sent = False
        with self._lock:
            self._status.trajectories_published += 1
            if self._controller is None:
                self._controller = TrajectoryFollower(measured if commanded is None else commanded)
            self._controller.accept(points.time_from_start, points.positions, received_at=now)

    def _trajectory(self, points) -> JointTrajectory:
        # header.stamp stays 0: joint_trajectory_controller starts a zero-stamped trajectory on arrival.
        message = JointTrajectory(joint_names=list(self.embodiment.joint_names))
        for t, q, v in zip(points.time_from_start, points.positions, points.velocities, strict=True):
            seconds = int(t)
            message.points.append(
                JointTrajectoryPoint(
                    positions=q.tolist(),
                    velocities=v.tolist(),
                    time_from_start=Duration(sec=seconds, nanosec=round((t - seconds) * 1e9)),
                )
            )
        return message

    def _hold(self, state: int, reason: str) -> None:
        """Stop the controller once per hold (an empty trajectory), then publish nothing until inputs are good.

        Call with the command lock held. An e-stop stays the reported state until it is reset.
        """
        if self._estopped and state != PolicyStatus.STATE_ESTOPPED:
            return
        if not self._holding_sent and not self._param("dry_run"):
            self._trajectory_pub.publish(JointTrajectory(joint_names=list(self.embodiment.joint_names)))
            self._holding_sent = True
        self._set_state(state, reason)

    def _set_state(self, state: int, reason: str) -> None:
        changed = state != self._status.state or reason != self._status.last_error
        self._status.state, self._status.last_error = state, reason
        if changed:
            if reason:
                self.get_logger().warning(f"{STATE_NAMES[state]}: {reason}", throttle_duration_sec=2.0)
            self._publish_status()

    def _publish_status(self) -> None:
        self._status.header.stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(self._status)

    def destroy_node(self) -> None:
        self._running = False
        worker = getattr(self, "_worker", None)  # absent when the constructor failed
        if worker is not None and worker.is_alive():
            worker.join(timeout=5.0)
        super().destroy_node()


def main(args=None) -> None:
    run_node(PolicyNode, args)


if __name__ == "__main__":
    main()
