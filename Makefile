# Fresh machine:  make demo  (set up, then summarise the bundled example log)
#                 make test  (set up, then lint, type-check and run the whole test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# command:debian-package pairs: the C compiler for the native scanner, and what the
# real-kernel tests and `nfkit apply` need
SYSTEM_TOOLS := cc:gcc nft:nftables iptables-restore:iptables ip:iproute2 ping:iputils-ping \
                ipset:ipset conntrack:conntrack dmesg:util-linux \
                pg_ctlcluster:postgresql

.PHONY: setup system-deps demo test lint pytest clean

setup: system-deps $(VENV)/.installed

system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing system packages:$$missing (the real-kernel tests need them)"; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml hatch_build.py nfkit/logs/_scan.c nfkit/logs/_store.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/nfkit summarize examples/kern.log --config examples/segment.toml

lint: setup
	$(BIN)/ruff check nfkit tests benchmarks hatch_build.py
	$(BIN)/mypy

pytest: setup
	PATH="$$PATH:/usr/sbin:/sbin" $(BIN)/pytest

test: lint pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
