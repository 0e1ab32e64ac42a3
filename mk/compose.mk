# The production stack run for real (tests/compose): installs docker.io and starts dockerd
# when needed, builds (or reuses) the stand-ins of the official images from a debootstrap
# Debian root, then drives docker-compose.yml with the README's own `docker compose` commands
# under a project name of its own, on free ports of 127.0.0.1, and removes it all at the end.
# Appended to `make test` as a target-specific value, like test-system, so it runs after the
# other parts and before test-system (compose.mk is read before system.mk).
test: TEST_TARGETS += test-compose

.PHONY: test-compose
test-compose: install-system install-worker
	@tests/compose/engine.sh
	@tests/compose/base.sh
	@python3 tests/compose/images.py
	cd tests && .venv/bin/pytest -p no:cacheprovider --timeout=1200 -v compose
