"""Demonstration data: the episode format, action chunking, simulator experts and rosbag conversion.

The format and chunking are importable from here; ``faster_core.data.sim`` (simulators) and
``faster_core.data.bags`` (rosbags) are imported explicitly, as they need optional packages.
"""

from faster_core.data.chunks import ActionWindows, action_chunks, action_windows
from faster_core.data.episodes import (
    DatasetError,
    DatasetSplit,
    DatasetWriter,
    Episode,
    EpisodeDataset,
    SkippedEpisode,
)
from faster_core.data.frames import FrameError, LazyFrames
from faster_core.data.stats import ArrayStats, DatasetStats

__all__ = [
    "ActionWindows",
    "ArrayStats",
    "DatasetError",
    "DatasetSplit",
    "DatasetStats",
    "DatasetWriter",
    "Episode",
    "EpisodeDataset",
    "FrameError",
    "LazyFrames",
    "SkippedEpisode",
    "action_chunks",
    "action_windows",
]
