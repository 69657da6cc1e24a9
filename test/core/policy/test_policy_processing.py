"""The prompt pi0-FAST-style policies read: task text, then the state as integer bins, tokenized for the preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faster_core.policy.backbone import NUMBER_TOKENS, byte_level_tokenizer, load_backbone
from faster_core.policy.configuration import BackboneConfig
from faster_core.policy.processing import StateNormalizer

from policy_helpers import make_policy, samples


def test_state_bins_span_q01_to_q99_and_clip_outside():
    normalizer = StateNormalizer(q01=(-1.0,), q99=(1.0,))
    sweep = normalizer.bins(np.linspace(-1.0, 1.0, 1001)[:, None], 256)[:, 0]
    assert sweep[0] == 0 and sweep[-1] == 255
    assert np.all(np.diff(sweep) >= 0) and len(np.unique(sweep)) == 256
    np.testing.assert_array_equal(normalizer.bins(np.array([[-5.0], [9.0]]), 256)[:, 0], [0, 255])


def test_a_state_shift_is_in_normalised_units():
    normalizer = StateNormalizer(q01=(0.0, -2.0), q99=(1.0, 2.0))
    state = np.array([0.3, -1.0])
    shift = np.array([0.1, -0.25])  # q01..q99 spans 2: 5% and 12.5% of each joint's range
    np.testing.assert_array_equal(normalizer.bins(state, 256, shift=shift), normalizer.bins([0.35, -1.5], 256))


def test_state_noise_changes_only_the_prompted_state():
    processor = make_policy().processor
    batch = samples(3)
    clean = processor(batch, with_actions=True)
    noisy = processor(batch, with_actions=True, state_noise=0.1, generator=np.random.default_rng(0))
    # The demonstrated actions and the images stay as they were; only the state bins in the prompt move.
    assert torch.equal(noisy.action_tokens, clean.action_tokens) and torch.equal(noisy.pixels, clean.pixels)
    text = processor.text_tokenizer.tokenizer
    for row, sample in enumerate(batch):
        prompts = [text.decode(b.text_ids[row][b.text_mask[row]].tolist()[1:]) for b in (clean, noisy)]
        task = prompts[0].split("State:")[0]
        assert prompts[0] == processor.prompt(sample.state, sample.instruction) and prompts[1].startswith(task)
        bins = [np.array(p.split("State:")[1].rstrip(";").split(), dtype=int) for p in prompts]
        assert 0 < np.abs(bins[1] - bins[0]).max() < 0.1 * 128 * 5  # 0.1 of the half range is 12.8 bins: 5 sigma
    again = processor(batch, with_actions=True, state_noise=0.1, generator=np.random.default_rng(0))
    assert torch.equal(again.text_ids, noisy.text_ids)  # the generator decides the noise


@pytest.mark.parametrize(("noise", "generator"), [(-0.1, 0), (float("nan"), 0), (0.1, None)])
def test_state_noise_rejects_a_negative_or_nan_std_and_a_missing_generator(noise, generator):
    processor = make_policy().processor
    rng = None if generator is None else np.random.default_rng(generator)
    with pytest.raises(ValueError, match="state_noise"):
        processor(samples(1), state_noise=noise, generator=rng)


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
