"""Training samples from an episode dataset (``faster_core.data``): one per step, with the next H actions.

Chunks near an episode's end repeat its last action (``action_windows``: the robot holds its final command).
Frames are decoded when a sample is indexed; states, actions and instructions are read once.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset

from faster_core.data.chunks import action_windows
from faster_core.data.episodes import EpisodeDataset
from faster_core.embodiment import Embodiment
from faster_core.policy.processing import Sample, StateNormalizer


class EpisodeSamples(Dataset):
    def __init__(self, dataset: EpisodeDataset, embodiment: Embodiment, episodes: Sequence[int] | None = None):
        dataset.check_fits(embodiment)
        self.dataset, self.embodiment = dataset, embodiment
        self._episodes = []  # (dataset position, state [T, D], chunks [T, H, D], instruction)
        self._index = []  # (position in _episodes, step)
        for i in range(len(dataset)) if episodes is None else episodes:
            episode = dataset.episode(i)
            if not episode.instruction.strip():
                raise ValueError(f"{dataset.path}: episode {episode.episode_id} has no instruction")
            chunks = action_windows(episode.action, embodiment.chunk_length).chunks
            self._index.extend((len(self._episodes), t) for t in range(episode.length))
            self._episodes.append((i, episode.state, chunks, episode.instruction))

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> Sample:
        which, step = self._index[index]
        position, states, chunks, instruction = self._episodes[which]
        images = {c: self.dataset.frame(position, c, step) for c in self.embodiment.camera_names}
        return Sample(images=images, state=states[step], instruction=instruction, actions=chunks[step])

    def state_normalizer(self) -> StateNormalizer:
        """Proprioception bounds from the dataset's statistics (q01/q99 of the observed joint positions)."""
        stats = self.dataset.stats.state
        return StateNormalizer(tuple(stats.q01.tolist()), tuple(stats.q99.tolist()))
