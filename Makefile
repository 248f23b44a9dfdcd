# yikatong — every target sets up what it needs on a fresh machine.
#   make demo    the whole cycle on SQLite with simulated banks on loopback
#   make test    the test suite (SQLite and PostgreSQL)
#   make bench   the benchmarks; results in bench/results/

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

# Debian packages the tests and demo call as independent tools: command -> package
SYSTEM_TOOLS := /usr/bin/xmllint:libxml2-utils /usr/bin/xmlsec1:xmlsec1 /usr/sbin/sshd:openssh-server \
                /usr/bin/sftp:openssh-client /usr/bin/openssl:openssl /usr/bin/curl:curl \
                /usr/bin/chromium:chromium /usr/bin/pdftoppm:poppler-utils /usr/bin/pdftotext:poppler-utils \
                /usr/bin/pg_dump:postgresql-client \
                /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:fonts-noto-cjk

.PHONY: demo test bench venv system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  test -e "$${pair%%:*}" || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# one pytest worker per core (pytest-xdist): each worker has its own PostgreSQL template database and
# temporary folders, and the tests' servers take ephemeral ports, so the workers share nothing
test: $(STAMP) system-deps
	$(PY) -m pytest -q -n auto

demo: $(STAMP) system-deps
	$(VENV)/bin/ykt demo

bench: $(STAMP) system-deps
	mkdir -p bench/results
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var/ .pytest_cache .hypothesis
