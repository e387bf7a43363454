# imgbuild developer entry points. Everything stateful (venv, daemon data, registry, caches) lives
# under $(DEV_HOME), outside the repo, so a second run reuses it.
SHELL := /bin/bash
DEV_HOME ?= $(or $(IMGBUILD_DEV_HOME),$(HOME)/.cache/imgbuild-dev)
VENV := $(DEV_HOME)/venv
export IMGBUILD_DEV_HOME := $(DEV_HOME)

.PHONY: services install demo test lint bench

services:  ## Docker engine + buildx, local registry, base OS image, Ruby source, ruby-build
	bash dev/services.sh

install:  ## imgbuild and its dev tools in $(VENV)
	bash dev/install.sh "$(VENV)"

demo: services install  ## build + push the example app, run it, show the report
	bash dev/demo.sh "$(VENV)"

test: services install  ## the whole suite, on the real daemon and registry
	source "$(DEV_HOME)/env" && cd "$(CURDIR)" && "$(VENV)/bin/python" -m pytest $(PYTEST_ARGS)

lint: install
	"$(VENV)/bin/ruff" check buildkit tests bench
	"$(VENV)/bin/ruff" format --check buildkit
	"$(VENV)/bin/mypy"

bench: services install
	source "$(DEV_HOME)/env" && "$(VENV)/bin/python" bench/run.py $(BENCH_ARGS)
