"""Fixtures shared by unit test modules."""

from tests.unit.cli_harness import live  # noqa: F401  (the live-API fixture of the CLI tests)
