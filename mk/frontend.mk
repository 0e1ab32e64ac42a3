# Front end (frontend/): Vue 3 + TypeScript SPA. `npm ci` only when package-lock.json changed;
# test-frontend type-checks (vue-tsc), runs the Vitest specs and a production build;
# test-e2e drives Debian's Chromium (playwright-core, no browser download) through nginx
# against a whole stack started by scripts/stack.py.
INSTALL_TARGETS += install-frontend
TEST_TARGETS += test-frontend test-e2e

.PHONY: install-frontend test-frontend test-e2e screenshots

install-frontend: frontend/node_modules/.package-lock.json

frontend/node_modules/.package-lock.json: frontend/package-lock.json frontend/package.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

test-frontend: install-frontend
	cd frontend && npm run --silent typecheck && npx vitest run && npm run --silent build

test-e2e: install-frontend install-backend install-worker
	cd frontend && node --test --test-concurrency=1 e2e/

# The browser suite again, writing its screenshots to docs/screenshots/ (test-e2e keeps them
# in frontend/e2e/.artifacts/ so a test run leaves the tree clean).
screenshots: install-frontend install-backend install-worker
	cd frontend && E2E_SCREENSHOT_DIR=docs/screenshots node --test --test-concurrency=1 e2e/
