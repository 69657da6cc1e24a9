import dataclasses
import json

import numpy as np
import pytest
import torch

from faster_core.tokenizer.fastervq import WEIGHTS_FILE, FASTerVQ

from tokenizer_testdata import smooth_chunks


def trained(config, steps: int = 3) -> tuple[FASTerVQ, np.ndarray]:
    """A model with fitted stats and a few EMA/optimiser steps, so codebooks and weights are no longer initial."""
    chunks = smooth_chunks(64, config.chunk_length, config.action_dim)
    q01, q99 = np.quantile(chunks.reshape(-1, config.action_dim), [0.01, 0.99], axis=0)
    torch.manual_seed(0)
    model = FASTerVQ(dataclasses.replace(config, q01=tuple(q01.tolist()), q99=tuple(q99.tolist())))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = model(torch.from_numpy(chunks)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), chunks


def test_encode_decode_shapes_batched_unbatched_and_prefix_levels(tiny_config):
    model, chunks = trained(tiny_config, steps=1)
    codes = model.encode(chunks[:5])
    assert codes.shape == (5, 3, 1, 4) and codes.dtype == torch.int64
    assert model.encode(chunks[0]).shape == (3, 1, 4)
    assert torch.equal(model.encode(torch.from_numpy(chunks[0])), codes[0])
    assert model.decode(codes).shape == (5, 8, 4)
    assert model.decode(codes[0]).shape == (8, 4)
    assert model.decode(codes[:, :1]).shape == (5, 8, 4)  # coarsest level only
    tokens = model.tokenize(chunks[:2])
    assert len(tokens) == 2 and len(tokens[0]) == model.tokens_per_chunk == 12
    assert tokens[0] == codes[0].flatten().tolist()  # level-major, then (C_h, C_a)
    assert model.detokenize(tokens).shape == (2, 8, 4)
    np.testing.assert_array_equal(model.detokenize(tokens), model.decode(codes[:2]).numpy())


def test_decode_stays_within_normalisation_bounds(tiny_config):
    model, _ = trained(tiny_config, steps=1)
    actions = model.decode(torch.randint(0, 32, (16, 3, 1, 4))).numpy()
    q01, q99 = np.array(model.config.q01), np.array(model.config.q99)
    assert np.all(actions >= q01 - 1e-5) and np.all(actions <= q99 + 1e-5)


def test_save_load_round_trip_is_bit_identical(tiny_config, tmp_path, monkeypatch):
    model, chunks = trained(tiny_config)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "tokenizer_config.json"]
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert saved["type"] == "fastervq" and saved["group_sizes"] == [3, 1] and len(saved["q01"]) == 4

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = FASTerVQ.from_pretrained(tmp_path)
    assert loaded.config == model.config
    codes = model.encode(chunks)
    assert torch.equal(loaded.encode(chunks), codes)
    assert torch.equal(loaded.decode(codes), model.decode(codes))
    fresh = FASTerVQ(model.config)  # same config, initial weights: must not reproduce the codes
    assert not torch.equal(fresh.encode(chunks), codes)


def test_bad_actions_raise_clear_errors(tiny_config):
    model, chunks = trained(tiny_config, steps=1)
    bad = chunks[:2].copy()
    bad[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf value.*chunk 1, step 3, dimension 2"):
        model.encode(bad)
    with pytest.raises(ValueError, match=r"shape \[8, 4\] \(H, D\) or \[B, 8, 4\], got \[2, 9, 4\]"):
        model.encode(np.zeros((2, 9, 4), np.float32))
    with pytest.raises(ValueError, match=r"got \[8, 5\]"):
        model.encode(np.zeros((8, 5), np.float32))
    with pytest.raises(ValueError, match=r"floating point.*int64"):
        model.encode(np.zeros((8, 4), np.int64))
    with pytest.raises(ValueError, match="no normalisation stats"):
        FASTerVQ(tiny_config).encode(chunks[0])


def test_bad_codes_raise_clear_errors(tiny_config):
    model, _ = trained(tiny_config, steps=1)
    with pytest.raises(
        ValueError,
        match=r"codes must lie in \[0, 32\): 3 out of range, first 32 at \(chunk, level, time, action\) = "
        r"\(0, 0, 0, 3\)",
    ):
        model.decode(torch.tensor([[[0, 1, 2, 32]]] * 3))
    with pytest.raises(ValueError, match="first -1"):
        model.decode(np.full((3, 1, 4), -1))
    with pytest.raises(ValueError, match=r"codes must be integers, got dtype torch\.float32"):
        model.decode(torch.zeros(3, 1, 4))
    with pytest.raises(ValueError, match=r"codes must have shape \[B, L, 1, 4\]"):
        model.decode(torch.zeros(2, 4, 1, 4, dtype=torch.long))  # 4 levels > N_c
    with pytest.raises(ValueError, match="whole levels of 4 tokens"):
        model.detokenize([[0, 1, 2]])


def test_load_rejects_mismatched_or_missing_files(tiny_config, tmp_path):
    model, _ = trained(tiny_config, steps=1)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "codebook_size": 64}))
    with pytest.raises(ValueError, match="does not match its config"):
        FASTerVQ.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "colour": "red"}))
    with pytest.raises(ValueError, match=r"unknown config keys \['colour'\]"):
        FASTerVQ.from_pretrained(tmp_path)
    (tmp_path / WEIGHTS_FILE).unlink()
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"missing model\.safetensors"):
        FASTerVQ.from_pretrained(tmp_path)


def test_config_validation_names_the_problem(tiny_config):
    with pytest.raises(ValueError, match=r"q01 and q99 need 4 values"):
        dataclasses.replace(tiny_config, q01=(0.0,), q99=(1.0,))
    with pytest.raises(ValueError, match="width 15 must be a multiple of heads 2"):
        dataclasses.replace(tiny_config, width=15)
    with pytest.raises(ValueError, match=r"action_tokens \(C_a\)"):
        dataclasses.replace(tiny_config, action_tokens=3)


def test_bf16_autocast_keeps_the_dct_path_in_fp32(tiny_config):
    model, chunks = trained(tiny_config, steps=1)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = model.encoder(torch.randn(2, 8, 6))
        output = model(torch.from_numpy(chunks[:8]))
    assert z.dtype == torch.float32
    assert torch.isfinite(output.loss) and output.recon.dtype == torch.float32
