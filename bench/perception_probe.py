"""Does a policy's vision tower see where the block is? A linear probe on its image tokens, SO-101 scenes.

Separates "the image tokens do not hold the block's position" from "the policy does not learn to use it" (README,
"Closed loop"). Scenes are rendered as the image benchmark renders them (the front camera, ``--image-size``):
each a fresh held-out seed after 0 to ``--max-expert-steps`` scripted-expert steps, so the arm is anywhere between
its start pose and the grasp. Per feature set (the frame's raw pixels, each ``--policy`` checkpoint's image tokens,
and the same tower randomly initialised), a ridge regression (regularisation chosen on a validation split) maps the
features to the block's x, y; the table gives the held-out position error for each number of training scenes
(``--train``; the policies saw 800 demonstrations in the image benchmark).

    source env.sh && python bench/perception_probe.py --policy artifacts/closed_loop_800/policies/fastervq
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoModelForImageTextToText

from faster_core.data.sim.so101 import INSTRUCTION, So101PickPlace
from faster_core.embodiment import Embodiment
from faster_core.policy.backbone import Backbone, _wrap
from faster_core.policy.modeling import FASTerVLA
from faster_core.policy.processing import FASTerProcessor, Sample

CAMERA = "front"
LAMBDAS = 10.0 ** np.arange(-5, 3)  # ridge strengths tried on the validation split
BATCH = 100


def render_scenes(count: int, *, image_size: int, max_expert_steps: int, seed: int) -> tuple[np.ndarray, ...]:
    """Frames [N, S, S, 3], joint states [N, D] and the block's x, y in cm [N, 2]."""
    embodiment = Embodiment.load("so101")
    sim = So101PickPlace(embodiment, seed=seed, cameras=[CAMERA], image_size=image_size)
    rng = np.random.default_rng(seed)
    frames, states, blocks = [], [], []
    try:
        for scene in tqdm(range(count), desc="rendering scenes", unit="scene"):
            sim.reset(seed + 1 + scene)
            for _ in range(int(rng.integers(0, max_expert_steps + 1))):
                sim.expert_step()
            frames.append(sim.frames()[CAMERA])
            states.append(sim.joint_positions())
            blocks.append(sim.object_positions()[0][:2] * 100)
    finally:
        sim.close()
    return np.stack(frames), np.stack(states), np.stack(blocks)


@torch.no_grad()
def image_tokens(backbone: Backbone, processor: FASTerProcessor, frames: np.ndarray, states: np.ndarray) -> np.ndarray:
    """The tokens the tower hands the language model, [N, tokens x width]."""
    out = []
    for start in range(0, len(frames), BATCH):
        samples = [
            Sample(images={CAMERA: frame}, state=state, instruction=INSTRUCTION)
            for frame, state in zip(frames[start : start + BATCH], states[start : start + BATCH], strict=True)
        ]
        pixels = processor(samples).pixels.flatten(0, 1).to(backbone.model.dtype)
        out.append(backbone.image_features(pixels).float().flatten(1).numpy())
    return np.concatenate(out)


def randomly_initialised(backbone: Backbone) -> Backbone:
    """The same architecture and preprocessing with fresh random weights: what training started from."""
    model = AutoModelForImageTextToText.from_config(backbone.model.config, dtype=backbone.model.dtype)
    return _wrap(model, backbone.text_tokenizer, backbone.image_size, backbone.image_mean, backbone.image_std)


def probe_errors(features: np.ndarray, targets: np.ndarray, train: np.ndarray, validation: np.ndarray,
                 test: np.ndarray) -> np.ndarray:  # fmt: skip
    """Held-out x, y errors (cm) of a ridge regression fitted on ``train``, its strength chosen on ``validation``.

    Dual form (a Gram matrix over scenes): features can be far wider than the scene count."""
    x = features.astype(np.float64)
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
    gram = x @ x.T / x.shape[1]
    offset = targets[train].mean(0)

    def fit(lam: float) -> np.ndarray:
        return np.linalg.solve(gram[np.ix_(train, train)] + lam * np.eye(len(train)), targets[train] - offset)

    def errors(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.linalg.norm(gram[np.ix_(rows, train)] @ weights + offset - targets[rows], axis=1)

    best = min(LAMBDAS, key=lambda lam: np.median(errors(fit(lam), validation)))
    return errors(fit(best), test)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, nargs="+", required=True, help="FASTerVLA checkpoint directories")
    parser.add_argument("--scenes", type=int, default=3000, help="rendered scenes (test + validation + training)")
    parser.add_argument("--test", type=int, default=600, help="held-out scenes the errors are measured on")
    parser.add_argument("--validation", type=int, default=200, help="scenes that choose the ridge strength")
    parser.add_argument("--train", type=int, nargs="+", default=[200, 800, 2200], help="training scenes; a row each")
    parser.add_argument("--image-size", type=int, default=64, help="as the policies were trained")
    parser.add_argument("--max-expert-steps", type=int, default=40, help="scripted steps before a scene's frame")
    parser.add_argument("--seed", type=int, default=50_000, help="scene seeds start after it")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if max(args.train) + args.test + args.validation > args.scenes:
        parser.error(f"--scenes {args.scenes} < test + validation + the largest --train")

    frames, states, blocks = render_scenes(
        args.scenes, image_size=args.image_size, max_expert_steps=args.max_expert_steps, seed=args.seed
    )
    features = {"raw pixels": frames.reshape(len(frames), -1)}
    torch.manual_seed(0)
    for directory in args.policy:
        policy = FASTerVLA.from_pretrained(directory)
        features[f"{directory.name}: trained tower"] = image_tokens(policy.backbone, policy.processor, frames, states)
        fresh = randomly_initialised(policy.backbone)
        features[f"{directory.name}: random init"] = image_tokens(fresh, policy.processor, frames, states)

    order = np.random.default_rng(0).permutation(args.scenes)
    test, validation = order[: args.test], order[args.test : args.test + args.validation]
    rest = order[args.test + args.validation :]
    spread = np.median(np.linalg.norm(blocks[test] - blocks[rest].mean(0), axis=1))
    print(f"\nblock x, y error on {args.test} held-out scenes, cm (median / p90); the mean position: {spread:.2f}")
    print(f"{'features':40s} {'dims':>6s}" + "".join(f"   train {n:>5d}" for n in args.train))
    for name, values in features.items():
        cells = []
        for count in args.train:
            error = probe_errors(values, blocks, rest[:count], validation, test)
            cells.append(f"{np.median(error):6.2f} / {np.percentile(error, 90):4.2f}")
        print(f"{name:40s} {values.shape[1]:6d}" + "".join(f"  {cell:>13s}" for cell in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
