# The Gemini worker and its offline Gemini stand-in (gemini-client/).
INSTALL_TARGETS += install-worker
TEST_TARGETS += test-worker

.PHONY: install-worker test-worker
install-worker:
	cd gemini-client && uv sync --frozen --compile-bytecode

test-worker: install-worker
	cd gemini-client && .venv/bin/ruff check . && .venv/bin/python -m pytest -q
