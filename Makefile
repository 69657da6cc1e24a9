# faster-ros: `make test` on a fresh machine installs what it needs, then lints and runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c  # no -u: colcon's generated setup scripts read unset variables
IN_ENV := source env.sh &&

.PHONY: setup aloha demo test lint clean

setup:
	bash tools/setup.sh

demo: setup  # closed loop on a simulated SO-101 with a checkpoint made here (artifacts/demo/)
	$(IN_ENV) python -m faster_ros.demo

aloha:  # the optional ALOHA simulator environment (.venv-aloha, MuJoCo 2.3.7)
	bash tools/setup_aloha.sh

lint: setup
	$(IN_ENV) ruff check . && ruff format --check .

test: lint aloha
	$(IN_ENV) python -m pytest

clean:
	rm -rf build install log env.sh
