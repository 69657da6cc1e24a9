"""BAR building blocks without a model: mask, teacher-forcing layout, vocabulary levels, positions, sampling."""

from __future__ import annotations

import pytest
import torch

from faster_core.policy.bar import (
    IGNORE,
    ActionVocabulary,
    action_positions,
    block_causal_mask,
    num_blocks,
    sample,
    teacher_forcing,
    teacher_forcing_variable,
)

BO, EO = ActionVocabulary.BOS_BLOCK, ActionVocabulary.EOS_BLOCK


def test_block_causal_mask_is_bidirectional_inside_blocks_and_causal_across():
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],  # a partial last block (5 = 2 + 2 + 1)
        ],
        dtype=torch.bool,
    )
    assert torch.equal(block_causal_mask(5, 2), expected)
    assert torch.equal(block_causal_mask(6, 3)[:3, :3], torch.ones(3, 3, dtype=torch.bool))
    assert not block_causal_mask(6, 3)[:3, 3:].any()


def test_block_size_one_is_a_plain_causal_mask():
    assert torch.equal(block_causal_mask(7, 1), torch.ones(7, 7, dtype=torch.bool).tril())


@pytest.mark.parametrize(("tokens", "block", "passes"), [(24, 7, 4), (21, 7, 3), (24, 8, 3), (24, 1, 24), (84, 8, 11)])
def test_number_of_blocks(tokens, block, passes):
    assert num_blocks(tokens, block) == passes


def test_teacher_forcing_shifts_labels_by_one_block_and_pads_a_partial_last_block():
    tokens = torch.tensor([[10, 11, 12, 13, 14]])
    inputs, labels = teacher_forcing(tokens, 2)
    assert inputs.tolist() == [[BO, BO, 10, 11, 12, 13]]
    assert labels.tolist() == [[10, 11, 12, 13, 14, IGNORE]]
    inputs, labels = teacher_forcing(tokens, 1)
    assert inputs.tolist() == [[BO, 10, 11, 12, 13]] and labels.tolist() == [[10, 11, 12, 13, 14]]


def test_variable_length_teacher_forcing_ends_with_the_end_token():
    inputs, labels = teacher_forcing_variable(torch.tensor([[5, 6, 7], [8, -1, -1]]))
    assert inputs.tolist() == [[BO, 5, 6, 7], [BO, 8, EO, EO]]
    assert labels.tolist() == [[5, 6, 7, EO], [8, EO, IGNORE, IGNORE]]


def test_vocabulary_offsets_name_the_level():
    vocab = ActionVocabulary(levels=3, codes_per_level=16, tokens_per_level=2)
    assert vocab.size == 2 + 3 * 16
    ids = vocab.to_expert([0, 15, 0, 15, 3, 4])
    assert ids == [2, 17, 18, 33, 37, 38]
    assert vocab.from_expert(torch.tensor([ids])).tolist() == [[0, 15, 0, 15, 3, 4]]
    with pytest.raises(RuntimeError, match="not a level-0 code"):
        vocab.from_expert(torch.tensor([[18, 2, 18, 18, 34, 34]]))
    allowed = vocab.allowed(7)
    for position in range(6):
        level = position // 2
        assert allowed[position].nonzero().flatten().tolist() == list(range(2 + 16 * level, 2 + 16 * (level + 1)))
    assert allowed[6].all()  # past N: ignored positions never leave an empty row


def test_sampling_never_leaves_the_allowed_tokens():
    vocab = ActionVocabulary(levels=3, codes_per_level=16, tokens_per_level=4)
    allowed = vocab.allowed(12)
    logits = torch.randn(64, 12, vocab.size)
    logits[~allowed.expand_as(logits)] += 100.0  # adversarial: disallowed tokens are by far the likeliest
    generator = torch.Generator().manual_seed(0)
    for greedy in (True, False):
        tokens = sample(logits, allowed, greedy=greedy, top_k=50, temperature=5.0, generator=generator)
        assert allowed.gather(1, tokens.T).all()
        vocab.from_expert(tokens)  # raises on a wrong level


def test_positions_fixed_at_inference_and_jittered_in_training():
    last = torch.tensor([9, 4])
    assert action_positions(last, 4, spacing=2).tolist() == [[11, 13, 15, 17], [6, 8, 10, 12]]
    jittered = action_positions(last, 500, spacing=2, jitter=2, generator=torch.Generator().manual_seed(0))
    steps = torch.diff(torch.cat([last[:, None], jittered], dim=1), dim=1)
    assert set(steps.unique().tolist()) == {1, 2, 3}  # 1 + U{0..2}
