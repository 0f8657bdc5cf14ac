"""Runtimes build service versions and run executions: see :mod:`runtimes.base`.

This package does not import Django (``jobs.runtime_factory`` configures it from the settings).
"""

from runtimes.base import (
    RUNTIME_CLASSES,
    BuildError,
    BuildHandle,
    BuildResult,
    BuildSpec,
    ExecutionHandle,
    ExecutionSpec,
    ExecutionState,
    Handle,
    Runtime,
    RuntimeUnavailable,
    runtime_class,
)

__all__ = [
    "RUNTIME_CLASSES",
    "BuildError",
    "BuildHandle",
    "BuildResult",
    "BuildSpec",
    "ExecutionHandle",
    "ExecutionSpec",
    "ExecutionState",
    "Handle",
    "Runtime",
    "RuntimeUnavailable",
    "runtime_class",
]
