# `make bench`: figures, not pass/fail. Starts its own stacks through scripts/stack.py on
# loopback, prints median and p99 of each measurement and writes bench/results/latest.json.
# docs/BENCHMARKS.md records a run. BENCH_ARGS selects parts, e.g. BENCH_ARGS="overhead baseline".
BENCH_ARGS ?= all

bench: install services
	tests/.venv/bin/python bench/run.py $(BENCH_ARGS)

# `make bench-search`: GET /api/search's query on 1,000,000 messages over 1,000 users, in a
# database of its own (bench/search.py; figures in docs/BENCHMARKS.md, "Search").
.PHONY: bench-search
bench-search: install-backend services
	backend/.venv/bin/python bench/search.py
