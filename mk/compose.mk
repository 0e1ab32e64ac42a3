# The production stack run for real (tests/compose): installs docker.io and starts dockerd
# when needed, builds (or reuses) the stand-ins of the official images from a debootstrap
# Debian root, then drives docker-compose.yml with the README's own `docker compose` commands
# under a project name of its own, on free ports of 127.0.0.1, and removes it all at the end.
# Appended to `make test` as a target-specific value, like test-system, so it runs after the
# other parts and before test-system (compose.mk is read before system.mk).
test: TEST_TARGETS += test-compose

COMPOSE_PYTEST := .venv/bin/pytest -p no:cacheprovider --timeout=1200 -v --durations=12

.PHONY: test-compose
test-compose: install-system install-worker install-backend
	$(RUFF_DEPLOY) check $(RUFF_DEPLOY_OPTS) --select E,F,W,I,B,UP,RUF,SIM tests/compose
	$(RUFF_DEPLOY) format --check $(RUFF_DEPLOY_OPTS) tests/compose
	@tests/compose/engine.sh
	@tests/compose/base.sh
	@python3 tests/compose/images.py
	@# The native pip/npm commands (test_5_native) need no Docker: they run beside the compose
	@# tests, whose time is mostly spent waiting for healthchecks; their output follows.
	cd tests && { $(COMPOSE_PYTEST) compose/test_5_native.py > .native.log 2>&1; \
	    echo $$? > .native.rc; } & \
	    cd tests && $(COMPOSE_PYTEST) --ignore=compose/test_5_native.py compose; rc=$$?; \
	    wait; cat .native.log; native=$$(cat .native.rc); rm -f .native.log .native.rc; \
	    exit $$(( rc || native ))
