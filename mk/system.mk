# Whole-stack proof under load and faults (tests/system): worker kill -9, backend restart, proxy
# loss, Google faults, bad input and Schemathesis, then outages of the machine's shared
# PostgreSQL, Redis and RabbitMQ. Those outages would disturb a suite running at the same time,
# so test-system is appended to `make test`'s list as a target-specific value: it lands after
# every other part's target, whatever order the mk files are included in.
INSTALL_TARGETS += install-system
test: TEST_TARGETS += test-system

SYSTEM_PYTEST := cd tests && .venv/bin/pytest -p no:cacheprovider --timeout=900

.PHONY: install-system test-system test-system-processes test-system-services

install-system:
	cd tests && uv sync --frozen

# Everything; the service outages come last (their file sorts last).
test-system: install-system
	$(SYSTEM_PYTEST) system -m system

# Only what kills our own processes and fakes Google's faults: safe while others run tests.
test-system-processes: install-system
	$(SYSTEM_PYTEST) system -m "system and not services"

test-system-services: install-system
	$(SYSTEM_PYTEST) system -m services
