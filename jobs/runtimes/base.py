"""The runtime protocol: how the platform builds user code and runs executions of it.

Modelled on JupyterHub's Spawner: a small base class whose handles are plain JSON, so the
database can store them and a restarted worker can reattach to a running execution. Two
implementations pass one contract suite (``tests/runtimes/test_contract.py``):

- ``local``: one virtual environment per distinct ``requirements.txt``, each execution a
  supervised subprocess with resource limits, sandboxed by bubblewrap where it is installed;
- ``docker``: one image per service version, each execution a locked-down container.

Nothing in this package needs Django: :meth:`LocalConfig.from_settings` and
:meth:`DockerConfig.from_settings` read the ``PLANQK_*`` settings when Django is configured,
and tests construct the runtimes from a config directly.
"""

from __future__ import annotations

import abc
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

#: Execution ids and version ids become file and container names; nothing else is allowed.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is safe as a file and container name, else raise ``ValueError``."""
    if not isinstance(value, str) or not _ID_RE.match(value) or ".." in value:
        raise ValueError(f"invalid {what}: {value!r}")
    return value


@dataclass(frozen=True)
class BuildSpec:
    """What to build: one service version's user code (the folder holding ``src/``)."""

    version_id: str
    source_dir: Path
    requirements: str


@dataclass(frozen=True)
class BuildResult:
    """A finished build. ``handle`` is JSON and goes into ``ExecutionSpec.build``."""

    handle: dict[str, Any]


@dataclass(frozen=True)
class ExecutionSpec:
    """One execution of a built service version, with its input and its limits."""

    execution_id: str
    build: dict[str, Any]
    data: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1024
    cpus: float = 1.0
    timeout_seconds: int = 600
    max_pids: int = 256
    max_output_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class ExecutionState:
    """What :meth:`Runtime.poll` sees.

    ``exit_code`` is the process's exit status (negative: killed by that signal; ``None`` while
    running or when it could not be known). ``timed_out`` and ``output_truncated`` are set when
    the runtime killed the execution for that reason; ``oom_killed`` when the kernel's OOM
    killer did (a ``MemoryError`` raised by Python is an ordinary failure and shows in the
    runner's ErrorResponse instead).
    """

    running: bool
    exit_code: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    output_truncated: bool = False
    peak_memory_kb: int | None = None
    cancelled: bool = False


class BuildError(Exception):
    """A build failed.

    ``user_error`` is True when the user's requirements or code caused it (show the message,
    do not retry) and False for a platform failure (retry, alert). ``code`` is a stable id in
    the style of Read the Docs' ``build:user:...`` messages.
    """

    def __init__(self, message: str, *, user_error: bool, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.user_error = user_error
        self.code = code or ("build:user:failed" if user_error else "build:platform:failed")

    def __str__(self) -> str:
        return self.message


class RuntimeUnavailable(Exception):
    """The runtime cannot work here (no Docker engine, no usable interpreter...)."""


LogFunc = Callable[[str], None]
CancelFunc = Callable[[], bool]


def _never() -> bool:
    return False


class Runtime(abc.ABC):
    """Builds service versions and runs executions of them.

    Every handle a runtime returns is JSON-serialisable and self-contained: a fresh runtime
    object in another process can ``poll``, ``read_output``, ``cancel`` and ``cleanup`` with it.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def build(self, spec: BuildSpec, *, log: LogFunc, should_cancel: CancelFunc = _never) -> BuildResult:
        """Build ``spec``, streaming output lines to ``log``.

        Raises :class:`BuildError` (``user_error`` set when their requirements or code failed,
        with pip's own error text) and honours ``should_cancel`` within a second or two.
        """

    @abc.abstractmethod
    def remove_build(self, build_handle: dict[str, Any]) -> None:
        """Delete what :meth:`build` produced for one version (idempotent)."""

    @abc.abstractmethod
    def start(self, spec: ExecutionSpec) -> dict[str, Any]:
        """Start an execution and return its JSON handle.

        Starting the same ``execution_id`` again first removes the leftovers of an earlier
        attempt, so a retried task is safe.
        """

    @abc.abstractmethod
    def poll(self, handle: dict[str, Any]) -> ExecutionState:
        """The execution's state; kills it when it is past its timeout or over its output cap."""

    @abc.abstractmethod
    def read_output(self, handle: dict[str, Any], offset: int) -> tuple[str, int]:
        """Combined stdout and stderr from byte ``offset``: ``(text, next_offset)``.

        Never returns bytes past the execution's output cap, and never half a UTF-8 character.
        """

    @abc.abstractmethod
    def cancel(self, handle: dict[str, Any]) -> None:
        """Stop a running execution within seconds (a no-op when it has ended)."""

    @abc.abstractmethod
    def cleanup(self, handle: dict[str, Any]) -> None:
        """Remove everything the execution left behind, killing it if needed (idempotent)."""

    @abc.abstractmethod
    def orphans(self, known_execution_ids: set[str]) -> list[dict[str, Any]]:
        """Handles of executions this runtime holds that are not in ``known_execution_ids``.

        For the reaper: pass the ids of every execution the database still considers alive;
        whatever else this returns was left behind by a dead worker.
        """

    def kill_orphan(self, handle: dict[str, Any]) -> None:
        """Stop and remove one execution returned by :meth:`orphans`."""
        self.cancel(handle)
        self.cleanup(handle)

    def describe(self) -> dict[str, str]:
        """What isolation and limits this runtime really applies here, for settings pages."""
        return {"runtime": self.name}


RUNTIME_CLASSES: dict[str, str] = {
    "local": "jobs.runtimes.local.LocalRuntime",
    "docker": "jobs.runtimes.docker.DockerRuntime",
}


def get_runtime(name: str | None = None) -> Runtime:
    """The runtime called ``name``, or the one the ``PLANQK_RUNTIME`` setting chooses."""
    if name is None:
        from django.conf import settings

        name = getattr(settings, "PLANQK_RUNTIME", "local") or "local"
    try:
        dotted = RUNTIME_CLASSES[name]
    except KeyError:
        raise RuntimeUnavailable(f"unknown runtime {name!r}; choose one of {sorted(RUNTIME_CLASSES)}") from None
    module_name, class_name = dotted.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_settings()
