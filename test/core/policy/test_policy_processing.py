"""The prompt pi0-FAST-style policies read: task text, then the state as integer bins, tokenized for the preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faster_core.policy.backbone import NUMBER_TOKENS, byte_level_tokenizer, load_backbone
from faster_core.policy.configuration import BackboneConfig
from faster_core.policy.processing import StateNormalizer


def test_state_bins_span_q01_to_q99_and_clip_outside():
    normalizer = StateNormalizer(q01=(-1.0,), q99=(1.0,))
    sweep = normalizer.bins(np.linspace(-1.0, 1.0, 1001)[:, None], 256)[:, 0]
    assert sweep[0] == 0 and sweep[-1] == 255
    assert np.all(np.diff(sweep) >= 0) and len(np.unique(sweep)) == 256
    np.testing.assert_array_equal(normalizer.bins(np.array([[-5.0], [9.0]]), 256)[:, 0], [0, 255])


def test_preset_tokenizer_reads_each_state_bin_as_one_token_and_round_trips():
    tokenizer = byte_level_tokenizer()
    prompt = "Task: stack 2 cubes, State: 0 7 42 128 255 256;"
    ids = tokenizer.encode(prompt)
    assert ids[0] == tokenizer.bos_id
    assert tokenizer.tokenizer.decode(ids[1:]) == prompt
    state = tokenizer.tokenizer.encode("State: 0 7 42 128 255 256;", add_special_tokens=False).tokens
    numbers = state[state.index(":") + 1 :]
    assert [p for p in numbers if p not in ("Ġ", ";")] == ["0", "7", "42", "128", "255", "25", "6"]  # no 256 token
    assert tokenizer.vocab_size == 260 + NUMBER_TOKENS - 10  # the ten digits were bytes already


def test_preset_number_tokens_start_ordered_by_value():
    backbone = load_backbone(BackboneConfig(source="tiny-paligemma", image_size=32))
    table = backbone.model.get_input_embeddings().weight.detach()
    ids = backbone.text_tokenizer.tokenizer.token_to_id
    number = table[[ids(str(n)) for n in range(NUMBER_TOKENS)]]
    similarity = torch.nn.functional.cosine_similarity(number[100][None], number, dim=1)
    # Neighbouring bins start alike and far ones apart: the order a pretrained model would bring.
    assert similarity[101] > similarity[110] > similarity[200]
    assert similarity[99] > 0.9 and abs(similarity[200]) < 0.5
    std = backbone.model.config.get_text_config().initializer_range
    assert number.std().item() == pytest.approx(std, rel=0.1)  # at the init scale of the other embeddings
    letters = table[[ids(c) for c in "abc"]]
    assert not torch.allclose(letters[0], letters[1])  # other tokens keep their random init
