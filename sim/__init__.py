"""Scenarios, runner, schemes, results store, plots and the CLI."""

__version__ = "0.2.0"
