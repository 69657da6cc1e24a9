"""Closed-loop benchmark on the simulated SO-101: FASTerVQ vs FAST vs bins inside FASTerVLA, end to end through ROS.

The scripted user flow, one stage at a time (each cached under ``--out``; a rerun skips every stage whose inputs
and options are unchanged):

1. record: ``sim_robot mode:=expert`` + ``episode_recorder``; per episode ``/sim_robot/reset``, then
   ``/episode_recorder/start`` as soon as the reset's outcome arrives (before the new episode's first frame is
   rendered), ``/episode_recorder/stop`` with the success of the episode's ``/sim_robot/outcome``: one mcap bag per
   episode, checked to start with that episode's first observation (else recorded again); ``--record-jobs`` pairs
   record side by side in real time, each on a ROS domain and a seed range of its own;
2. convert: ``faster_core.data.bags.convert_bags`` on the successful bags (actions = the recorded trajectory topic),
   this run's and those of the runs ``--add-bags-from`` names (recorded with the same options on other seeds);
3. tokenizers: FASTerVQ, FAST (one DCT scale, ``--fast-scale``) and 256 uniform bins, fitted on the same dataset
   in one action mode (``--action-mode``: absolute joint targets, or deltas from the observed state);
4. policies: three FASTerVLA (tiny-paligemma, random init), same data, steps, batch, learning rate, image
   augmentation and seed; only the tokenizer differs (``--jobs`` trainings run at once, one process each);
5. evaluate: per policy, ``sim_robot clock:=lockstep`` + ``policy_node use_sim_time:=true greedy:=<--greedy>
   ensemble.enabled:=<--ensemble> replan_steps:=<--replan-steps>`` on held-out seeds (``--eval-seed`` + 1 ..;
   recorded episodes use odd offsets from each shard's first seed, ``--record-seed`` for the first, all checked to stay
   below ``--eval-seed``);
6. one table: tokens per chunk, success k/M, mean episode steps, decoder passes, latency medians (prefix, decode,
   detokenize, total, from ``/policy_node/status``, one sample per computed chunk) and training minutes.

    source env.sh && ROS_DOMAIN_ID=173 python bench/closed_loop.py --episodes 24 --eval-episodes 5

Every node runs as its own process (logs under ``--out``/logs) on the caller's ROS_DOMAIN_ID (a random one in
150-199 if unset; recording shard k on that + k), loopback-only discovery required. torch runs ``--threads``
intra-op threads in this process and in the nodes (default 1: on a shared 2-core machine two spinning OpenMP
threads make training many times slower).
Exit status: 0 when every stage finished, 1 when a stage failed, 130 when interrupted; every started process is
stopped with SIGINT, then killed after a timeout, on every path.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import torch
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String
from std_srvs.srv import Trigger
from tqdm import tqdm

from faster_core.control import default_replan_steps
from faster_core.data.chunks import ACTION_MODES
from faster_core.embodiment import Embodiment, resolve_config
from faster_core.stages import StageError, cached, finish, run_faster, stage, upstream
from faster_msgs.msg import PolicyStatus
from faster_msgs.srv import StartEpisode, StopEpisode
from faster_ros.demo import Monitor, _overrides, _trajectory_topic

EMBODIMENT = "so101"
KINDS = ("fastervq", "fast", "bins")
LABELS = {"fastervq": "FASTerVQ", "fast": "FAST", "bins": "bins"}
BACKBONE = "tiny-paligemma"
STOP_TIMEOUT_S = 15.0  # SIGINT, then kill
MAX_DOMAIN_ID = 232  # the largest ROS_DOMAIN_ID DDS maps to ports


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------------- processes
class Nodes:
    """ROS nodes as child processes; on exit (any exit) SIGINT to each, then kill after a timeout."""

    def __init__(self, log_dir: Path, threads: int, params_file: Path, domain_id: int | None = None):
        self.log_dir = log_dir
        self.params_file = params_file
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if domain_id is not None:
            self.env["ROS_DOMAIN_ID"] = str(domain_id)
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[Any] = []

    def start(self, label: str, node: str, overrides: list) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{label}.log").open("w")
        self._logs.append(log)
        command = [sys.executable, "-m", f"faster_ros.{node}", "--ros-args", "--params-file",
                   str(self.params_file), "--log-level", "warn", *_overrides(overrides)]  # fmt: skip
        self.processes[label] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def check(self) -> None:
        for label, process in self.processes.items():
            if process.poll() is not None:
                raise StageError(f"{label} exited with status {process.returncode}:\n{self.tail(label)}")

    def tail(self, label: str, lines: int = 15) -> str:
        path = self.log_dir / f"{label}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(f"  | {line}" for line in text[-lines:]) + f"\n  (log: {path})"

    def __enter__(self) -> Nodes:
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for label, process in self.processes.items():
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"{label} ignored SIGINT for {STOP_TIMEOUT_S:g} s: killing it", file=sys.stderr)
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()


class Ros:
    """This process's node in one ROS context: spin until a condition holds, call services, while watching the
    child processes (and ``stop``, set when another recording shard failed or the run was interrupted)."""

    def __init__(self, name: str, nodes: Nodes, context: rclpy.Context, stop: threading.Event):
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.nodes = nodes
        self.stop = stop

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise StageError(f"timed out after {timeout:g} s waiting for {what}")
            if self.stop.is_set():
                raise StageError(f"stopped while waiting for {what}")
            self.nodes.check()
            self.executor.spin_once(timeout_sec=0.02)

    def client(self, srv_type: type, name: str, timeout: float = 60.0):
        client = self.node.create_client(srv_type, name)
        self.spin_until(client.service_is_ready, timeout, f"service {name}")
        return client

    def call(self, client, request, timeout: float = 10.0):
        future = client.call_async(request)
        self.spin_until(future.done, timeout, f"a response from {client.srv_name}")
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@contextlib.contextmanager
def _ros_session(name: str, nodes: Nodes, domain_id: int | None = None, stop: threading.Event | None = None):
    """A context of its own (on ``domain_id``, default ROS_DOMAIN_ID), so recording shards can run in threads; no
    rclpy signal handlers: Ctrl-C is a KeyboardInterrupt in the main thread, which stops the shards."""
    context = rclpy.Context()
    with rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO):
        ros = Ros(name, nodes, context, stop or threading.Event())
        try:
            yield ros
        finally:
            ros.close()


# ------------------------------------------------------------------------------------------------ 1. recording
def record(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``--record-jobs`` shards record at once, each a sim_robot + episode_recorder pair on a ROS domain of its own
    (ROS_DOMAIN_ID + shard), driven by a thread of this process: the simulator runs in real time, as a robot does, so
    pairs side by side multiply the episodes per minute until the CPU is full; then the simulator falls behind its
    clock and the converter's control-rate ticks repeat or skip observations (the convert stage prints simulator
    minus converted steps per episode: -1 for every episode when one pair records alone, since every observation
    from the reset pose to the last one is a step, each with the command the expert decided from it)."""
    config = _record_config(args)
    directory = out / "record"
    if (hit := cached(directory, config)) is not None:
        stage(f"1/5 record: cached, {len(hit['episodes'])} bags in {directory / 'bags'}")
        return {"config": config, **hit}
    shards = _shards(args)
    stage(f"1/5 record: {args.episodes} expert episodes through sim_robot (mode:=expert) + episode_recorder, "
          f"{len(shards)} pair(s) at once")  # fmt: skip
    started = time.monotonic()
    stop = threading.Event()
    bar = tqdm(total=args.episodes, desc="recording", unit="episode")
    with ThreadPoolExecutor(max_workers=len(shards)) as pool:
        futures = [pool.submit(_record_shard, out, shard, args, bar, stop) for shard in shards]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()  # after a failure or an interrupt the other shards stop their nodes and return
    bar.close()
    for future in done:  # the shard that failed first names the cause; the others only report being stopped
        future.result()
    results = [f.result() for f in futures]
    episodes = [episode for shard_episodes, _ in results for episode in shard_episodes]
    late = sum(shard_late for _, shard_late in results)
    minutes = (time.monotonic() - started) / 60
    result = {"episodes": episodes, "minutes": minutes, "rerecorded": late}
    print(f"recorded {len(episodes)} bags, {sum(e['success'] for e in episodes)} successful, in {minutes:.1f} min "
          f"({late} recorded again)")  # fmt: skip
    return {"config": config, **finish(directory, config, result)}


def _record_config(args: argparse.Namespace) -> dict[str, Any]:
    """The record stage's options: its cache key, and what bags added from another run must share."""
    from faster_core.data.sim.so101 import (
        FRONT_CAMERA_POSITION,
        FRONT_CAMERA_TARGET,
        MISSED_GRASP_M,
        RENDER_MESH_CELL_M,
        SHUT_STEPS,
        WRIST_CAMERA,
    )

    config = {"episodes": args.episodes, "max_steps": args.max_steps, "image_size": args.image_size,
              "seed": args.record_seed, "jobs": args.record_jobs,
              "front_camera": [FRONT_CAMERA_POSITION, FRONT_CAMERA_TARGET], "render_mesh_cell_m": RENDER_MESH_CELL_M,
              "expert_commands": "with the observation they were decided from"}  # fmt: skip
    if args.expert_noise or args.expert_shut_probability:  # undisturbed recordings keep the key they had (cached)
        config["disturbance"] = {"position_m": args.expert_noise, "shut_probability": args.expert_shut_probability,
                                 "shut_steps": SHUT_STEPS, "missed_grasp_m": MISSED_GRASP_M}  # fmt: skip
    if args.embodiment != resolve_config(EMBODIMENT):  # so101.yaml's own cameras keep the key they had (cached)
        cameras = Embodiment.from_yaml(args.embodiment).camera_names
        config |= {"cameras": list(cameras), "wrist_camera": dataclasses.asdict(WRIST_CAMERA)}
    return config


@dataclass(frozen=True)
class _Shard:
    index: int
    episodes: int  # to record
    seed: int  # sim_robot's first seed; the shard records seed + 1, seed + 3, ... (a reset skips one)
    attempts: int  # episodes it may try, recordings out of sync included
    domain_id: int

    @property
    def end(self) -> int:
        """The first seed past every one the shard may record."""
        return self.seed + 2 * self.attempts + 2


def _shards(args: argparse.Namespace) -> list[_Shard]:
    """Episodes split evenly (no shard without any); seed ranges that cannot overlap, checked to stay below the
    evaluation seeds."""
    if args.record_jobs < 1:
        raise StageError(f"--record-jobs must be at least 1, got {args.record_jobs}")
    count = min(args.record_jobs, args.episodes)
    base_domain = int(os.environ["ROS_DOMAIN_ID"])
    if base_domain + count - 1 > MAX_DOMAIN_ID:
        raise StageError(f"ROS_DOMAIN_ID {base_domain} + {count} recording shards passes {MAX_DOMAIN_ID}")
    shards, seed = [], args.record_seed
    for index in range(count):
        episodes = args.episodes // count + (index < args.episodes % count)
        attempts = 2 * episodes + 5
        shards.append(_Shard(index, episodes, seed, attempts, base_domain + index))
        seed = shards[-1].end
    if seed > args.eval_seed:
        raise StageError(f"recording may use seeds up to {seed}, past --eval-seed {args.eval_seed}: held-out "
                         "evaluation scenes would be recorded; raise --eval-seed")  # fmt: skip
    return shards


# the options that may differ between a run's recording and bags added to it from another run
PER_RECORDING = ("episodes", "seed", "jobs")


def _added_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The finished record stages of the runs named by ``--add-bags-from``, whose successful bags the convert stage
    joins to this run's: recorded with the same options but other seeds, none of them held out for evaluation."""
    if not args.add_bags_from:  # nothing to check: a run with its recording cached never computes its shards
        return []
    stored_form = json.loads(json.dumps(_record_config(args), default=str))  # as stage.json holds it: lists, not tuples
    own = {k: v for k, v in stored_form.items() if k not in PER_RECORDING}
    reserved = range(args.record_seed, _shards(args)[-1].end)  # this run's own recording
    added, seen = [], set()
    for run_dir in args.add_bags_from:
        stamp = Path(run_dir) / "record" / "stage.json"
        if not stamp.is_file():
            raise StageError(f"--add-bags-from {run_dir}: no finished record stage ({stamp} is missing)")
        stored = json.loads(stamp.read_text())
        theirs = {k: v for k, v in stored["config"].items() if k not in PER_RECORDING}
        if theirs != own:
            differing = sorted(k for k in own.keys() | theirs.keys() if own.get(k) != theirs.get(k))
            raise StageError(f"--add-bags-from {run_dir}: recorded with other options ({', '.join(differing)})")
        seeds = {e["seed"] for e in stored["result"]["episodes"]}
        if clash := sorted(s for s in seeds if s in reserved or s in seen):
            raise StageError(f"--add-bags-from {run_dir}: seeds {clash[:5]} are recorded twice; give this run a "
                             "--record-seed past them")  # fmt: skip
        if late := sorted(s for s in seeds if s > args.eval_seed):
            raise StageError(f"--add-bags-from {run_dir}: seeds {late[:5]} are past --eval-seed {args.eval_seed}")
        seen |= seeds
        added.append({"config": stored["config"], **stored["result"]})
    return added


def _record_shard(
    out: Path, shard: _Shard, args: argparse.Namespace, bar: tqdm, stop: threading.Event
) -> tuple[list[dict[str, Any]], int]:
    """One sim_robot + episode_recorder pair records ``shard.episodes`` episodes; returns them and how many bags
    were recorded again because they did not start with their episode's first observation."""
    from faster_core.data.sim.so101 import INSTRUCTION, So101PickPlace

    bags = out / "record" / "bags" / f"shard_{shard.index}"
    episodes: list[dict[str, Any]] = []
    late = 0
    log_dir = out / "logs" / "record" / f"shard_{shard.index}"
    with (
        Nodes(log_dir, args.threads, args.embodiment, shard.domain_id) as nodes,
        _ros_session(f"bench_record_{shard.index}", nodes, shard.domain_id, stop) as ros,
    ):
        robot = ["mode", "expert", "clock", "realtime", "max_steps", args.max_steps, "image_size", args.image_size,
                 "seed", shard.seed, "expert_noise", float(args.expert_noise),
                 "expert_shut_probability", float(args.expert_shut_probability)]  # fmt: skip
        nodes.start("sim_robot", "sim_robot", robot)
        nodes.start("episode_recorder", "episode_recorder", ["output_dir", bags.resolve()])
        outcomes: list[dict[str, Any]] = []
        spec = Embodiment.from_yaml(args.embodiment)
        reference = So101PickPlace(spec, shard.seed)  # no cameras: the initial joint positions of each seed

        def home(seed: int) -> np.ndarray:
            reference.reset(seed)
            return reference.joint_positions()

        ros.node.create_subscription(String, "/sim_robot/outcome", lambda m: outcomes.append(json.loads(m.data)), 10)
        start = ros.client(StartEpisode, "/episode_recorder/start")
        stop_recording = ros.client(StopEpisode, "/episode_recorder/stop")
        reset = ros.client(Trigger, "/sim_robot/reset")
        camera_topic = spec.cameras[0].topic
        ros.spin_until(lambda: ros.node.count_subscribers(camera_topic) >= 1, 60, f"the recorder on {camera_topic}")
        _spin_for(ros, 1.0)  # let the recorder's subscriptions match the simulator's publishers
        for _attempt in range(shard.attempts):
            if len(episodes) >= shard.episodes:
                break
            # The reset outcome goes out when the simulator begins the reset, before its env reset and the first
            # frame of the new episode (rendering takes most of a control period), and nothing of the old episode
            # follows it: starting the recorder on that outcome gives a bag that holds exactly the new episode.
            # Checked afterwards, since a frame of the old episode may still be in flight: see _starts_clean.
            first = len(outcomes)
            resetting = reset.call_async(Trigger.Request())
            recorded = _await_outcome(ros, outcomes, first, "reset", 30)["episode"] + 1
            response = ros.call(start, StartEpisode.Request(instruction=INSTRUCTION))
            if not response.success:
                raise StageError(f"/episode_recorder/start refused: {response.message}")
            ros.spin_until(resetting.done, 30, "the response of /sim_robot/reset")
            outcome = _await_outcome(ros, outcomes, first, recorded, args.max_steps * 0.2 + 30)
            stopped = ros.call(stop_recording, StopEpisode.Request(task_success=bool(outcome["success"])))
            if not stopped.success:
                raise StageError(f"/episode_recorder/stop refused: {stopped.message}")
            bag = Path(stopped.bag_path)
            if not _starts_clean(bag, spec, home(shard.seed + recorded)):
                late += 1
                shutil.rmtree(bag, ignore_errors=True)
                bar.write(f"shard {shard.index}, episode {recorded}: the bag does not start with its first "
                          "observation; recording another")  # fmt: skip
                continue
            episodes.append({"bag": str(bag), "seed": shard.seed + recorded, "success": bool(outcome["success"]),
                             "steps": outcome["steps"], "reason": outcome["reason"],
                             "messages": stopped.messages_recorded})  # fmt: skip
            bar.update()
        reference.close()
    if len(episodes) < shard.episodes:
        raise StageError(f"shard {shard.index} recorded {len(episodes)} of {shard.episodes} episodes "
                         f"({late} out of sync)")  # fmt: skip
    return episodes, late


def _ns(message) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec


def _starts_clean(bag: Path, spec: Embodiment, home: np.ndarray) -> bool:
    """Whether the bag's first observation is the episode's first (joint state at the reset pose, with its frame),
    and the only one at that pose (the scripted expert moves at once): nothing of the episode before it (an old
    frame still in flight when the recorder started) and the first frame not missed."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    cameras = {c.topic for c in spec.cameras}
    joints: list[tuple[int, np.ndarray]] = []
    frames: list[int] = []
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        wanted = [c for c in reader.connections if c.topic in cameras or c.topic == spec.topics.joint_states]
        for connection, _, raw in reader.messages(connections=wanted):
            message = reader.deserialize(raw, connection.msgtype)
            if connection.topic in cameras:
                frames.append(_ns(message))
            else:
                position = dict(zip(message.name, message.position, strict=True))
                joints.append((_ns(message), np.array([position[j] for j in spec.joint_names])))
    if len(joints) < 2 or not frames:
        return False
    at_home = [np.allclose(q, home, atol=1e-9) for _, q in joints[:2]]
    return at_home == [True, False] and frames[0] == joints[0][0]


def _await_outcome(ros: Ros, outcomes: list[dict], since: int, match: str | int, timeout: float) -> dict[str, Any]:
    """The first outcome after index ``since`` of a reset (match "reset") or of episode ``match``."""

    def found() -> dict[str, Any] | None:
        key = "reason" if match == "reset" else "episode"
        return next((o for o in outcomes[since:] if o[key] == match), None)

    ros.spin_until(lambda: found() is not None, timeout, f"the outcome of {match!r}")
    return found()


def _spin_for(ros: Ros, seconds: float) -> None:
    end = time.monotonic() + seconds
    ros.spin_until(lambda: time.monotonic() >= end, seconds + 1, "nothing")


# ------------------------------------------------------------------------------------------------- 2. convert
def convert(
    out: Path, recorded: dict[str, Any], args: argparse.Namespace, added: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The successful bags of this run's recording and of ``added`` (other runs' record stages) in one dataset."""
    from faster_core.data import EpisodeDataset
    from faster_core.data.bags import BagConversion, convert_bags

    config = {"record": upstream(recorded), "only_successful": True, "sync_window": BagConversion.sync_window}
    if added:  # a run of its own bags alone keeps the key it had (cached)
        config["added_records"] = [upstream(r) for r in added]
    directory = out / "dataset"
    if (hit := cached(directory, config)) is not None:
        stage(f"2/5 convert: cached, {hit['episodes']} episodes in {directory}")
        return {"config": config, "path": str(directory), **hit}
    stage("2/5 convert: bags -> episode dataset (convert_bags; actions from the trajectory topic)")
    started = time.monotonic()
    episodes = [e for r in (recorded, *added) for e in r["episodes"]]
    bags = [e["bag"] for e in episodes if e["success"]]
    if not bags:
        raise StageError("no successful expert episode to convert")
    embodiment = Embodiment.from_yaml(args.embodiment)
    report = convert_bags(bags, directory, BagConversion(embodiment=embodiment))
    print(report.summary().splitlines()[-1])
    for skipped in report.skipped:
        print(f"  skipped {skipped.bag.name}: {skipped.reason}")
    if not report.converted:
        raise StageError("convert_bags converted no bag")
    dataset = EpisodeDataset(directory)
    recorded_steps = {e["bag"]: e["steps"] for e in episodes}
    gaps = [recorded_steps[str(c.bag)] - c.steps for c in report.converted]
    result = {
        "episodes": len(dataset),
        "frames": int(sum(dataset.lengths)),
        "skipped": len(report.skipped),
        "action_sources": sorted({c.action_source for c in report.converted}),
        "simulator_minus_converted_steps": [min(gaps), max(gaps)],
        "minutes": (time.monotonic() - started) / 60,
    }
    print(f"{result['episodes']} episodes, {result['frames']} steps; simulator steps - converted steps per episode "
          f"in [{min(gaps)}, {max(gaps)}]")  # fmt: skip
    return {"config": config, "path": str(directory), **finish(directory, config, result)}


# ---------------------------------------------------------------------------------------------- 3. tokenizers
def fit_tokenizer(out: Path, kind: str, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {"data": upstream(data), "kind": kind}
    argv = ["tokenizer", "fit", "--data", data["path"], "--kind", kind, "--seed", str(args.seed),
            "--action-mode", args.action_mode]  # fmt: skip
    if args.action_mode != "absolute":  # absolute runs keep the key they had before the option existed (cached)
        config["action_mode"] = args.action_mode
    if args.seed:  # the fit draws from it; seed-0 runs keep the key they had (cached)
        config["seed"] = args.seed
    if kind == "fastervq":
        config |= {"steps": args.tokenizer_steps, "lr": 1e-3, "batch_size": 64}
        argv += ["--steps", str(args.tokenizer_steps), "--lr", "1e-3", "--batch-size", "64",
                 "--val-every", str(args.tokenizer_steps)]  # fmt: skip
    elif kind == "fast":
        config |= {"scale": args.fast_scale}
        argv += ["--scale", str(args.fast_scale)]
    directory = out / "tokenizers" / kind
    if (hit := cached(directory, config)) is not None:
        print(f"{LABELS[kind]}: cached in {directory}")
        return {"config": config, "path": str(directory), **hit}
    started = time.monotonic()
    run_faster([*argv, "--out", str(directory)])
    result = {"minutes": (time.monotonic() - started) / 60, **_token_counts(directory, data["path"])}
    return {"config": config, "path": str(directory), **finish(directory, config, result)}


def _token_counts(tokenizer_dir: Path, data: str) -> dict[str, Any]:
    """Tokens per chunk: fixed for FASTerVQ and bins; for FAST the mean (and max) over every chunk of the data."""
    from faster_core.data import EpisodeDataset, action_chunks
    from faster_core.tokenizer.factory import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    if getattr(tokenizer, "fixed_length", True):
        return {"tokens_mean": float(tokenizer.tokens_per_chunk), "tokens_max": int(tokenizer.tokens_per_chunk)}
    dataset = EpisodeDataset(data)
    chunks = action_chunks(
        dataset, range(len(dataset)), tokenizer.config.chunk_length, action_mode=tokenizer.config.action_mode
    )
    lengths = [len(tokens) for tokens in tokenizer.encode(chunks)]
    return {"tokens_mean": float(np.mean(lengths)), "tokens_max": int(max(lengths))}


# ------------------------------------------------------------------------------------------------ 4. policies
def train_all(out: Path, tokenizers: dict[str, dict[str, Any]], data: dict[str, Any], args: argparse.Namespace):
    """One policy per tokenizer, ``--jobs`` trainings at a time (each a ``faster vla train`` process)."""
    plans, results = {}, {}
    for kind, tokenizer in tokenizers.items():
        config = {"tokenizer": upstream(tokenizer), "backbone": BACKBONE, "steps": args.policy_steps, "lr": args.lr,
                  "warmup": args.warmup, "batch_size": args.batch_size, "image_size": args.image_size,
                  "augment_images": args.augment_images, "state_noise": args.state_noise,
                  "seed": args.seed}  # fmt: skip
        directory = out / "policies" / kind
        if (hit := cached(directory, config)) is not None:
            print(f"{LABELS[kind]} policy: cached in {directory}")
            results[kind] = {"config": config, "path": str(directory), **hit}
            continue
        argv = ["vla", "train", "--data", data["path"], "--tokenizer", tokenizer["path"], "--out", str(directory),
                "--backbone", BACKBONE, "--steps", str(args.policy_steps), "--lr", str(args.lr),
                "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
                "--image-size", str(args.image_size), "--seed", str(args.seed), "--validation-samples", "32",
                "--state-noise", str(args.state_noise),
                "--embodiment", str(args.embodiment), "--quiet"]  # fmt: skip
        plans[kind] = (config, directory, [*argv, "--augment-images"] if args.augment_images else argv)
    log_dir = out / "logs" / "train"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    running: dict[str, tuple[subprocess.Popen, float, Any]] = {}
    waiting = list(plans)
    bar = tqdm(total=len(plans), desc="training policies", unit="policy")
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                kind = waiting.pop(0)
                log = (log_dir / f"{kind}.log").open("w")
                print(f"$ faster {' '.join(plans[kind][2])}  (log: {log.name})", flush=True)
                command = [sys.executable, "-m", "faster_core.cli", *plans[kind][2]]
                process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                running[kind] = (process, time.monotonic(), log)
            time.sleep(1.0)
            for kind, (process, started, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[kind]
                if process.returncode != 0:
                    tail = "\n".join((log_dir / f"{kind}.log").read_text(errors="replace").splitlines()[-15:])
                    status = process.returncode
                    raise StageError(f"training the {LABELS[kind]} policy failed (status {status}):\n{tail}")
                config, directory, _ = plans[kind]
                results[kind] = {"config": config, "path": str(directory),
                                 **finish(directory, config, _training_result(directory, started))}  # fmt: skip
                bar.update()
                bar.write(f"{LABELS[kind]} policy trained in {results[kind]['minutes']:.1f} min")
    finally:
        for process, _, log in running.values():
            process.kill()
            process.wait()
            log.close()
        bar.close()
    return results


def _training_result(directory: Path, started: float) -> dict[str, Any]:
    log = json.loads((directory / "training_log.json").read_text())
    validation = log["validation"][-1] if log.get("validation") else {}
    losses = log.get("losses", [])
    return {
        "minutes": (time.monotonic() - started) / 60,
        "final_loss": float(np.mean(losses[-20:])) if losses else float("nan"),
        "val_loss": validation.get("loss"),
        "val_token_accuracy": validation.get("token_accuracy"),
        "val_action_l1": validation.get("action_l1"),
    }


# ------------------------------------------------------------------------------------------------ 5. evaluate
class EvalMonitor(Monitor):
    """demo.Monitor, keeping one PolicyStatus per computed chunk (its latency fields describe that chunk)."""

    def __init__(self, node, trajectory_topic: str):
        super().__init__(node, trajectory_topic)
        self.samples: list[PolicyStatus] = []
        self._chunks = -1

    def _on_status(self, message: PolicyStatus) -> None:
        super()._on_status(message)
        if message.chunks_computed != self._chunks:
            self._chunks = message.chunks_computed
            if message.chunks_computed > 0:
                self.samples.append(message)

    def _on_trajectory(self, message) -> None:  # the table needs no trajectories; do not keep them all
        pass


def evaluate(out: Path, kind: str, policy: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    config = {"policy": upstream(policy), "episodes": args.eval_episodes, "max_steps": args.max_steps,
              "eval_seed": args.eval_seed, "image_size": args.image_size,
              "lockstep_timeout_s": args.lockstep_timeout, "replan_steps": args.replan_steps,
              "ensemble": args.ensemble, "greedy": args.greedy}  # fmt: skip
    directory = out / "eval" / kind
    if (hit := cached(directory, config)) is not None:
        print(f"{LABELS[kind]}: cached, {hit['successes']}/{len(hit['outcomes'])} successes")
        return hit
    started = time.monotonic()
    with (
        Nodes(out / "logs" / f"eval_{kind}", args.threads, args.embodiment) as nodes,
        _ros_session(f"bench_{kind}", nodes) as ros,
    ):
        robot = ["clock", "lockstep", "max_steps", args.max_steps, "image_size", args.image_size,
                 "seed", args.eval_seed, "lockstep_timeout_s", args.lockstep_timeout]  # fmt: skip
        nodes.start("sim_robot", "sim_robot", robot)
        brain = ["policy_path", Path(policy["path"]).resolve(), "use_sim_time", True, "seed", args.seed, "greedy",
                 args.greedy, "ensemble.enabled", args.ensemble, "replan_steps", args.replan_steps]  # fmt: skip
        nodes.start("policy_node", "policy_node", brain)
        monitor = EvalMonitor(ros.node, _trajectory_topic(str(args.embodiment)))
        reset = ros.client(Trigger, "/sim_robot/reset")
        # Loaded and inferring (a FAST policy may fail to decode its first chunks: that is a result, not a hang).
        ros.spin_until(lambda: _inferred(monitor.status), 180, "the policy node's first inference")
        # The first episode ran while the policy loaded (stepped by lock-step timeouts): start a fresh one. The
        # monitor counts only the episodes begun after it.
        ros.call(reset, Trigger.Request())
        ros.spin_until(lambda: monitor.restart is not None, 10, "the outcome of the restart")
        baseline = monitor.restart
        monitor.samples.clear()

        def finished() -> list[dict[str, Any]]:
            return monitor.outcomes[: args.eval_episodes]

        bar = tqdm(total=args.eval_episodes, desc=f"eval {LABELS[kind]}", unit="episode")
        deadline = time.monotonic() + args.eval_episodes * args.max_steps * 1.0 + 120
        while len(finished()) < args.eval_episodes:
            count = len(finished())
            ros.spin_until(lambda count=count: len(finished()) > count, max(1.0, deadline - time.monotonic()),
                           f"episode {count + 1} of {args.eval_episodes} under {LABELS[kind]}")  # fmt: skip
            bar.update(len(finished()) - bar.n)
            bar.set_postfix(successes=sum(o["success"] for o in finished()))
        bar.close()
        outcomes = finished()
        status = monitor.status
        samples = list(monitor.samples)
    result = {
        "outcomes": outcomes,
        "seeds": [args.eval_seed + o["episode"] for o in outcomes],
        "successes": sum(o["success"] for o in outcomes),
        "mean_steps": float(np.mean([o["steps"] for o in outcomes])),
        "lockstep_timeouts": outcomes[-1]["lockstep_timeouts"] - baseline["lockstep_timeouts"],
        "chunks": len(samples),
        "model_errors": status.model_errors if status else None,
        "minutes": (time.monotonic() - started) / 60,
        **{field: _median(samples, field) for field in
           ("decoder_forward_passes", "preprocess_ms", "prefix_ms", "decode_ms", "detokenize_ms", "total_ms")},
    }  # fmt: skip
    print(f"{LABELS[kind]}: {result['successes']}/{len(outcomes)} successes, reasons "
          f"{[o['reason'] for o in outcomes]}, {result['chunks']} chunks, model errors {result['model_errors']}, "
          f"lock-step timeouts {result['lockstep_timeouts']}")  # fmt: skip
    return finish(directory, config, result)


def _inferred(status: PolicyStatus | None) -> bool:
    return status is not None and status.chunks_computed + status.model_errors > 0


def _median(samples: list[PolicyStatus], field: str) -> float:
    return float(statistics.median(getattr(s, field) for s in samples)) if samples else float("nan")


# --------------------------------------------------------------------------------------------------- 6. table
def table(results: dict[str, dict[str, Any]], data: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"{'':<49}{'latency ms (median per chunk)':^31}",
        f"{'tokenizer':<16}{'tok/chunk':>10}{'success':>9}{'steps':>7}{'passes':>7}{'prefix':>8}"
        f"{'decode':>8}{'detok':>7}{'total':>8}{'train min':>10}{'lifted':>8}{'closest cm':>11}",
    ]
    for kind, r in results.items():
        tokens = r["tokenizer"]
        label = LABELS[kind] + (f" (s={args.fast_scale:g})" if kind == "fast" else "")
        count = f"{tokens['tokens_mean']:.0f}" if tokens["tokens_mean"] == tokens["tokens_max"] else (
            f"{tokens['tokens_mean']:.1f}/{tokens['tokens_max']}")  # fmt: skip
        e = r["eval"]
        lines.append(
            f"{label:<16}{count:>10}{e['successes']:>5}/{len(e['outcomes']):<3}{e['mean_steps']:>7.1f}"
            f"{e['decoder_forward_passes']:>7.0f}{e['prefix_ms']:>8.1f}{e['decode_ms']:>8.1f}{e['detokenize_ms']:>7.1f}"
            f"{e['total_ms']:>8.1f}{r['policy']['minutes']:>10.1f}"
            f"{sum(o['lifted'] for o in e['outcomes']):>5}/{len(e['outcomes']):<2}"
            f"{statistics.median(o['closest_approach_m'] for o in e['outcomes']) * 100:>11.1f}"
        )
    lines.append(
        "tok/chunk: FAST mean/max over the dataset's chunks; steps: mean episode length (max-steps = time limit); "
        f"train min: wall time, {args.jobs} trainings at once; lifted: episodes in which the cube was carried; "
        "closest cm: median over episodes of the closest gripper-to-cube distance"
    )
    for kind, r in results.items():
        p, e = r["policy"], r["eval"]
        lines.append(
            f"{LABELS[kind]:<9} train loss {p['final_loss']:.3f}, held-out token acc {p['val_token_accuracy']:.3f}, "
            f"action l1 {p['val_action_l1']:.3f} (normalised); eval: model errors {e['model_errors']}, lock-step "
            f"timeouts {e['lockstep_timeouts']}, failures {_reasons(e['outcomes'])}"
        )
    epochs = args.policy_steps * args.batch_size / max(1, data["frames"])
    fastervq = results.get("fastervq", {}).get("eval", {}).get("successes")
    fast = results.get("fast", {}).get("eval", {}).get("successes")
    best = max(r["eval"]["successes"] / max(1, len(r["eval"]["outcomes"])) for r in results.values())
    verdict = []
    if fastervq is not None and fast is not None:
        outcome = "not measurable" if fastervq == fast == 0 else "met" if fastervq >= fast else "NOT met"
        verdict.append(f"FASTer >= FAST: {outcome} ({fastervq} vs {fast} successes)")
    verdict.append(f"> 50% success: {'met' if best > 0.5 else 'NOT met'} (best {best:.0%})")
    lines.append("targets: " + "; ".join(verdict) + f"; M = {args.eval_episodes} episodes per policy")
    lines.append(
        f"{args.action_mode} actions, {'greedy' if args.greedy else 'sampled'} codes, "
        f"{'ensembled' if args.ensemble else 'cross-faded'} chunks, replan {args.replan_steps}"
        f"{f', trained with state noise {args.state_noise:g}' if args.state_noise else ''}; limits: data "
        f"{data['episodes']} demos / {data['frames']} steps; {args.policy_steps} steps x batch "
        f"{args.batch_size} (~{epochs:.0f} epochs) of a random-init {BACKBONE} "
        f"({_parameters(results)}) at {args.image_size} px on CPU; M = {args.eval_episodes}: success rates carry a "
        f"standard error up to {50 / max(1, args.eval_episodes) ** 0.5:.0f} pp"
    )
    return "\n".join(lines)


def _reasons(outcomes: list[dict[str, Any]]) -> str:
    reasons = [o["reason"] for o in outcomes if not o["success"]]
    return ", ".join(f"{reasons.count(r)} {r}" for r in sorted(set(reasons))) or "none"


def _parameters(results: dict[str, dict[str, Any]]) -> str:
    from safetensors import safe_open

    sizes = []
    for r in results.values():
        total = 0
        for file in Path(r["policy"]["path"]).rglob("*.safetensors"):
            if file.parent.name == "tokenizer":
                continue
            with safe_open(str(file), "pt") as handle:
                total += sum(int(np.prod(handle.get_slice(k).get_shape())) for k in handle.keys())  # noqa: SIM118
        sizes.append(total / 1e6)
    if not sizes:
        return "?"
    low, high = f"{min(sizes):.1f}", f"{max(sizes):.1f}"
    return f"{low}M parameters" if low == high else f"{low}-{high}M parameters"


# ------------------------------------------------------------------------------------------------------- main
def _embodiment_file(out: Path, cameras: list[str] | None) -> Path:
    """The installed so101 parameter file, or, for ``--cameras`` other than its own, a copy under ``--out`` that
    lists them (each on /camera/<name>/image_raw): the one file the nodes, the converter and the trainer read."""
    installed = resolve_config(EMBODIMENT)
    if cameras is None or tuple(cameras) == Embodiment.from_yaml(installed).camera_names:
        return installed
    document = yaml.safe_load(installed.read_text())
    listed = document["/**"]["ros__parameters"]["cameras"]
    listed["names"], listed["topics"] = list(cameras), [f"/camera/{camera}/image_raw" for camera in cameras]
    path = out / "embodiment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run(args: argparse.Namespace) -> int:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    args.embodiment = _embodiment_file(out, args.cameras)
    if args.replan_steps is None:
        horizon = Embodiment.from_yaml(args.embodiment).chunk_length
        args.replan_steps = default_replan_steps(horizon, ensemble=args.ensemble)
    added = _added_records(args)
    recorded = record(out, args)
    data = convert(out, recorded, args, added)
    kinds = args.tokenizers
    results: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    stage("3/5 tokenizers: " + ", ".join(LABELS[k] for k in kinds) + f" (FAST scale {args.fast_scale:g})")
    for kind in kinds:
        results[kind]["tokenizer"] = fit_tokenizer(out, kind, data, args)
    stage(f"4/5 policies: FASTerVLA ({BACKBONE}), {args.policy_steps} steps each, seed {args.seed}, "
          f"{args.jobs} at a time")  # fmt: skip
    policies = train_all(out, {kind: results[kind]["tokenizer"] for kind in kinds}, data, args)
    for kind in kinds:
        results[kind]["policy"] = policies[kind]
    stage(f"5/5 evaluate: {args.eval_episodes} lock-step episodes each (seeds from {args.eval_seed + 1})")
    for kind in kinds:
        results[kind]["eval"] = evaluate(out, kind, results[kind]["policy"], args)
    text = table(results, data, args)
    minutes = {"record": recorded["minutes"], "convert": data["minutes"]}
    for name in ("tokenizer", "policy", "eval"):
        minutes[name] = sum(r[name]["minutes"] for r in results.values())
    text += "\nstage minutes (when each ran): " + ", ".join(f"{k} {v:.1f}" for k, v in minutes.items())
    print("\n" + text)
    (out / "table.txt").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"data": data, "recorded": recorded, "results": results}, indent=1))
    return 0


def main() -> int:
    from faster_core.data.sim.so101 import CAMERAS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench_closed_loop"))
    parser.add_argument("--episodes", type=int, default=24, help="expert episodes to record")
    parser.add_argument(
        "--record-jobs", type=int, default=2, help="sim_robot + episode_recorder pairs recording at once"
    )
    parser.add_argument(
        "--add-bags-from",
        type=Path,
        nargs="+",
        default=[],
        metavar="OUT",
        help="earlier runs' --out whose recorded bags join this run's (same recording options, other seeds)",
    )
    parser.add_argument("--eval-episodes", type=int, default=5, help="lock-step episodes per policy")
    parser.add_argument("--tokenizer-steps", type=int, default=800, help="FASTerVQ fitting steps")
    parser.add_argument("--policy-steps", type=int, default=600, help="training steps per policy")
    parser.add_argument("--max-steps", type=int, default=120, help="simulator steps (0.1 s) per episode")
    parser.add_argument(
        "--tokenizers", nargs="+", choices=KINDS, default=list(KINDS), help="the twins to fit, train and evaluate"
    )
    parser.add_argument("--fast-scale", type=float, default=10.0, help="FAST DCT rounding scale (one scale)")
    parser.add_argument(
        "--cameras",
        nargs="+",
        choices=CAMERAS,
        help="cameras the robot publishes and the policies see (default: the so101 embodiment's, front)",
    )
    parser.add_argument(
        "--expert-noise",
        type=float,
        default=0.0,
        help="sim_robot expert_noise while recording: std (m) of the disturbance on the arm's full-speed moves (DART)",
    )
    parser.add_argument(
        "--expert-shut-probability",
        type=float,
        default=0.0,
        help="sim_robot expert_shut_probability while recording: chance per descent step that the jaw shuts early",
    )
    parser.add_argument("--image-size", type=int, default=64, help="rendered and seen by the policy")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="training and sampling seed")
    parser.add_argument(
        "--record-seed",
        type=int,
        help="the first recording seed (default: --seed): past the seeds of the runs --add-bags-from names",
    )
    parser.add_argument("--eval-seed", type=int, default=10_000, help="held-out evaluation seeds start after it")
    parser.add_argument(
        "--lockstep-timeout",
        type=float,
        default=1.0,
        help="wall seconds sim_robot waits for the policy before stepping with its last command",
    )
    parser.add_argument(
        "--action-mode", choices=ACTION_MODES, default="absolute", help="what the tokenizers encode (delta: - state)"
    )
    parser.add_argument(
        "--greedy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="policy_node greedy: argmax codes (--no-greedy: the checkpoint's top-k sampling)",
    )
    parser.add_argument(
        "--ensemble",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="policy_node ensemble.enabled: average each chunk with the earlier predictions (temporal ensembling)",
    )
    parser.add_argument("--replan-steps", type=int, help="policy_node replan_steps (default: the node's)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, here and in the nodes")
    parser.add_argument("--jobs", type=int, default=2, help="policies trained at once (one process each)")
    parser.add_argument(
        "--augment-images",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train with random crop, rotation and colour jitter (vla train --augment-images)",
    )
    parser.add_argument(
        "--state-noise",
        type=float,
        default=0.0,
        help="std of Gaussian noise on the prompt's normalised joint state in training (vla train --state-noise)",
    )
    args = parser.parse_args()
    if args.record_seed is None:
        args.record_seed = args.seed
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        print("closed_loop: run it after `source env.sh` (DDS discovery must stay on this machine)", file=sys.stderr)
        return 1
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(150, 199)))
    print(f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, torch threads {args.threads}", flush=True)
    torch.set_num_threads(args.threads)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except StageError as error:
        print(f"\nclosed_loop: FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nclosed_loop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
