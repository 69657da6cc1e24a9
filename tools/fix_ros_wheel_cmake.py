"""Rewrite the build-container Python paths baked into the ROS 2 wheels' CMake files to this venv's paths.

The Kilted wheels export ``*.cmake`` files naming /opt/python/cp311-cp311/...; CMake fails on them until they
point at this interpreter's include dir and purelib. Safe to run repeatedly: fixed files no longer match.
"""

import sys
import sysconfig
from pathlib import Path

CONTAINER_PREFIX = "/opt/python/cp311-cp311"
REPLACEMENTS = {
    f"{CONTAINER_PREFIX}/include/python3.11": sysconfig.get_paths()["include"],
    f"{CONTAINER_PREFIX}/lib/python3.11/site-packages": sysconfig.get_paths()["purelib"],
}


def main(venv: str) -> int:
    fixed = 0
    for path in Path(venv, "share").rglob("*.cmake"):
        text = path.read_text(errors="surrogateescape")
        if CONTAINER_PREFIX not in text:
            continue
        for old, new in REPLACEMENTS.items():
            text = text.replace(old, new)
        path.write_text(text, errors="surrogateescape")
        fixed += 1
    if fixed:
        print(f"[setup] fixed container paths in {fixed} CMake files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
