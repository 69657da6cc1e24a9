"""`make demo`: FASTer in a closed loop on a simulated SO-101, built from nothing on this machine in minutes.

1. demonstrations: the simulator's scripted expert picks and places a cube (`faster data sim --env so101`);
2. FASTerVQ fitted on their action chunks (`faster tokenizer fit`);
3. a tiny FASTerVLA (random-init tiny PaliGemma, trained briefly) (`faster vla train`);
4. `sim_robot` (the simulator behind robot topics) and `policy_node` (that checkpoint) run as two ROS processes;
   this process restarts the episode once the policy is up, watches the topics and prints what happens: episode
   outcomes, trajectory rate, the latency breakdown and a few trajectory points.

Steps 1-3 are cached under --workdir: each reruns when its options (or an earlier step's run) changed, --fresh
rebuilds all three. The policy is small and trained for a few CPU-minutes: it moves the arm but is not expected to
finish the task; success rates belong to bench/closed_loop.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from faster_core.embodiment import Embodiment, resolve_config
from faster_core.stages import StageError, cached, finish, run_faster, stage, upstream
from faster_msgs.msg import PolicyStatus
from faster_ros.policy_node import STATE_NAMES

EMBODIMENT = "so101"
IMAGE_SIZE = 64  # rendered and seen by the policy; small, so the whole demo fits a 2-core machine


def build_checkpoint(workdir: Path, args: argparse.Namespace) -> Path:
    """Steps 1-3, each skipped when it already ran with the same options (and the same upstream run)."""
    from faster_core.data.sim.so101 import FRONT_CAMERA_POSITION, FRONT_CAMERA_TARGET

    data_dir, tokenizer_dir, policy_dir = workdir / "so101_demos", workdir / "tokenizer", workdir / "policy"
    data = {"episodes": args.episodes, "image_size": IMAGE_SIZE, "camera": [FRONT_CAMERA_POSITION, FRONT_CAMERA_TARGET]}
    if (hit := cached(data_dir, data)) is None:
        stage(f"1/4 recording {args.episodes} expert demonstrations in the SO-101 simulator")
        run_faster(["data", "sim", "--env", "so101", "--episodes", str(args.episodes), "--cameras", "front",
                    "--image-size", str(IMAGE_SIZE), "--out", str(data_dir)])  # fmt: skip
        hit = finish(data_dir, data, {})
    else:
        stage(f"1/4 demonstrations: cached in {data_dir}")
    tokenizer = {"data": upstream({"config": data, **hit}), "steps": args.tokenizer_steps}
    if (hit := cached(tokenizer_dir, tokenizer)) is None:
        stage(f"2/4 fitting FASTerVQ ({args.tokenizer_steps} steps)")
        run_faster(["tokenizer", "fit", "--data", str(data_dir), "--out", str(tokenizer_dir),
                    "--steps", str(args.tokenizer_steps), "--lr", "1e-3", "--batch-size", "64",
                    "--val-every", str(args.tokenizer_steps)])  # fmt: skip
        hit = finish(tokenizer_dir, tokenizer, {})
    else:
        stage(f"2/4 tokenizer: cached in {tokenizer_dir}")
    policy = {"tokenizer": upstream({"config": tokenizer, **hit}), "steps": args.policy_steps}
    if cached(policy_dir, policy) is None:
        stage(f"3/4 training a tiny FASTerVLA ({args.policy_steps} steps)")
        run_faster(["vla", "train", "--data", str(data_dir), "--tokenizer", str(tokenizer_dir),
                    "--out", str(policy_dir), "--steps", str(args.policy_steps), "--lr", "3e-4", "--warmup", "20",
                    "--batch-size", "8", "--image-size", str(IMAGE_SIZE), "--validation-samples", "16"])  # fmt: skip
        finish(policy_dir, policy, {})
    else:
        stage(f"3/4 policy: cached in {policy_dir}")
    return policy_dir


class Monitor:
    """Subscribes to what a robot integrator would watch."""

    def __init__(self, node, trajectory_topic: str):
        self.outcomes: list[dict] = []  # episodes begun after the restart, when the policy was up
        self.restart: dict | None = None  # the restart's own outcome (reason "reset"), once it has arrived
        self.printed = 0  # outcomes already reported
        self.status: PolicyStatus | None = None
        self.trajectories: list[tuple[float, JointTrajectory]] = []
        node.create_subscription(String, "/sim_robot/outcome", self._on_outcome, 10)
        node.create_subscription(PolicyStatus, "/policy_node/status", self._on_status, 10)
        node.create_subscription(JointTrajectory, trajectory_topic, self._on_trajectory, 10)

    def _on_outcome(self, message: String) -> None:
        """One publisher sends them in order: whatever follows the restart's outcome ran under the policy."""
        outcome = json.loads(message.data)
        if outcome["reason"] == "reset":
            self.restart = outcome
        elif self.restart is not None:
            self.outcomes.append(outcome)

    def _on_status(self, message: PolicyStatus) -> None:
        self.status = message

    def _on_trajectory(self, message: JointTrajectory) -> None:
        if message.points:
            self.trajectories.append((time.monotonic(), message))


def closed_loop(policy: Path, args: argparse.Namespace) -> int:
    stage(f"4/4 closed loop: sim_robot + policy_node, {args.eval_episodes} episodes of up to {args.max_steps} steps")
    config = str(resolve_config(EMBODIMENT))
    common = ["--ros-args", "--params-file", config, "--log-level", "warn"]
    robot = ["max_steps", args.max_steps, "image_size", IMAGE_SIZE, "seed", args.seed]
    # Timeouts looser than on hardware: simulator, policy and this monitor share two CPU cores.
    policy_node = ["policy_path", policy, "seed", args.seed, "image_timeout_s", 1.0, "joint_state_timeout_s", 0.5]
    processes = [
        subprocess.Popen([sys.executable, "-m", f"faster_ros.{name}", *common, *_overrides(values)])
        for name, values in (("sim_robot", robot), ("policy_node", policy_node))
    ]
    try:
        with rclpy.init():
            node = rclpy.create_node("demo_monitor")
            monitor = Monitor(node, _trajectory_topic(config))
            restart = node.create_client(Trigger, "/sim_robot/reset")
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            started, last_report = time.monotonic(), time.monotonic()
            deadline = started + args.eval_episodes * (args.max_steps * 0.1 + 5) + 60
            restart_requested = False
            while len(monitor.outcomes) < args.eval_episodes and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                # The simulator runs in real time from its start; a policy loading on a busy machine would miss the
                # first episode. Once the policy reports, start a fresh one and count from there.
                if not restart_requested and monitor.status is not None and restart.service_is_ready():
                    restart.call_async(Trigger.Request())
                    restart_requested = True
                if any(p.poll() is not None for p in processes):
                    print("demo: a node exited early", file=sys.stderr)
                    return 1
                if time.monotonic() - last_report >= 2.0:
                    last_report = time.monotonic()
                    _report(monitor, time.monotonic() - started)
            _summary(monitor, args.eval_episodes)
            node.destroy_node()
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0 if len(monitor.outcomes) >= args.eval_episodes else 1


def _overrides(pairs: list) -> list[str]:
    """[name, value, ...] -> ["-p", "name:=value", ...]"""
    return [item for name, value in zip(pairs[::2], pairs[1::2], strict=True) for item in ("-p", f"{name}:={value}")]


def _trajectory_topic(config: str) -> str:
    return Embodiment.from_yaml(config).topics.trajectory


def _report(monitor: Monitor, elapsed: float) -> None:
    recent = [t for t, _ in monitor.trajectories if t > time.monotonic() - 2.0]
    status = monitor.status
    if status is None:
        print(f"t={elapsed:5.1f}s  waiting for the policy node", flush=True)
        return
    line = (
        f"t={elapsed:5.1f}s  {STATE_NAMES[status.state]:<8} trajectories {len(recent) / 2.0:4.1f}/s  "
        f"latency ms: preprocess {status.preprocess_ms:.1f}  prefix {status.prefix_ms:.1f}  "
        f"decode {status.decode_ms:.1f} ({status.decoder_forward_passes} passes)  "
        f"detokenize {status.detokenize_ms:.1f}  total {status.total_ms:.1f}"
    )
    print(line + (f"  [{status.last_error}]" if status.last_error else ""), flush=True)
    for outcome in monitor.outcomes[monitor.printed :]:
        print(f"episode {outcome['episode']}: {'SUCCESS' if outcome['success'] else outcome['reason']}", flush=True)
    monitor.printed = len(monitor.outcomes)


def _summary(monitor: Monitor, episodes: int) -> None:
    print("\n== summary")
    for outcome in monitor.outcomes:
        verdict = "SUCCESS" if outcome["success"] else f"failure ({outcome['reason']})"
        progress = (
            f"closest gripper-cube {outcome['closest_approach_m'] * 100:.1f} cm, cube "
            f"{'lifted' if outcome['lifted'] else 'not lifted'}, {outcome['block_to_goal_m'] * 100:.1f} cm from goal"
        )
        print(f"episode {outcome['episode']}: {verdict} after {outcome['steps']} steps ({progress})")
    successes = sum(o["success"] for o in monitor.outcomes)
    print(f"episodes {len(monitor.outcomes)}/{episodes}, successes {successes}")
    if monitor.status is not None:
        s = monitor.status
        print(
            f"chunks computed {s.chunks_computed}, trajectories published {s.trajectories_published}, "
            f"dropped inputs {s.dropped_messages}, stale ticks {s.stale_ticks}, model errors {s.model_errors}, "
            f"missed ticks {s.missed_ticks}"
        )
    if monitor.trajectories:
        _, last = monitor.trajectories[-1]
        print(f"last trajectory ({len(last.points)} points) for {list(last.joint_names)}:")
        for point in last.points[:3]:
            t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            print(f"  t+{t:.2f}s  positions {np.array2string(np.asarray(point.positions), precision=3)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("artifacts/demo"))
    parser.add_argument("--fresh", action="store_true", help="rebuild data, tokenizer and policy")
    parser.add_argument("--episodes", type=int, default=12, help="expert demonstrations to record")
    parser.add_argument("--tokenizer-steps", type=int, default=400)
    parser.add_argument("--policy-steps", type=int, default=200)
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=60, help="simulator steps (0.1 s) per episode")
    parser.add_argument("--seed", type=int, default=1000, help="first evaluation episode's seed")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        sys.exit("demo: run it after `source env.sh` (DDS discovery must stay on this machine)")
    if args.fresh:
        shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        policy = build_checkpoint(args.workdir, args)
    except StageError as error:
        sys.exit(f"demo: {error}")
    return closed_loop(policy, args)


if __name__ == "__main__":
    sys.exit(main())
