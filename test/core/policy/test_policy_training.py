"""Training FASTerVLA: overfitting one batch, freezing, save/load, DDP over two gloo ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from faster_core.policy.modeling import FASTerVLA
from faster_core.policy.training import evaluate_policy, train_policy

from policy_helpers import (
    EMBODIMENT,
    make_policy,
    observation,
    one_thread,  # noqa: F401 -- fixture
    samples,
)

pytestmark = pytest.mark.usefixtures("one_thread")
FASTER_CORE = Path(__file__).resolve().parents[3] / "faster_core"


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, p in module.named_parameters() if not torch.equal(p, before[name])}


def test_tiny_model_overfits_one_batch():
    # Fixed spacing: with jitter the identical <BoBlk> inputs of the first block differ only by jittered
    # positions, which a 2-layer model learns too slowly for a unit test (the loss stalls near 0.3 here).
    policy = make_policy(spacing_jitter=0)
    batch = samples(2)
    before = evaluate_policy(policy, batch)
    result = train_policy(
        policy, batch, steps=100, validation=batch, batch_size=2, learning_rate=5e-3, warmup_steps=5, progress=False
    )
    assert result.losses[0] > 1.0 and result.losses[-1] < 0.02
    metrics = result.validation[-1]
    assert before.token_accuracy < 0.5 and metrics.token_accuracy == 1.0 and metrics.loss < 0.02
    # Every token right: the decoded chunk is the tokenizer's own reconstruction of the target.
    reconstruction = policy.tokenizer.detokenize(policy.tokenizer.tokenize(np.stack([s.actions for s in batch])))
    config = policy.tokenizer.config
    scale = (np.asarray(config.q99) - np.asarray(config.q01)) / 2
    expected = np.mean(np.abs(reconstruction - np.stack([s.actions for s in batch])) / scale)
    assert metrics.action_l1 == pytest.approx(expected, rel=1e-3, abs=1e-5) and metrics.decode_failures == 0


@pytest.mark.parametrize("stage", ["freeze_backbone", "freeze_vision"])
def test_freezing_keeps_those_weights(stage):
    policy = make_policy()
    backbone, expert = _snapshot(policy.backbone), _snapshot(policy.expert)
    train_policy(policy, samples(2), steps=2, batch_size=2, learning_rate=1e-3, progress=False, **{stage: True})
    assert _changed(policy.expert, expert) == set(expert)
    changed = _changed(policy.backbone, backbone)
    tower = set(map(id, policy.backbone.vision_tower.parameters()))
    vision = {name for name, p in policy.backbone.named_parameters() if id(p) in tower}
    assert vision and not changed & vision
    assert bool(changed) == (stage == "freeze_vision")


def test_bf16_autocast_step():
    policy = make_policy()
    expert = _snapshot(policy.expert)
    result = train_policy(policy, samples(2), steps=1, batch_size=2, learning_rate=1e-3, bf16=True, progress=False)
    assert np.isfinite(result.losses[0]) and _changed(policy.expert, expert)


def test_save_and_load_round_trip(tmp_path):
    policy = make_policy()
    train_policy(policy, samples(2), steps=1, batch_size=2, learning_rate=1e-3, progress=False)
    policy.save_pretrained(tmp_path / "policy")
    files = {p.relative_to(tmp_path / "policy").as_posix() for p in (tmp_path / "policy").rglob("*") if p.is_file()}
    assert {"policy_config.json", "embodiment.json", "normalization.json", "expert.safetensors"} <= files
    assert {"backbone/model.safetensors", "backbone/tokenizer.json", "tokenizer/tokenizer_config.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    loaded = FASTerVLA.from_pretrained(tmp_path / "policy")
    for obs_seed in (0, 1):
        a = policy.predict(**observation(obs_seed), greedy=True)
        b = loaded.predict(**observation(obs_seed), greedy=True)
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_allclose(a.actions, b.actions, atol=1e-6)
    assert loaded.block_size == policy.block_size and loaded.embodiment.joint_names == EMBODIMENT.joint_names


DDP_SCRIPT = """
    import os, sys
    import numpy as np, torch
    sys.path.insert(0, {helpers!r})
    from policy_helpers import make_policy, samples
    from faster_core.policy.training import train_policy

    rank = int(os.environ["RANK"])
    torch.set_num_threads(1)
    policy = make_policy(seed=rank)  # different initial weights: DDP must start every rank from rank 0's
    flat = lambda: torch.cat([p.detach().flatten() for p in policy.parameters()]).numpy()
    np.save(os.path.join({out!r}, f"init{{rank}}.npy"), flat())
    train_policy(policy, samples(4, seed=rank), steps=2, batch_size=4, learning_rate=1e-3, progress=False)
    np.save(os.path.join({out!r}, f"rank{{rank}}.npy"), flat())
"""


def test_ddp_two_gloo_ranks_keep_parameters_identical(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(helpers=str(Path(__file__).parent), out=str(tmp_path))))
    env = {**os.environ, "PYTHONPATH": str(FASTER_CORE), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    init0, init1 = np.load(tmp_path / "init0.npy"), np.load(tmp_path / "init1.npy")
    rank0, rank1 = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    assert not np.array_equal(init0, init1)
    np.testing.assert_array_equal(rank0, rank1)
    assert not np.array_equal(rank0, init0)
