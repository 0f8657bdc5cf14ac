"""The runtime protocol: how the platform builds user code and runs executions of it.

Modelled on JupyterHub's Spawner: a small base class whose handles are typed dataclasses that
turn into JSON and back, so the database can store them and a restarted worker can reattach to
a running execution. Three implementations pass one contract suite
(``tests/runtimes/test_contract.py``):

- ``local``: one virtual environment per distinct ``requirements.txt``, each execution a
  supervised subprocess with resource limits, sandboxed by bubblewrap where it is installed;
- ``docker``: one image per service version, each execution a locked-down container;
- ``external``: services imported from a URL; the provider runs them, the runtime forwards.

Nothing in this package imports Django: ``jobs.runtime_factory`` builds each runtime's config
from the ``PLANQK_*`` settings, and tests construct the runtimes from a config directly.
"""

from __future__ import annotations

import abc
import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from planqk_runtime.outputs import OutputFile, OutputLimits
from planqk_runtime.protocol import FinalResponse

#: Execution ids and version ids become file and container names; nothing else is allowed.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is safe as a file and container name, else raise ``ValueError``."""
    if not isinstance(value, str) or not _ID_RE.match(value) or ".." in value:
        raise ValueError(f"invalid {what}: {value!r}")
    return value


_H = TypeVar("_H", bound="Handle")

LogFunc = Callable[[str], None]
CancelFunc = Callable[[], bool]


class Handle:
    """Base of the typed handles: a frozen dataclass that turns into JSON and back.

    ``from_json`` takes what ``to_json`` wrote and also the plain dicts stored before handles
    were typed (same keys): unknown keys are ignored, and a missing key that has a default
    gets it. A ``runtime`` key naming another runtime, or a missing required key, is a
    ``ValueError``.
    """

    runtime: str

    def to_json(self) -> dict[str, Any]:
        """The handle as JSON (what ``Job.runtime_handle`` / ``ServiceVersion.build_handle`` store)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[_H], data: Mapping[str, Any]) -> _H:
        """The handle ``to_json`` described (or the untyped dict of earlier releases)."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a {cls.__name__} is a JSON object, not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        expected = next(f.default for f in dataclasses.fields(cls) if f.name == "runtime")  # type: ignore[arg-type]
        if data.get("runtime", expected) != expected:
            raise ValueError(f"not a handle of the {expected} runtime: {data.get('runtime')!r}")
        try:
            return cls(**{key: value for key, value in data.items() if key in names})
        except TypeError as exc:
            raise ValueError(f"incomplete {cls.__name__}: {exc}") from None


class BuildHandle(Handle):
    """What a build produced, self-contained: enough for :meth:`Runtime.start` on any worker."""


class ExecutionHandle(Handle):
    """One running (or ended) execution: enough for a fresh runtime object to reattach."""

    execution_id: str
    started_at: float | None


@dataclass(frozen=True)
class BuildSpec:
    """What to build: one service version's user code (the folder holding ``src/``).

    ``external_url`` is for the ``external`` runtime only: where the provider's service runs.
    """

    version_id: str
    source_dir: Path
    requirements: str
    external_url: str = ""


@dataclass(frozen=True)
class BuildResult:
    """A finished build: ``build`` goes into ``ExecutionSpec.build``, ``handle`` into the database."""

    build: BuildHandle

    @property
    def handle(self) -> dict[str, Any]:
        """The build handle as JSON, for ``ServiceVersion.build_handle``."""
        return self.build.to_json()


@dataclass(frozen=True)
class ExecutionSpec:
    """One execution of a built service version, with its input and its limits."""

    execution_id: str
    build: BuildHandle
    data: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 1024
    cpus: float = 1.0
    timeout_seconds: int = 600
    max_pids: int = 256
    max_output_bytes: int = 10 * 1024 * 1024
    #: Caps on the result files the program may leave in its output directory (``OUTPUT_DIRECTORY``).
    output_limits: OutputLimits = field(default_factory=OutputLimits)
    #: Where a runtime reports what it did on this host for the execution besides running it (the
    #: local runtime materialising a build made on another host): lines for the job's log.
    log: LogFunc | None = field(default=None, compare=False, repr=False)
    #: Writes the version's user code (its stored archive, unpacked with the upload checks) into
    #: the empty folder it is given: how a runtime gets the code of a build made on another host.
    unpack_code: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)
    #: Called every second or so while a start works for long (materialising a build): the
    #: caller beats its heartbeat there; True stops the start (RuntimeUnavailable).
    should_stop: CancelFunc | None = field(default=None, compare=False, repr=False)


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
    #: The program wrote far more into its output directory than result files may be (the local
    #: runtime's folder is on disk: it is watched so that no program fills it).
    output_files_exceeded: bool = False


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
    """The runtime cannot work here (no Docker engine, no usable interpreter...).

    ``code`` is the job's platform error code when a start fails with it.
    """

    def __init__(self, message: str, *, code: str = "platform:runtime-unavailable") -> None:
        super().__init__(message)
        self.code = code


def _never() -> bool:
    return False


# Without events an execution is looked at on a clock (:meth:`Runtime.clock_wait`): every 10 ms
# in its first half second (most executions are short), then less and less often.
POLL_FAST_SECONDS = 0.01
POLL_FAST_FOR_SECONDS = 0.5
POLL_MAX_SECONDS = 0.25


def poll_interval(age_seconds: float | None) -> float:
    """How long to sleep between two looks at an execution that has run ``age_seconds``.

    An unknown or impossible age (no start time, a clock in the future) is not a young
    execution: it gets the slow end, so a stored start time cannot make a worker spin.
    """
    if age_seconds is None or age_seconds < 0:
        return POLL_MAX_SECONDS
    if age_seconds < POLL_FAST_FOR_SECONDS:
        return POLL_FAST_SECONDS
    # Grows with the age past the fast phase: the slow end is reached about half a second later.
    return min(POLL_MAX_SECONDS, POLL_FAST_SECONDS + (age_seconds - POLL_FAST_FOR_SECONDS) / 2)


class Runtime(abc.ABC):
    """Builds service versions and runs executions of them.

    Every handle a runtime returns is self-contained and turns into JSON and back
    (:meth:`execution_handle`, :meth:`build_handle`): a fresh runtime object in another process
    can ``poll``, ``read_output``, ``cancel`` and ``cleanup`` with it.
    """

    name: ClassVar[str]
    build_handle_class: ClassVar[type[BuildHandle]]
    execution_handle_class: ClassVar[type[ExecutionHandle]]
    #: True when :meth:`wait` returns on new output (events): the caller may read after every
    #: return. False (the clock default): reading is worth it only now and then (Docker's
    #: ``read_output`` is an API call).
    waits_for_output: ClassVar[bool] = False

    def build_handle(self, data: BuildHandle | Mapping[str, Any]) -> BuildHandle:
        """The typed build handle of stored JSON (``ServiceVersion.build_handle``)."""
        return self.build_handle_class.from_json(data)

    def execution_handle(self, data: ExecutionHandle | Mapping[str, Any]) -> ExecutionHandle:
        """The typed execution handle of stored JSON (``Job.runtime_handle``)."""
        return self.execution_handle_class.from_json(data)

    @abc.abstractmethod
    def build(self, spec: BuildSpec, *, log: LogFunc, should_cancel: CancelFunc = _never) -> BuildResult:
        """Build ``spec``, streaming output lines to ``log``.

        Raises :class:`BuildError` (``user_error`` set when their requirements or code failed,
        with pip's own error text) and honours ``should_cancel`` within a second or two.
        """

    @abc.abstractmethod
    def remove_build(self, build_handle: BuildHandle | Mapping[str, Any]) -> None:
        """Delete what :meth:`build` produced for one version (idempotent); takes the stored JSON too."""

    @abc.abstractmethod
    def start(self, spec: ExecutionSpec) -> ExecutionHandle:
        """Start an execution and return its handle.

        Starting the same ``execution_id`` again first removes the leftovers of an earlier
        attempt, so a retried task is safe.
        """

    @abc.abstractmethod
    def poll(self, handle: ExecutionHandle) -> ExecutionState:
        """The execution's state; kills it when it is past its timeout or over its output cap."""

    def wait(self, handle: ExecutionHandle, timeout: float, *, offset: int | None = None) -> None:
        """Return as soon as the execution has ended or has output past ``offset``, at the latest
        after ``timeout`` seconds.

        It may return earlier for no reason: the caller polls after every return, so a spurious
        wake costs one poll and a missed event at most ``timeout``. ``offset`` is the caller's
        read offset (None: do not wake for output). The default has no events: it sleeps on
        the clock (:meth:`clock_wait`); runtimes that can be told override it.
        """
        self.clock_wait(handle, timeout)

    def clock_wait(self, handle: ExecutionHandle, timeout: float) -> None:
        """Sleep the poll interval for the execution's age (:func:`poll_interval`), at most ``timeout``."""
        started = getattr(handle, "started_at", None)
        age = time.time() - started if isinstance(started, int | float) else None
        time.sleep(max(0.0, min(float(timeout), poll_interval(age))))

    @abc.abstractmethod
    def read_output(self, handle: ExecutionHandle, offset: int) -> tuple[str, int]:
        """Combined stdout and stderr from byte ``offset``: ``(text, next_offset)``.

        Only logs, never the outcome (:meth:`final_response`). Never returns bytes past the
        execution's output cap, and never half a UTF-8 character.
        """

    @abc.abstractmethod
    def final_response(self, handle: ExecutionHandle) -> FinalResponse | None:
        """The runner's final response, from its result channel; call it after :meth:`poll` said it ended.

        Never from the output: user code and the processes it starts can print anything, also
        after the runner has finished (see :mod:`planqk_runtime.channel`). None when the
        execution ended without an answer (killed, out of memory, timed out, cancelled).
        """

    def result_files(self, handle: ExecutionHandle, limits: OutputLimits) -> tuple[list[OutputFile], list[str]]:
        """The files the program left in its output directory, and notes on the ones refused.

        Call it after :meth:`poll` said the execution ended and before :meth:`cleanup`. Taken by
        the runtime, never from the output (:mod:`planqk_runtime.outputs` has the rules: regular
        files only, ``limits``, safe names). Runtimes without an output directory have none.
        """
        return [], []

    @abc.abstractmethod
    def cancel(self, handle: ExecutionHandle) -> None:
        """Stop a running execution within seconds (a no-op when it has ended)."""

    @abc.abstractmethod
    def cleanup(self, handle: ExecutionHandle) -> None:
        """Remove everything the execution left behind, killing it if needed (idempotent)."""

    @abc.abstractmethod
    def orphans(self, known_execution_ids: set[str]) -> list[ExecutionHandle]:
        """Handles of executions this runtime holds that are not in ``known_execution_ids``.

        For the reaper: pass the ids of every execution the database still considers alive;
        whatever else this returns was left behind by a dead worker.
        """

    def kill_orphan(self, handle: ExecutionHandle) -> None:
        """Stop and remove one execution returned by :meth:`orphans`."""
        self.cancel(handle)
        self.cleanup(handle)

    def describe(self) -> dict[str, str]:
        """What isolation and limits this runtime really applies here, for settings pages."""
        return {"runtime": self.name}


#: The runtimes by name, as dotted paths (importing one must not import the others' clients).
RUNTIME_CLASSES: dict[str, str] = {
    "local": "runtimes.local.LocalRuntime",
    "docker": "runtimes.docker.DockerRuntime",
    "external": "runtimes.external.ExternalRuntime",
}


def runtime_class(name: str) -> type[Runtime]:
    """The class of the runtime called ``name``; :class:`RuntimeUnavailable` for an unknown name."""
    import importlib

    try:
        dotted = RUNTIME_CLASSES[name]
    except KeyError:
        raise RuntimeUnavailable(f"unknown runtime {name!r}; choose one of {sorted(RUNTIME_CLASSES)}") from None
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)
