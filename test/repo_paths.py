"""Where the tests find the repository's own files (importable from every test directory)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "faster_bringup" / "config"
EMBODIMENTS = ("single_arm", "bimanual", "whole_body")  # the paper's Table 4 embodiments
ALL_CONFIGS = tuple(sorted(path.stem for path in CONFIG_DIR.glob("*.yaml")))
