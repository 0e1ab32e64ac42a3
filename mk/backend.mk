# Backend (FastAPI): locked install with uv, lint, then the pytest suite against the real
# PostgreSQL, Redis and RabbitMQ (each run uses its own database, Redis prefix and queues).
INSTALL_TARGETS += install-backend
TEST_TARGETS += test-backend

.PHONY: install-backend test-backend
install-backend:
	cd backend && uv sync --frozen

test-backend: install-backend
	cd backend && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/python -m pytest
