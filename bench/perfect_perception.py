"""Perfect perception on the simulated SO-101: action heads told exactly where the block and the goal are.

Separates perception from action prediction (README, "What limits it"). Nothing is rendered: every frame is one
gray image, and the instruction names the block's and the goal's start positions as bins 0..255 of the area the
simulator samples them from ("pick up the cube at 182 161 and place it on the goal at 77 70"). Stages, each cached
under ``--out`` (a rerun skips every stage whose inputs and options are unchanged):

1. record: scripted-expert episodes in process (no ROS), the successful ones written in the episode format;
2. tokenizer: FASTerVQ (or ``--tokenizer fast|bins``, the twins of bench/closed_loop.py) fitted on them;
3. policies: FASTerVLA (``faster vla train``, tiny-paligemma, random init) and, as the control, an MLP regressor on
   the same inputs (normalised state and the four position bins in, the normalised chunk out, L1 loss);
4. evaluate: held-out action L1 (normalised units, the tokenizer's q01/q99) on the validation episodes, then the
   closed loop in process on held-out seeds: observe, predict, execute the chunk's first ``--replan-steps``
   actions (one control step each; several values give one row each, as ``policy_node replan_steps``), repeat.
   FASTerVLA is decoded ``--decodings`` ways: sampled (the config's top-k and temperature), greedy,
   and, for FASTerVQ, expected (each code's distribution averaged in its codebook, so an uncertain code blends its
   candidates instead of picking one);
5. one table, a row per head and replan value (the regressor also with its chunks passed through the tokenizer
   and back: the precision the tokenizer alone allows): held-out L1, success k/M, episodes in which the block was
   lifted, median closest approach.

    source env.sh && python bench/perfect_perception.py --episodes 300 --policy-steps 6000 --batch-size 32 --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from faster_core.data.chunks import action_windows
from faster_core.data.episodes import DatasetWriter, EpisodeDataset
from faster_core.data.sim.so101 import MAX_STEPS, SAMPLING_AREA, So101PickPlace
from faster_core.embodiment import Embodiment
from faster_core.policy.modeling import ActionDecodeError, FASTerVLA
from faster_core.stages import StageError, cached, finish, run_faster, stage, upstream
from faster_core.tokenizer.interface import ActionTokenizer
from faster_core.tokenizer.normalize import normalize, unnormalize
from faster_core.tokenizer.patchify import unpatchify

EMBODIMENT = "so101"
BACKBONE = "tiny-paligemma"
POSITION_BINS = 256
INSTRUCTION = "pick up the cube at {} {} and place it on the goal at {} {}"
GRAY = 128  # every pixel of every frame
DECODINGS = ("sampled", "greedy", "expected")


def position_bins(xy: np.ndarray) -> list[int]:
    """x, y (metres) -> bins 0..255 of the sampling area, clipped."""
    low, high = SAMPLING_AREA
    scaled = (np.asarray(xy[:2]) - low) / (high - low) * POSITION_BINS
    return np.clip(np.floor(scaled), 0, POSITION_BINS - 1).astype(int).tolist()


def instruction_for(sim: So101PickPlace) -> str:
    block, goal = sim.object_positions()
    return INSTRUCTION.format(*position_bins(block), *position_bins(goal))


def positions_in(instruction: str) -> np.ndarray:
    """The four position bins an instruction names, scaled to [-1, 1] (the MLP's view of the prompt)."""
    numbers = [int(n) for n in re.findall(r"\d+", instruction)]
    if len(numbers) != 4:
        raise ValueError(f"expected four position bins in {instruction!r}")
    return (np.asarray(numbers, dtype=np.float32) + 0.5) / POSITION_BINS * 2 - 1


# ------------------------------------------------------------------------------------------------------ 1. record
def record(args: argparse.Namespace, embodiment: Embodiment) -> dict[str, Any]:
    config = {
        "episodes": args.episodes,
        "seed": args.seed,
        "image_size": args.image_size,
        "area": SAMPLING_AREA.tolist(),
    }
    directory = args.out / "dataset"
    if (result := cached(directory, config)) is not None:
        print(f"dataset: cached in {directory}")
        return {"config": config, "path": str(directory), **result}
    started = time.monotonic()
    frame = np.full((args.image_size, args.image_size, 3), GRAY, dtype=np.uint8)
    rng = np.random.default_rng(args.seed)
    sim = So101PickPlace(embodiment, seed=args.seed)
    attempts = steps = 0
    try:
        with (
            DatasetWriter(
                directory,
                fps=embodiment.control_rate_hz,
                embodiment=embodiment.name,
                joint_names=embodiment.joint_names,
                cameras=embodiment.camera_names,
                image_format="png",
            ) as writer,
            tqdm(total=args.episodes, desc="recording", unit="episode") as bar,
        ):
            while bar.n < args.episodes:
                attempts += 1
                if attempts > 3 * args.episodes + 5:
                    raise StageError(f"record: the expert succeeded {bar.n} times in {attempts - 1} attempts")
                sim.reset(int(rng.integers(2**31)))
                instruction = instruction_for(sim)
                states, actions = [], []
                while not sim.terminated and len(states) < MAX_STEPS:
                    states.append(sim.joint_positions())
                    actions.append(sim.expert_step())
                if not sim.success:
                    continue
                writer.add_episode(
                    timestamps=np.arange(len(states)) / writer.fps,
                    state=np.asarray(states),
                    action=np.asarray(actions),
                    frames={c: [frame] * len(states) for c in embodiment.camera_names},
                    instruction=instruction,
                    success=True,
                )
                steps += len(states)
                bar.update()
    finally:
        sim.close()
    result = {"attempts": attempts, "steps": steps, "minutes": (time.monotonic() - started) / 60}
    return {"config": config, "path": str(directory), **finish(directory, config, result)}


# --------------------------------------------------------------------------------------------------- 2. tokenizer
def fit_tokenizer(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    kind = args.tokenizer
    config: dict[str, Any] = {"data": upstream(data), "kind": kind, "seed": args.seed}
    argv = ["tokenizer", "fit", "--data", data["path"], "--kind", kind, "--seed", str(args.seed)]
    if kind == "fastervq":
        config["steps"] = args.tokenizer_steps
        argv += ["--steps", str(args.tokenizer_steps), "--lr", "1e-3", "--batch-size", "64",
                 "--val-every", str(args.tokenizer_steps)]  # fmt: skip
    directory = args.out / f"tokenizer_{kind}"
    if (result := cached(directory, config)) is not None:
        print(f"tokenizer: cached in {directory}")
        return {"config": config, "path": str(directory), **result}
    started = time.monotonic()
    run_faster([*argv, "--out", str(directory)])
    result = {"minutes": (time.monotonic() - started) / 60}
    return {"config": config, "path": str(directory), **finish(directory, config, result)}


# ---------------------------------------------------------------------------------------------------- 3. policies
def train_vla(args: argparse.Namespace, data: dict[str, Any], tokenizer: dict[str, Any]) -> dict[str, Any]:
    config = {
        "data": upstream(data),
        "tokenizer": upstream(tokenizer),
        "steps": args.policy_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "image_size": args.image_size,
        "expert_width": args.expert_width,
        "seed": args.seed,
    }
    directory = args.out / f"vla_{args.tokenizer}"
    if (result := cached(directory, config)) is not None:
        print(f"FASTerVLA: cached in {directory}")
        return {"config": config, "path": str(directory), **result}
    started = time.monotonic()
    argv = ["vla", "train", "--data", data["path"], "--tokenizer", tokenizer["path"], "--out", str(directory),
            "--backbone", BACKBONE, "--steps", str(args.policy_steps), "--lr", str(args.lr), "--warmup", "50",
            "--batch-size", str(args.batch_size), "--image-size", str(args.image_size), "--seed", str(args.seed),
            "--expert-width", str(args.expert_width),
            "--validation-samples", "64", "--validate-every", str(max(1, args.policy_steps // 4))]  # fmt: skip
    run_faster(argv)
    log = json.loads((directory / "training_log.json").read_text())
    result = {"minutes": (time.monotonic() - started) / 60, "validation": log["validation"]}
    return {"config": config, "path": str(directory), **finish(directory, config, result)}


class Regressor(nn.Module):
    """Normalised state [D] and position bins [4] -> normalised action chunk [H, D]."""

    def __init__(
        self,
        *,
        dof: int,
        horizon: int,  # H
        width: int = 512,  # hidden units per layer
        depth: int = 3,  # hidden layers
    ):
        super().__init__()
        layers, features = [], dof + 4
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.GELU()]
            features = width
        layers.append(nn.Linear(features, horizon * dof))
        self.net = nn.Sequential(*layers)
        self.horizon, self.dof = horizon, dof

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).view(-1, self.horizon, self.dof)


@dataclass(frozen=True)
class Normalization:
    """The bounds both heads are judged in: state by the dataset's q01/q99, actions by the tokenizer's."""

    state_q01: np.ndarray
    state_q99: np.ndarray
    action_q01: np.ndarray
    action_q99: np.ndarray

    def features(self, state: np.ndarray, instruction: str) -> np.ndarray:
        state = normalize(np.asarray(state, dtype=np.float64), self.state_q01, self.state_q99)
        return np.concatenate([state, positions_in(instruction)]).astype(np.float32)

    def actions(self, chunk: np.ndarray) -> np.ndarray:
        return normalize(np.asarray(chunk, dtype=np.float64), self.action_q01, self.action_q99).astype(np.float32)


@dataclass(frozen=True)
class Step:
    state: np.ndarray  # [D] robot units
    instruction: str
    chunk: np.ndarray  # [H, D] robot units: the recorded actions from this step on (``EpisodeSamples``' windows)


def steps_of(dataset: EpisodeDataset, episodes: tuple[int, ...], horizon: int) -> list[Step]:
    """Every step of the given episodes, without decoding a frame."""
    steps = []
    for i in episodes:
        episode = dataset.episode(i)
        chunks = action_windows(episode.action, horizon).chunks
        steps += [Step(s, episode.instruction, c) for s, c in zip(episode.state, chunks, strict=True)]
    return steps


def train_regressor(
    args: argparse.Namespace, upstreams: dict[str, Any], train: list[Step], norm: Normalization, model: Regressor
) -> Regressor:
    config = {**upstreams, "steps": args.regressor_steps, "seed": args.seed}
    directory = args.out / f"regressor_{args.tokenizer}"  # judged in that tokenizer's units
    if cached(directory, config) is not None:
        print(f"regressor: cached in {directory}")
    else:
        started = time.monotonic()
        torch.manual_seed(args.seed)
        features = torch.from_numpy(np.stack([norm.features(s.state, s.instruction) for s in train]))
        targets = torch.from_numpy(np.stack([norm.actions(s.chunk) for s in train]))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.regressor_steps)
        for _ in tqdm(range(args.regressor_steps), desc="train regressor"):
            index = torch.randint(len(features), (256,))
            loss = (model(features[index]) - targets[index]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        directory.mkdir(parents=True, exist_ok=True)
        save_file(model.state_dict(), str(directory / "model.safetensors"))
        finish(directory, config, {"minutes": (time.monotonic() - started) / 60})
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    return model.eval()


# ---------------------------------------------------------------------------------------------------- 4. evaluate
@dataclass(frozen=True)
class Head:
    """One way of turning an observation (state, instruction) into a chunk [H, D] in robot units."""

    name: str
    predict: Callable[[np.ndarray, str], np.ndarray]


def regressor_head(model: Regressor, norm: Normalization) -> Head:
    def predict(state: np.ndarray, instruction: str) -> np.ndarray:
        with torch.no_grad():
            chunk = model(torch.from_numpy(norm.features(state, instruction))[None])[0].numpy()
        return unnormalize(chunk.clip(-1, 1), norm.action_q01, norm.action_q99)

    return Head("MLP regressor", predict)


def through_tokenizer(head: Head, tokenizer: ActionTokenizer) -> Head:
    """``head``'s chunks tokenized and detokenized before they are executed: what the tokenizer alone costs."""

    def predict(state: np.ndarray, instruction: str) -> np.ndarray:
        return tokenizer.detokenize(tokenizer.tokenize(head.predict(state, instruction)[None]))[0]

    return Head(f"{head.name} via {tokenizer.kind}", predict)


@torch.no_grad()
def expected_chunk(policy: FASTerVLA, logits: torch.Tensor) -> np.ndarray:
    """FASTerVQ decoding of expected codebook vectors: each position's softmax over its level's K codes weights the
    level's codebook, the levels sum as in RVQ, the TAAE decoder maps the latent grid to actions [B, H, D]."""
    tokenizer, vocabulary = policy.tokenizer, policy.vocabulary
    config = tokenizer.config
    per_level, codes = vocabulary.tokens_per_level, vocabulary.codes_per_level
    latent = 0
    for level, codebook in enumerate(tokenizer.quantizer.layers):
        start = vocabulary.FIRST_CODE + level * codes
        scores = logits[:, level * per_level : (level + 1) * per_level, start : start + codes].float()
        latent = latent + torch.softmax(scores, dim=-1) @ codebook.embed
    latent = latent.view(logits.shape[0], config.time_tokens, config.action_tokens, -1)
    recon = unpatchify(tokenizer.decoder(latent), config.patch_layout)
    return unnormalize(recon, tokenizer.q01, tokenizer.q99).cpu().numpy()


def vla_head(policy: FASTerVLA, decoding: str, frames: dict[str, np.ndarray], generator: torch.Generator) -> Head:
    def predict(state: np.ndarray, instruction: str) -> np.ndarray:
        if decoding != "expected":
            return policy.predict(frames, state, instruction, greedy=decoding == "greedy", generator=generator).actions
        with torch.no_grad():
            batch = policy.processor([{"images": frames, "state": state, "instruction": instruction}])
            batch = batch.to(policy.device)
            generation = policy.decode(policy.encode_prefix(batch), greedy=True, return_logits=True)
            return expected_chunk(policy, generation.logits)[0]

    return Head(f"FASTerVLA ({policy.tokenizer.kind}), {decoding}", predict)


def held_out_l1(head: Head, steps: list[Step], norm: Normalization, count: int) -> tuple[float, int]:
    """Mean |predicted - recorded chunk| in normalised units over ``count`` evenly spaced held-out steps, and how
    many predictions did not decode (left out of the mean)."""
    errors, failures = [], 0
    for step in steps[:: max(1, len(steps) // count)][:count]:
        try:
            chunk = head.predict(step.state, step.instruction)
        except ActionDecodeError:
            failures += 1
            continue
        errors.append(np.abs(norm.actions(chunk) - norm.actions(step.chunk)).mean())
    return (float(np.mean(errors)) if errors else float("nan")), failures


def closed_loop(head: Head, embodiment: Embodiment, args: argparse.Namespace, replan_steps: int) -> dict[str, Any]:
    sim = So101PickPlace(embodiment, seed=args.eval_seed)
    episodes, failures = [], 0
    desc = f"{head.name}, replan {replan_steps}"
    for seed in tqdm(range(args.eval_seed + 1, args.eval_seed + 1 + args.eval_episodes), desc=desc):
        sim.reset(seed)
        instruction = instruction_for(sim)
        steps = 0
        while steps < args.max_steps and not sim.terminated:
            try:
                targets = head.predict(sim.joint_positions(), instruction)[:replan_steps]
            except ActionDecodeError:  # the policy node holds the arm where it is
                failures += 1
                targets = sim.joint_positions()[None]
            for target in targets[: args.max_steps - steps]:
                sim.command(target)
                steps += 1
                if sim.terminated:
                    break
        episodes.append({"seed": seed, "success": sim.success, **sim.progress()})
    sim.close()
    return {
        "success": sum(e["success"] for e in episodes),
        "lifted": sum(e["lifted"] for e in episodes),
        "closest_cm": 100 * statistics.median(e["closest_approach_m"] for e in episodes),
        "model_errors": failures,
        "episodes": episodes,
    }


def run(args: argparse.Namespace) -> int:
    embodiment = Embodiment.load(EMBODIMENT)
    stage("1. record")
    data = record(args, embodiment)
    stage("2. tokenizer")
    tokenizer = fit_tokenizer(args, data)
    stage("3. policies")
    vla = train_vla(args, data, tokenizer)
    policy = FASTerVLA.from_pretrained(vla["path"])
    dataset = EpisodeDataset(data["path"])
    split = dataset.split(0.1, seed=args.seed)  # vla train's default split
    train, held_out = (steps_of(dataset, part, embodiment.chunk_length) for part in (split.train, split.validation))
    state_stats, config = dataset.stats.state, policy.tokenizer.config
    norm = Normalization(state_stats.q01, state_stats.q99, np.asarray(config.q01), np.asarray(config.q99))
    model = Regressor(dof=embodiment.dof, horizon=embodiment.chunk_length)
    upstreams = {"data": upstream(data), "tokenizer": upstream(tokenizer)}  # the normalisation comes from both
    regressor = regressor_head(train_regressor(args, upstreams, train, norm, model), norm)
    stage("4. evaluate")
    frames = {c: np.full((args.image_size, args.image_size, 3), GRAY, np.uint8) for c in embodiment.camera_names}
    generator = torch.Generator().manual_seed(args.seed)
    decodings = [d for d in args.decodings if d != "expected" or args.tokenizer == "fastervq"]  # codebooks only
    heads = [regressor, through_tokenizer(regressor, policy.tokenizer)]
    heads += [vla_head(policy, d, frames, generator) for d in decodings]
    rows = []
    for head in heads:
        l1, undecoded = held_out_l1(head, held_out, norm, args.l1_samples)
        for replan in args.replan_steps:
            loop = closed_loop(head, embodiment, args, replan)
            rows.append({"head": head.name, "replan": replan, "l1": l1, "l1_undecoded": undecoded, **loop})
    stage("5. results")
    lines = [
        f"{'policy (same demonstrations)':<30}{'held-out L1':>12}{'replan':>7}{'success':>9}{'lifted':>8}"
        f"{'closest cm':>12}{'undecoded':>11}",
        *(
            f"{r['head']:<30}{r['l1']:>12.3f}{r['replan']:>7}{r['success']:>6}/{args.eval_episodes:<2}{r['lifted']:>5}/"
            f"{args.eval_episodes:<2}{r['closest_cm']:>10.1f}{r['l1_undecoded']:>5} {r['model_errors']:>5}"
            for r in rows
        ),
        f"data: {len(dataset)} episodes, {data['steps']} steps ({len(split.validation)} episodes held out); FASTerVLA "
        f"{args.policy_steps} steps x batch {args.batch_size}, lr {args.lr}, expert width "
        f"{policy.expert.embed.embedding_dim}, {vla['minutes']:.1f} min; "
        f"eval seeds {args.eval_seed + 1}..{args.eval_seed + args.eval_episodes}, {args.max_steps} steps",
        f"undecoded: held-out predictions left out of the L1 (of {args.l1_samples}), closed-loop steps held in place; "
        "replan: actions executed per prediction",
        "FASTerVLA validation during training (greedy): "
        + ", ".join(f"{v['step']}: L1 {v['action_l1']:.3f} acc {v['token_accuracy']:.3f}" for v in vla["validation"]),
    ]
    table = "\n".join(lines)
    print(table)
    (args.out / f"table_{args.tokenizer}.txt").write_text(table + "\n")
    (args.out / f"results_{args.tokenizer}.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench_perfect_perception"))
    parser.add_argument("--episodes", type=int, default=300, help="successful expert episodes to record")
    parser.add_argument("--tokenizer-steps", type=int, default=2000, help="FASTerVQ fitting steps")
    parser.add_argument("--policy-steps", type=int, default=6000, help="FASTerVLA training steps")
    parser.add_argument("--regressor-steps", type=int, default=6000, help="MLP training steps (batch 256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=64, help="side of the gray frames")
    parser.add_argument("--expert-width", type=int, default=0, help="FASTerVLA's action expert (0: half the backbone)")
    parser.add_argument("--tokenizer", choices=("fastervq", "fast", "bins"), default="fastervq", help="FASTerVLA's")
    parser.add_argument(
        "--decodings", nargs="+", choices=DECODINGS, default=list(DECODINGS), help="expected: FASTerVQ only"
    )
    parser.add_argument("--eval-episodes", type=int, default=16)
    parser.add_argument("--eval-seed", type=int, default=10_000, help="held-out seeds start after it")
    parser.add_argument("--max-steps", type=int, default=120, help="control steps (0.1 s) per episode")
    parser.add_argument(
        "--replan-steps", type=int, nargs="+", default=[1], help="actions executed per prediction; one row per value"
    )
    parser.add_argument("--l1-samples", type=int, default=256, help="held-out steps for the L1 column")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    except StageError as error:
        print(f"\nperfect_perception: FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nperfect_perception: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
