"""Runtimes build service versions and run executions: see :mod:`jobs.runtimes.base`."""

from jobs.runtimes.base import (
    BuildError,
    BuildResult,
    BuildSpec,
    ExecutionSpec,
    ExecutionState,
    Runtime,
    RuntimeUnavailable,
    get_runtime,
)

__all__ = [
    "BuildError",
    "BuildResult",
    "BuildSpec",
    "ExecutionSpec",
    "ExecutionState",
    "Runtime",
    "RuntimeUnavailable",
    "get_runtime",
]
