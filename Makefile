# faster-ros: `make test` on a fresh machine installs what it needs, then lints and runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c  # no -u: colcon's generated setup scripts read unset variables
IN_ENV := source env.sh &&

.PHONY: setup test lint clean

setup:
	bash tools/setup.sh

lint: setup
	$(IN_ENV) ruff check . && ruff format --check .

test: lint
	$(IN_ENV) python -m pytest

clean:
	rm -rf build install log env.sh
