"""Stages of a scripted flow (``make demo``, the benchmarks) cached on disk under a fingerprint of their options.

A stage directory holds ``stage.json``: the fingerprint, the options and the result. A rerun skips the stage only if
it finished with exactly the same options, which include ``upstream(...)`` of the stages it read from, so a changed
option, or an upstream stage that ran again, rebuilds it and everything after it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from faster_core.cli import main as faster


class StageError(RuntimeError):
    """A stage failed; the message says which and why."""


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(directory: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The stage's stored result if it finished with exactly this configuration, else None (and a clean dir)."""
    stamp = directory / "stage.json"
    if stamp.is_file():
        stored = json.loads(stamp.read_text())
        if stored.get("fingerprint") == fingerprint(config):
            return stored["result"]
    shutil.rmtree(directory, ignore_errors=True)
    return None


def finish(directory: Path, config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    result = {**result, "finished": time.time()}  # downstream stages depend on this very run of the stage
    directory.mkdir(parents=True, exist_ok=True)
    stamp = {"fingerprint": fingerprint(config), "config": config, "result": result}
    (directory / "stage.json").write_text(json.dumps(stamp, indent=1, default=str) + "\n")
    return result


def upstream(stage: dict[str, Any]) -> str:
    """What a downstream stage's cache depends on: the upstream stage's configuration and the run that made it."""
    return fingerprint({"config": stage["config"], "finished": stage["finished"]})


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_faster(argv: list[str]) -> None:
    """``faster ARGV`` in this process; StageError when it fails."""
    print("$ faster " + " ".join(argv), flush=True)
    try:
        status = faster(argv)
    except SystemExit as error:  # argparse errors
        status = error.code
    if status not in (0, None):
        raise StageError(f"`faster {' '.join(argv)}` failed (status {status})")
