"""``faster vla``: the predict smoke test and training on an episode dataset, through argparse as the CLI wires it."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from faster_core.data.episodes import DatasetWriter
from faster_core.policy import cli
from faster_core.policy.modeling import FASTerVLA

from policy_helpers import (
    CONFIG_DIR,
    EMBODIMENT,
    one_thread,  # noqa: F401 -- fixture
    tiny_tokenizer,
)

pytestmark = pytest.mark.usefixtures("one_thread")
SINGLE_ARM = str(CONFIG_DIR / "single_arm.yaml")


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="faster")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_predict_smoke_prints_passes_and_timing(capsys):
    assert _run(["vla", "predict", "--embodiment", SINGLE_ARM, "--image-size", "32", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert len(rows) == 2 and all(row[1] == "4" for row in rows)  # J = ceil(24 / 7) passes
    assert "actions [20, 8]" in out


def test_train_on_a_dataset_then_predict_with_the_saved_policy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    limits, cameras = EMBODIMENT.limits, EMBODIMENT.camera_names
    with DatasetWriter(
        tmp_path / "data", fps=20, embodiment=EMBODIMENT.name, joint_names=EMBODIMENT.joint_names, cameras=cameras
    ) as writer:
        for i in range(3):
            writer.add_episode(
                timestamps=np.arange(5) / 20,
                state=rng.uniform(limits.position_lower, limits.position_upper, (5, EMBODIMENT.dof)),
                action=rng.uniform(limits.position_lower, limits.position_upper, (5, EMBODIMENT.dof)),
                instruction=f"task {i}",
                success=True,
                frames={c: rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8) for c in cameras},
            )
    tiny_tokenizer().save_pretrained(tmp_path / "tokenizer")
    train = ["vla", "train", "--data", str(tmp_path / "data"), "--tokenizer", str(tmp_path / "tokenizer")]
    train += ["--embodiment", SINGLE_ARM, "--out", str(tmp_path / "policy"), "--image-size", "32"]
    train += ["--expert-width", "48"]
    options = ["--steps", "2", "--batch-size", "2", "--validation-fraction", "0.34", "--augment-images", "--quiet"]
    assert _run([*train, *options, "--state-noise", "0.05"]) == 0
    assert "trained 2 steps on 10 samples" in capsys.readouterr().out
    policy = FASTerVLA.from_pretrained(tmp_path / "policy")
    assert (tmp_path / "policy" / "training_log.json").is_file() and policy.backbone.image_size == 32
    assert policy.config.expert.width == 48 and policy.expert.embed.embedding_dim == 48  # saved and rebuilt
    assert _run(["vla", "predict", "--policy", str(tmp_path / "policy"), "--runs", "1", "--block-size", "1"]) == 0
    assert "   0      24" in capsys.readouterr().out
