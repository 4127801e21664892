# Two commands do everything on a fresh machine:
#   make run   -> create .venv if missing, install the project, check (and on Debian/Ubuntu
#                 install with apt-get) the system libraries Qt's xcb plugin needs, open the app
#   make test  -> same install, then the whole test suite (Qt offscreen)
#   make soak N=10 -> the whole suite N times (default 10), stopping at the first failing run
# Re-running either on an installed tree skips the install (stamp file).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.afwb-install-stamp
# Pinned for this machine: these wheels lie on its disk, so pip installs them
# without a download. PySide6 6.12.0 drops references to None/True on Python
# 3.11 and aborts the interpreter ("bool_dealloc"); 6.11.3 does not.
# pyproject.toml declares looser ranges for users.
PINS   := torch==2.14.1 torchvision==0.29.1 PySide6-Essentials==6.11.3
PYTEST ?= QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q
N      ?= 10

.PHONY: run test soak install bench clean-venv

run: $(STAMP)
	$(PY) tools/qt_system_libs.py --install
	$(PY) main.py

test: $(STAMP)
	$(PYTEST)

soak: $(STAMP)
	@for i in $$(seq 1 $(N)); do \
		echo "=== soak run $$i of $(N) ($$(uptime | sed 's/.*load/load/'))"; \
		$(PYTEST) || { echo "soak: run $$i of $(N) FAILED"; exit 1; }; \
	done; \
	echo "soak: $(N) of $(N) runs passed"

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q $(PINS) -e '.[test,onnx,reproduce]'
	touch $(STAMP)

bench: $(STAMP)
	$(PY) bench/layers.py
	$(PY) bench/overhead.py

clean-venv:
	rm -rf $(VENV)
