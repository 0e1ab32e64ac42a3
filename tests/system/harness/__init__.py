"""Whole-stack test harness shared by the fault suite (tests/system) and the benchmarks (bench/)."""
