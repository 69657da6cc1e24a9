import itertools
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from faster_core.tokenizer.fastervq import FASTerVQ
from faster_core.tokenizer.train import LOG_FILE, cosine_with_warmup, fit_tokenizer

from tokenizer_testdata import smooth_chunks


def test_cosine_schedule_warms_up_then_decays_to_zero():
    factors = [cosine_with_warmup(step, warmup=4, total=20) for step in range(21)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[12] == pytest.approx(0.5) and factors[20] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[4:]))


def test_fit_learns_saves_and_reloads(tmp_path, tiny_config):
    chunks = smooth_chunks(512, 8, 4)
    result = fit_tokenizer(
        chunks[:448],
        chunks[448:],
        tiny_config,
        tmp_path,
        steps=60,
        batch_size=32,
        lr=3e-3,
        val_every=20,
        progress=False,
    )
    val = [entry["val_l1"] for entry in result.history if "val_l1" in entry]
    assert len(val) == 4 and val[-1] < 0.7 * val[0]
    assert result.tokenizer.config.q01 is not None  # stats fitted from the training chunks
    loaded = FASTerVQ.from_pretrained(tmp_path)
    assert torch.equal(loaded.encode(chunks[448:]), result.tokenizer.encode(chunks[448:]))
    assert (tmp_path / LOG_FILE).is_file()


class NoSync:
    def all_reduce(self, tensor):
        pass

    def broadcast(self, tensor):
        pass


def _codebooks(model: FASTerVQ) -> np.ndarray:
    return torch.cat([layer.embed for layer in model.quantizer.layers]).numpy()


def _ddp_worker(rank: int, world: int, port: int, out: str, config) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        chunks = smooth_chunks(256, config.chunk_length, config.action_dim)
        model = fit_tokenizer(chunks, None, config, None, steps=4, batch_size=32, progress=False).tokenizer
        np.save(os.path.join(out, f"synced_{rank}.npy"), _codebooks(model))
        weights = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
        np.save(os.path.join(out, f"weights_{rank}.npy"), weights)
        # negative control: one more training step on rank-specific data with the statistics left unreduced
        model.quantizer.set_sync(NoSync())
        model.train()(torch.from_numpy(smooth_chunks(32, config.chunk_length, config.action_dim, seed=10 + rank)))
        np.save(os.path.join(out, f"unsynced_{rank}.npy"), _codebooks(model))
    finally:
        dist.destroy_process_group()


def test_ddp_with_two_gloo_ranks_keeps_codebooks_identical(tmp_path, tiny_config):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), tiny_config), nprocs=2, join=True)
    synced = [np.load(tmp_path / f"synced_{rank}.npy") for rank in range(2)]
    np.testing.assert_array_equal(synced[0], synced[1])
    np.testing.assert_array_equal(np.load(tmp_path / "weights_0.npy"), np.load(tmp_path / "weights_1.npy"))
    torch.manual_seed(0)
    assert not np.array_equal(synced[0], _codebooks(FASTerVQ(tiny_config)))  # training did move them
    unsynced = [np.load(tmp_path / f"unsynced_{rank}.npy") for rank in range(2)]
    assert not np.array_equal(unsynced[0], unsynced[1])  # without the all-reduce the ranks drift apart
