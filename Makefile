# The two commands a user needs: `make dev` (the whole stack, natively, at http://localhost:8080)
# and `make test` (installs what is missing, starts what is not running, runs every test).
# Each part of the project adds its own targets in mk/<part>.mk.
SHELL := /bin/bash
.DEFAULT_GOAL := help
TEST_TARGETS :=
INSTALL_TARGETS :=

include $(sort $(wildcard mk/*.mk))

.PHONY: help tools services install test dev bench
help:
	@echo "make dev    - run the whole stack natively at http://localhost:8080"
	@echo "make test   - install what is missing, start services, run every test"
	@echo "make bench  - run the benchmarks and print figures"

tools:
	@scripts/ensure-tools.sh

services:
	@scripts/ensure-services.sh

install: tools $(INSTALL_TARGETS)

test: install services
	@set -e; for t in $(TEST_TARGETS); do echo "==> $$t"; $(MAKE) --no-print-directory $$t; done
	@echo "make test: all suites passed"

dev: install services
	python3 scripts/stack.py dev
