"""Offline stand-in for Google's Gemini REST API (tests, benchmarks, keyless `make dev`)."""
