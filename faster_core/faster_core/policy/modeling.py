"""FASTerVLA (paper §3.2): a VLM backbone encodes the observation once, an action expert decodes action tokens
block by block (BAR), and the action tokenizer turns them into a chunk in robot units. A tokenizer fitted on delta
chunks (``faster_core.data.chunks``) makes the policy learn actions relative to the observed state; ``predict``
adds the state back, so it returns absolute joint targets whatever the mode.

A saved policy is one directory, safetensors and JSON only::

    policy_config.json     FASTerVLAConfig (+ format version)
    embodiment.json        the Embodiment's parameters
    normalization.json     state q01/q99 used to bin proprioception
    expert.safetensors     the action expert (its embedding table holds the action-token slots)
    backbone/              Hugging Face layout: config.json, model.safetensors, tokenizer.json, preprocessor_config.json
    tokenizer/             the action tokenizer (tokenizer_config.json + its weights)
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from faster_core.data.chunks import from_action_mode
from faster_core.embodiment import Embodiment
from faster_core.policy.backbone import Backbone, Prefix, load_backbone
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
from faster_core.policy.configuration import FASTerVLAConfig
from faster_core.policy.expert import ActionExpert, ExpertCache
from faster_core.policy.processing import FASTerProcessor, PolicyBatch, Sample, StateNormalizer
from faster_core.tokenizer.factory import load_tokenizer

FORMAT_VERSION = 1
CONFIG_FILE = "policy_config.json"
EMBODIMENT_FILE = "embodiment.json"
NORMALIZATION_FILE = "normalization.json"
EXPERT_FILE = "expert.safetensors"
BACKBONE_DIR = "backbone"
TOKENIZER_DIR = "tokenizer"


class ActionDecodeError(ValueError):
    """Decoded tokens that do not form an action chunk (only variable-length tokenizers such as FAST can)."""


@dataclass(frozen=True)
class Timing:
    preprocess_ms: float  # checks, image resizing, prompt and tensors
    prefix_ms: float  # vision tower + backbone over images and prompt (once per control step)
    decode_ms: float  # the action expert's forward passes and sampling
    detokenize_ms: float  # tokens -> actions in robot units (the tokenizer's decoder)
    total_ms: float


@dataclass(frozen=True)
class PolicyOutput:
    actions: np.ndarray  # [H, D] absolute joint targets, robot units, in the tokenizer's range (delta: of the state)
    codes: np.ndarray  # FASTerVQ: [N_c, C_h, C_a]; other tokenizers: their flat token ids
    timing: Timing
    forward_passes: int  # action-expert passes: J = ceil(N / B) for fixed-length tokenizers


@dataclass
class Generation:
    tokens: list[list[int]]  # tokenizer ids per chunk (what ``tokenizer.detokenize`` takes)
    complete: list[bool]  # variable length: whether <EoBlk> came before the token limit
    forward_passes: int
    logits: Tensor | None = None  # [B, N, vocab] raw expert logits of the kept outputs (fixed length, if asked)


@dataclass
class PolicyLoss:
    loss: Tensor
    logits: Tensor  # [B, T, vocab], disallowed tokens at -inf
    labels: Tensor  # [B, T], IGNORE where nothing is predicted

    @property
    def token_accuracy(self) -> Tensor:
        valid = self.labels != IGNORE
        return (self.logits.argmax(-1) == self.labels)[valid].float().mean()


class FASTerVLA(nn.Module):
    def __init__(
        self,
        *,
        embodiment: Embodiment,
        tokenizer: Any,  # an ActionTokenizer fitted for this embodiment
        config: FASTerVLAConfig | None = None,  # default: FASTerVLAConfig()
        backbone: Backbone | None = None,  # default: load_backbone(config.backbone)
        state_normalizer: StateNormalizer | None = None,  # default: the embodiment's joint limits
    ):
        super().__init__()
        _check_tokenizer(tokenizer, embodiment)
        config = config or FASTerVLAConfig()
        self.config = config
        self.embodiment = embodiment
        self.vocabulary = ActionVocabulary.for_tokenizer(tokenizer)
        self.block_size = config.block_size or (embodiment.block_size if self.vocabulary.fixed_length else 1)
        if not self.vocabulary.fixed_length and self.block_size != 1:
            raise ValueError(
                f"{tokenizer.kind} gives variable-length token sequences: it decodes token-wise (block_size 1), "
                f"not in blocks of {self.block_size}"
            )
        self.backbone = backbone if backbone is not None else load_backbone(config.backbone)
        inv_freq, scaling = self.backbone.rotary()
        self.expert = ActionExpert(
            config.expert,
            vocab_size=self.vocabulary.size,
            num_layers=self.backbone.num_layers,
            num_heads=self.backbone.num_heads,
            num_kv_heads=self.backbone.num_kv_heads,
            head_dim=self.backbone.head_dim,
            backbone_width=self.backbone.hidden_size,
            hidden_act=self.backbone.hidden_act,
            inv_freq=inv_freq,
            rotary_scaling=scaling,
        ).to(device=self.backbone.model.device, dtype=self.backbone.model.dtype)
        self.processor = FASTerProcessor(
            embodiment=embodiment,
            tokenizer=tokenizer,
            vocabulary=self.vocabulary,
            text_tokenizer=self.backbone.text_tokenizer,
            image_size=self.backbone.image_size,
            image_mean=self.backbone.image_mean,
            image_std=self.backbone.image_std,
            state_normalizer=state_normalizer or StateNormalizer.from_limits(embodiment),
            state_bins=config.state_bins,
        )

    @property
    def tokenizer(self) -> Any:
        # Held by the processor, not as a submodule: its weights are not the policy's to train or save.
        return self.processor.tokenizer

    @property
    def device(self) -> torch.device:
        return self.expert.head.weight.device

    def _block(self, block_size: int) -> int:
        block = block_size or self.block_size
        if block < 1 or (block != 1 and not self.vocabulary.fixed_length):
            raise ValueError(f"block_size must be >= 1 (1 for {self.tokenizer.kind}), got {block}")
        return block

    def encode_prefix(self, batch: PolicyBatch) -> Prefix:
        trainable = torch.is_grad_enabled() and any(p.requires_grad for p in self.backbone.parameters())
        with torch.set_grad_enabled(trainable):
            return self.backbone.encode(batch.pixels, batch.text_ids, batch.text_mask)

    def forward(self, batch: PolicyBatch, *, block_size: int = 0, action_mask: Tensor | None = None) -> PolicyLoss:
        """Teacher-forced BAR loss (Eq. 3); spacing augmentation in training mode, fixed spacing in eval mode.

        ``action_mask`` [T, T] replaces the block-causal mask (for checks against a plain causal mask).
        """
        if batch.action_tokens is None:
            raise ValueError("forward needs a batch with action tokens (processor(..., with_actions=True))")
        block = self._block(block_size)
        if self.vocabulary.fixed_length:
            inputs, labels = teacher_forcing(batch.action_tokens, block)
        else:
            inputs, labels = teacher_forcing_variable(batch.action_tokens)
        length = inputs.shape[1]
        prefix = self.encode_prefix(batch)
        jitter = self.config.spacing_jitter if self.training else 0
        positions = action_positions(prefix.last_position, length, spacing=self.config.inference_spacing, jitter=jitter)
        mask = action_mask if action_mask is not None else block_causal_mask(length, block, inputs.device)
        logits = self.expert(inputs, positions, prefix=prefix, action_mask=mask).float()
        logits = logits.masked_fill(~self.vocabulary.allowed(length, inputs.device), float("-inf"))
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        return PolicyLoss(loss=loss, logits=logits, labels=labels)

    @torch.no_grad()
    def decode(
        self,
        prefix: Prefix,
        *,
        block_size: int = 0,
        greedy: bool | None = None,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
    ) -> Generation:
        """KV-cached decoding: J = ceil(N / B) expert passes, each restricted to the codes of the level due."""
        greedy = self.config.greedy if greedy is None else greedy
        options = {"greedy": greedy, "top_k": self.config.top_k, "temperature": self.config.temperature}
        passes_before = self.expert.forward_passes
        block = self._block(block_size)
        if not self.vocabulary.fixed_length:
            return self._decode_variable(prefix, options, generator, passes_before)
        count = self.vocabulary.tokens_per_chunk
        span = num_blocks(count, block) * block
        batch = prefix.mask.shape[0]
        device = prefix.mask.device
        cache = ExpertCache(prefix, span)
        positions = action_positions(prefix.last_position, span, spacing=self.config.inference_spacing)
        allowed = self.vocabulary.allowed(span, device)
        inputs = torch.full((batch, block), ActionVocabulary.BOS_BLOCK, dtype=torch.long, device=device)
        outputs, kept_logits = [], []
        for start in range(0, count, block):
            logits = self.expert(inputs, positions[:, start : start + block], cache=cache)
            keep = min(block, count - start)  # a partial last block keeps its first r outputs
            inputs = sample(logits[:, :keep], allowed[start : start + keep], generator=generator, **options)
            outputs.append(inputs)
            kept_logits.append(logits[:, :keep])
        ids = self.vocabulary.from_expert(torch.cat(outputs, dim=1))
        return Generation(
            tokens=ids.tolist(),
            complete=[True] * batch,
            forward_passes=self.expert.forward_passes - passes_before,
            logits=torch.cat(kept_logits, dim=1) if return_logits else None,
        )

    def _decode_variable(
        self, prefix: Prefix, options: dict, generator: torch.Generator | None, passes_before: int
    ) -> Generation:
        """Token-wise decoding up to <EoBlk> (FAST): any code or the end token at every step."""
        limit = self.config.max_action_tokens or 2 * max(1, self.tokenizer.tokens_per_chunk)
        batch, device = prefix.mask.shape[0], prefix.mask.device
        cache = ExpertCache(prefix, limit + 1)
        positions = action_positions(prefix.last_position, limit + 1, spacing=self.config.inference_spacing)
        allowed = self.vocabulary.allowed(1, device)
        token = torch.full((batch, 1), ActionVocabulary.BOS_BLOCK, dtype=torch.long, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        outputs = []
        for step in range(limit + 1):
            logits = self.expert(token, positions[:, step : step + 1], cache=cache)
            token = sample(logits, allowed, generator=generator, **options)
            token[finished] = ActionVocabulary.EOS_BLOCK
            finished |= token[:, 0] == ActionVocabulary.EOS_BLOCK
            outputs.append(token)
            if finished.all():
                break
        ids = torch.cat(outputs, dim=1)
        tokens = []
        for row in ids:
            end = (row == ActionVocabulary.EOS_BLOCK).nonzero()
            codes = row[: int(end[0]) if len(end) else len(row)]
            tokens.append(self.vocabulary.from_expert(codes[None])[0].tolist())
        return Generation(tokens, finished.tolist(), self.expert.forward_passes - passes_before)

    def detokenize(self, generation: Generation) -> np.ndarray:
        """Generated tokens -> actions [B, H, D] in robot units and the tokenizer's action mode; ActionDecodeError
        names what went wrong."""
        for index, complete in enumerate(generation.complete):
            if not complete:
                raise ActionDecodeError(
                    f"chunk {index}: no <EoBlk> within {len(generation.tokens[index])} {self.tokenizer.kind} "
                    "tokens (raise max_action_tokens or check the policy)"
                )
        try:
            return np.asarray(self.tokenizer.detokenize(generation.tokens), dtype=np.float32)
        except ValueError as error:
            raise ActionDecodeError(
                f"{self.tokenizer.kind} tokens do not decode to an action chunk: {error}"
            ) from error

    def predict(
        self,
        images: Mapping[str, np.ndarray],
        state: np.ndarray,
        instruction: str,
        *,
        block_size: int = 0,  # 0: the policy's B
        greedy: bool | None = None,  # None: the config's
        generator: torch.Generator | None = None,
    ) -> PolicyOutput:
        """One control step: images per camera ([H, W, 3] uint8), joint state [D], instruction -> action chunk."""
        was_training = self.training
        self.eval()
        try:
            start = self._clock()
            batch = self.processor([Sample(images, state, instruction)]).to(self.device)
            prepared = self._clock()
            with torch.no_grad():
                prefix = self.encode_prefix(batch)
            encoded = self._clock()
            generation = self.decode(prefix, block_size=block_size, greedy=greedy, generator=generator)
            decoded = self._clock()
            modal = self.detokenize(generation)
            actions = from_action_mode(modal, np.asarray(state, np.float32)[None], self.tokenizer.config.action_mode)[0]
            done = self._clock()
        finally:
            self.train(was_training)
        tokens = np.asarray(generation.tokens[0], dtype=np.int64)
        if self.tokenizer.kind == "fastervq":
            config = self.tokenizer.config
            tokens = tokens.reshape(config.codebooks, config.time_tokens, config.action_tokens)
        timing = Timing(
            preprocess_ms=(prepared - start) * 1e3,
            prefix_ms=(encoded - prepared) * 1e3,
            decode_ms=(decoded - encoded) * 1e3,
            detokenize_ms=(done - decoded) * 1e3,
            total_ms=(done - start) * 1e3,
        )
        return PolicyOutput(actions=actions, codes=tokens, timing=timing, forward_passes=generation.forward_passes)

    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        (directory / BACKBONE_DIR).mkdir(parents=True, exist_ok=True)
        backbone = dataclasses.replace(self.config.backbone, source=BACKBONE_DIR, image_size=self.backbone.image_size)
        config = dataclasses.replace(self.config, backbone=backbone, block_size=self.block_size)
        document = {"format_version": FORMAT_VERSION, **config.to_dict()}
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")
        (directory / EMBODIMENT_FILE).write_text(json.dumps(self.embodiment.to_parameters(), indent=2) + "\n")
        normalizer = self.processor.state_normalizer
        state = {"state": {"q01": list(normalizer.q01), "q99": list(normalizer.q99)}}
        (directory / NORMALIZATION_FILE).write_text(json.dumps(state, indent=2) + "\n")
        weights = {name: t.detach().cpu().contiguous() for name, t in self.expert.state_dict().items()}
        save_file(weights, str(directory / EXPERT_FILE), metadata={"format": "pt"})
        self.backbone.save(directory / BACKBONE_DIR)
        self.tokenizer.save_pretrained(directory / TOKENIZER_DIR)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> FASTerVLA:
        directory = Path(directory)
        document = _read_json(directory / CONFIG_FILE)
        version = document.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise ValueError(f"{directory}: unsupported policy format_version {version!r} (expected {FORMAT_VERSION})")
        config = FASTerVLAConfig.from_dict(document)
        normalization = _read_json(directory / NORMALIZATION_FILE).get("state", {})
        policy = cls(
            embodiment=Embodiment.from_parameters(_read_json(directory / EMBODIMENT_FILE)),
            tokenizer=load_tokenizer(directory / TOKENIZER_DIR),
            config=config,
            backbone=load_backbone(config.backbone, root=directory),
            state_normalizer=StateNormalizer(tuple(normalization["q01"]), tuple(normalization["q99"])),
        )
        weights = directory / EXPERT_FILE
        if not weights.is_file():
            raise ValueError(f"{directory}: missing {EXPERT_FILE}")
        state = load_file(str(weights))
        expected = policy.expert.state_dict()
        if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in state):
            raise ValueError(f"{weights} does not match {CONFIG_FILE} (keys or shapes differ)")
        policy.expert.load_state_dict(state)
        return policy.to(device).eval()


def _check_tokenizer(tokenizer: Any, embodiment: Embodiment) -> None:
    config = tokenizer.config
    shape = (config.chunk_length, config.action_dim)
    if shape != (embodiment.chunk_length, embodiment.dof):
        raise ValueError(
            f"the {tokenizer.kind} tokenizer is for chunks {list(shape)} but embodiment {embodiment.name} has "
            f"[{embodiment.chunk_length}, {embodiment.dof}] (H, D)"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data
