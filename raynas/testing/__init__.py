"""Contract test suites that every implementation of an interface must pass (pytest-based)."""
