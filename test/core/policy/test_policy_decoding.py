"""Decoding a tiny random-init FASTerVLA: masks, KV cache, forward passes, valid codes, predict and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faster_core.policy.modeling import ActionDecodeError
from faster_core.tokenizer.bins import BinTokenizer
from faster_core.tokenizer.fast import FASTTokenizer

from policy_helpers import (
    CODEBOOK_SIZE,
    EMBODIMENT,
    make_policy,
    observation,
    one_thread,  # noqa: F401 -- fixture
    samples,
)

pytestmark = pytest.mark.usefixtures("one_thread")
N = 24  # single arm: N_c 3 x C_h 1 x C_a 8


def _batch(policy, count=2):
    return policy.processor(samples(count), with_actions=True)


def test_block_size_one_gives_the_logits_of_a_plain_causal_mask():
    policy = make_policy()
    batch = _batch(policy)
    with torch.no_grad():
        bar1 = policy(batch, block_size=1).logits
        causal = policy(batch, block_size=1, action_mask=torch.ones(N, N, dtype=torch.bool).tril()).logits
        bar7 = policy(batch, block_size=7).logits
    torch.testing.assert_close(bar1, causal)
    assert not torch.allclose(bar7[:, 7:N], causal[:, 7:N])  # inputs differ too, but the mask must matter


@pytest.mark.parametrize(
    ("source", "block"),
    [("tiny-paligemma", 7), ("tiny-paligemma", 1), ("tiny-idefics3", 7), ("tiny-qwen2vl", 5)],
)
def test_cached_decoding_equals_full_recomputation(source, block):
    policy = make_policy(source)
    batch = _batch(policy)  # two prompts of different lengths: the prefix is padded
    with torch.no_grad():
        generation = policy.decode(policy.encode_prefix(batch), block_size=block, greedy=True, return_logits=True)
        batch.action_tokens = torch.tensor([policy.vocabulary.to_expert(t) for t in generation.tokens])
        full = policy(batch, block_size=block).logits[:, :N]  # eval mode: the inference spacing
    allowed = policy.vocabulary.allowed(N)
    torch.testing.assert_close(generation.logits.masked_fill(~allowed, float("-inf")), full, atol=1e-4, rtol=1e-4)


def test_eager_attention_prefix_matches_sdpa():
    policy = make_policy()
    batch = policy.processor(samples(2))  # padded prompts: the eager path builds an additive mask
    eager = make_policy(attn_implementation="eager")
    with torch.no_grad():
        reference, checked = policy.encode_prefix(batch), eager.encode_prefix(batch)
    for (k, v), (k_eager, v_eager) in zip(reference.kv, checked.kv, strict=True):
        torch.testing.assert_close(k_eager, k, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v_eager, v, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block", [1, 5, 7, 8, 24, 30])
def test_forward_passes_equal_the_number_of_blocks(block):
    policy = make_policy()
    before = policy.expert.forward_passes
    out = policy.predict(**observation(), block_size=block)
    assert out.forward_passes == policy.expert.forward_passes - before == math.ceil(N / block)


def test_every_decode_yields_well_formed_codes():
    policy = make_policy(temperature=10.0, top_k=CODEBOOK_SIZE)  # near-uniform over each level's codes
    generator = torch.Generator().manual_seed(0)
    batch = policy.processor(samples(8))
    with torch.no_grad():
        prefix = policy.encode_prefix(batch)
        for block in (1, 7):
            generation = policy.decode(prefix, block_size=block, generator=generator)  # checks levels itself
            codes = np.asarray(generation.tokens)
            assert codes.shape == (8, N) and codes.min() >= 0 and codes.max() < CODEBOOK_SIZE
            assert len(np.unique(codes)) > CODEBOOK_SIZE // 2  # really sampled
            actions = policy.detokenize(generation)
            assert actions.shape == (8, EMBODIMENT.chunk_length, EMBODIMENT.dof)


def test_predict_returns_a_clipped_chunk_codes_and_timing():
    policy = make_policy()
    out = policy.predict(**observation())
    assert out.actions.shape == (EMBODIMENT.chunk_length, EMBODIMENT.dof) and out.actions.dtype == np.float32
    assert out.codes.shape == (3, 1, 8) and out.forward_passes == 4
    config = policy.tokenizer.config
    assert np.all(out.actions >= np.asarray(config.q01) - 1e-4) and np.all(out.actions <= np.asarray(config.q99) + 1e-4)
    timing = out.timing
    parts = timing.preprocess_ms + timing.prefix_ms + timing.decode_ms + timing.detokenize_ms
    assert min(timing.preprocess_ms, timing.prefix_ms, timing.decode_ms, timing.detokenize_ms) > 0
    assert parts <= timing.total_ms + 1e-6


def _broken(**changes):
    obs = observation()
    for key, value in changes.items():
        if key in obs:
            obs[key] = value
        else:
            obs["images"] = {**obs["images"], key: value} if value is not None else {"wrist": obs["images"]["wrist"]}
    return obs


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        (_broken(base=None), r"missing camera image\(s\) \['base'\]"),
        (_broken(wrist=np.zeros((32, 32), np.uint8)), r"camera 'wrist': image must have shape \[H, W, 3\]"),
        (_broken(wrist=np.zeros((32, 32, 4), np.uint8)), r"camera 'wrist': image must have shape \[H, W, 3\]"),
        (_broken(wrist=np.zeros((32, 32, 3), np.float32)), "camera 'wrist': image must be uint8"),
        (_broken(state=np.array([0.0] * 7 + [np.nan])), r"state has NaN/inf for joints \['gripper'\]"),
        (_broken(state=np.zeros(7)), r"state must be a numeric array of shape \[8\]"),
        (_broken(instruction="  "), "instruction must be a non-empty string"),
    ],
)
def test_bad_observations_raise_clear_errors(obs, message):
    policy = make_policy()
    with pytest.raises(ValueError, match=message):
        policy.predict(**obs)


def test_bad_block_size_raises():
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        make_policy().predict(**observation(), block_size=-1)


def test_bins_tokenizer_decodes_in_blocks():
    chunks = np.stack([s.actions for s in samples(16)])
    policy = make_policy(tokenizer=BinTokenizer.fit(chunks))
    out = policy.predict(**observation())
    assert out.forward_passes == math.ceil(EMBODIMENT.chunk_length * EMBODIMENT.dof / EMBODIMENT.block_size)
    assert out.actions.shape == (EMBODIMENT.chunk_length, EMBODIMENT.dof)


def test_a_delta_tokenizer_trains_on_actions_minus_the_state_and_predicts_absolute_targets():
    train = samples(16)
    deltas = np.stack([s.actions - s.state.astype(np.float32) for s in train])
    policy = make_policy(tokenizer=BinTokenizer.fit(deltas, action_mode="delta"))
    batch = policy.processor(train[:2], with_actions=True)
    np.testing.assert_allclose(batch.actions.numpy(), deltas[:2], atol=1e-6)
    obs = observation()
    out = policy.predict(**obs, greedy=True)
    relative = policy.tokenizer.detokenize([out.codes.tolist()])[0]
    np.testing.assert_allclose(out.actions, relative + obs["state"].astype(np.float32), atol=1e-5)
    assert np.abs(out.actions - obs["state"]).max() <= np.abs(deltas).max() + 1e-4  # around the state, not zero


def test_fast_tokenizer_decodes_token_wise_and_reports_failures_clearly():
    chunks = np.stack([s.actions for s in samples(32)])
    fast = FASTTokenizer.fit(chunks, vocab_size=300)
    with pytest.raises(ValueError, match="decodes token-wise"):
        make_policy(tokenizer=fast, block_size=7)
    policy = make_policy(tokenizer=fast, max_action_tokens=6)
    assert policy.block_size == 1
    with torch.no_grad():
        loss = policy(policy.processor(samples(2), with_actions=True)).loss  # variable lengths, padded
    assert torch.isfinite(loss)
    with pytest.raises(ActionDecodeError, match=r"fast tokens|no <EoBlk> within"):
        policy.predict(**observation())  # an untrained policy: at most 6 tokens cannot make a 20 x 8 chunk
