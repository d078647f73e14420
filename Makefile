# vbank: `make run` and `make test` install whatever is missing, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages the project needs: the browser for end-to-end tests, speech tools for test
# audio, a CJK font so the pages' Chinese labels render in Chromium, and an X server with
# Mesa's OpenGL and xdotool so the 3D lobby's window can be tested without a screen or a person,
# and libspeexdsp for the 3D client's echo cancellation.
DEB_PACKAGES := chromium espeak-ng sox fonts-wqy-microhei xvfb xauth libgl1-mesa-dri xdotool \
                libspeexdsp1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint unit scenarios deps system clean

run: deps system
	$(VENV)/bin/vbank serve --host $(HOST) --port $(PORT) --demo

test: deps system lint
	$(PY) -m pytest -q -p no:cacheprovider tests/unit tests/integration tests/e2e

lint: deps
	$(VENV)/bin/ruff check vbank tests bench client
	$(VENV)/bin/mypy

unit: deps
	$(PY) -m pytest -q tests/unit

scenarios: deps system
	$(VENV)/bin/vbank scenario run scenes/scenarios/*.yaml

deps: $(VENV)/.stamp-deps

# torch is installed first, pinned, so that nothing later can pull a CUDA build.
$(VENV)/.stamp-deps: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps pipecat-ai==1.14.0  # for Smart Turn v3's ONNX file only
	touch $@

# apt-get only for what is absent; never a browser download.
system:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

clean:
	rm -rf $(VENV) var artifacts
