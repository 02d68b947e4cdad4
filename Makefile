# Trellis — every target runs as root on Debian 12.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages the code and the tests use (kernel tooling, static pid-1 reaper, peers for benchmarks).
APT_PACKAGES := catatonit busybox-static runc python3-venv python3-nftables python3-seccomp nftables \
	iproute2 skopeo docker-registry python3-bcrypt curl
PYTEST_ARGS ?=

.PHONY: demo test install lint bench clean

demo: install
	$(PY) -m trellis.demo

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed

# apt: only when a package is missing; the venv sees Debian's python3-nftables/python3-seccomp.
$(VENV)/.installed: pyproject.toml Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info
