import torch

from faster_core.tokenizer.rvq import EMACodebook, ResidualVQ


class DoublingSync:
    """Stands in for two ranks holding the same batch: sums double, broadcasts are recorded."""

    def __init__(self):
        self.broadcasts = 0

    def all_reduce(self, tensor):
        tensor.mul_(2)

    def broadcast(self, tensor):
        self.broadcasts += 1


def test_quantized_is_sum_of_levels_and_each_level_quantises_the_residual():
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=4, num_quantizers=3, codebook_size=16).eval()
    z = torch.randn(5, 2, 4)
    out = rvq(z)
    assert out.codes.shape == (5, 2, 3) and out.codes.dtype == torch.int64
    torch.testing.assert_close(out.quantized, out.levels.sum(0))
    residual = z
    for i, layer in enumerate(rvq.layers):
        expected = torch.cdist(residual.reshape(-1, 4), layer.embed).argmin(1).view(5, 2)
        assert torch.equal(out.codes[..., i], expected)
        torch.testing.assert_close(out.levels[i], layer.embed[expected])
        residual = residual - out.levels[i]
    torch.testing.assert_close(rvq.decode(out.codes), out.quantized)
    assert (z - out.quantized).norm() < (z - out.levels[0]).norm()  # later levels refine


def test_straight_through_gradient_is_identity():
    rvq = ResidualVQ(dim=3, num_quantizers=2, codebook_size=8).eval()
    z = torch.randn(4, 3, requires_grad=True)
    (rvq(z).quantized * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(z.grad, torch.arange(3.0).expand(4, 3))


def crafted_codebook(sync=None) -> EMACodebook:
    book = EMACodebook(dim=2, codebook_size=3, decay=0.5, eps=0.0, dead_code_threshold=0.6, sync=sync)
    book.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]]))
    book.embed_avg.copy_(book.embed)
    book.cluster_size.fill_(1.0)
    return book


BATCH = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 11.0]])  # -> codes 0, 0, 1; code 2 unused


def test_ema_update_and_dead_code_revival_on_crafted_batch():
    book = crafted_codebook()
    indices = book.indices(BATCH)
    assert indices.tolist() == [0, 0, 1]
    book.update(BATCH, indices)
    # cluster = 0.5 * 1 + 0.5 * [2, 1, 0]; embed_avg = 0.5 * embed + 0.5 * sums; embed = embed_avg / cluster
    torch.testing.assert_close(book.embed[0], torch.tensor([1 / 3, 1 / 3]))
    torch.testing.assert_close(book.embed[1], torch.tensor([9.5, 10.5]))
    # code 2's EMA count 0.5 fell below 0.6 x the uniform share (3 vectors / 3 codes): re-initialised from the batch
    assert any(torch.equal(book.embed[2], row) for row in BATCH)
    assert book.cluster_size.tolist()[:2] == [1.5, 1.0]
    torch.testing.assert_close(book.cluster_size[2], torch.tensor(0.6))
    torch.testing.assert_close(book.embed_avg[2] / book.cluster_size[2], book.embed[2])


def test_laplace_smoothing_keeps_unused_codes_finite():
    book = EMACodebook(dim=2, codebook_size=4, decay=0.9, eps=1e-5, dead_code_threshold=0.0)
    book.update(BATCH, torch.tensor([0, 0, 1]))
    assert torch.isfinite(book.embed).all()
    torch.testing.assert_close(book.embed[1], BATCH[2], rtol=1e-4, atol=1e-4)  # EMA sums / counts, bias cancels


def test_sync_hook_reduces_statistics_and_broadcasts_revived_codes():
    sync = DoublingSync()
    book = crafted_codebook(sync)
    book.update(BATCH, book.indices(BATCH))
    # counts [4, 2, 0] and sums doubled: cluster [2.5, 1.5, 0.5]
    assert book.cluster_size.tolist()[:2] == [2.5, 1.5]
    torch.testing.assert_close(book.embed[1], torch.tensor([(5 + 9) / 1.5, (5 + 11) / 1.5]))
    assert sync.broadcasts == 1


def test_eval_mode_does_not_touch_codebooks_and_training_does():
    rvq = ResidualVQ(dim=2, num_quantizers=2, codebook_size=4)
    before = rvq.layers[0].embed.clone()
    rvq.eval()(torch.randn(8, 2))
    assert torch.equal(rvq.layers[0].embed, before)
    rvq.train()(torch.randn(8, 2))
    assert not torch.equal(rvq.layers[0].embed, before)
