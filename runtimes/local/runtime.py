"""The local runtime: the embedded default, no Docker needed.

It orchestrates three parts kept apart, as Read the Docs keeps its build steps:
:mod:`~runtimes.local.sandbox` (how a command runs isolated), :mod:`~runtimes.local.environments`
(a virtual environment per requirements hash, and the code folder of each version) and
:mod:`~runtimes.local.executions` (supervised executions, see :mod:`~runtimes.local.supervisor`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from planqk_runtime.outputs import OutputFile, OutputLimits
from planqk_runtime.protocol import FinalResponse
from runtimes._common import rmtree
from runtimes.base import (
    BuildError,
    BuildHandle,
    BuildResult,
    BuildSpec,
    CancelFunc,
    ExecutionHandle,
    ExecutionSpec,
    ExecutionState,
    LogFunc,
    Runtime,
    RuntimeUnavailable,
    _never,
    check_id,
)
from runtimes.local.environments import BUILD_UNAVAILABLE, READY_MARKER, Environments, check_env_key
from runtimes.local.executions import SUPERVISOR_SCRIPT, Executions
from runtimes.local.handles import LocalBuildHandle, LocalConfig, LocalExecutionHandle
from runtimes.local.locks import LockError
from runtimes.local.sandbox import Cgroups, isolation_gaps
from runtimes.local.warm import WarmPool

logger = logging.getLogger(__name__)


class LocalRuntime(Runtime):
    """Virtual environments and supervised subprocesses on the worker's own machine."""

    name: ClassVar[str] = "local"
    build_handle_class = LocalBuildHandle
    execution_handle_class = LocalExecutionHandle
    waits_for_output: ClassVar[bool] = True

    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self.environments = Environments(config, self.data_dir)
        self.sandbox = self.environments.sandbox
        self.executions = Executions(config, self.data_dir, self.sandbox)
        self.warm = WarmPool(config.warm, self.data_dir, self.executions, runner=self._runner_identity)
        self._supervisor_digest = ""

    # --- paths and probes --------------------------------------------------------------------

    @property
    def envs_dir(self) -> Path:
        return self.environments.envs_dir

    @property
    def builds_dir(self) -> Path:
        return self.environments.builds_dir

    @property
    def executions_dir(self) -> Path:
        return self.executions.executions_dir

    def _runner_identity(self) -> str:
        """The platform's runner and supervisor code, as digests (a warm runner's shape names it)."""
        if not self._supervisor_digest:
            self._supervisor_digest = hashlib.sha256(SUPERVISOR_SCRIPT.read_bytes()).hexdigest()
        return f"{self.environments.runner_digest()}:{self._supervisor_digest}"

    def python_info(self) -> dict[str, str]:
        """Version and prefix of the interpreter that environments are built from."""
        return self.environments.python_info()

    def env_key(self, requirements: str) -> str:
        """The hash naming the environment for ``requirements`` on this runtime's Python."""
        return self.environments.env_key(requirements)

    def cgroups(self) -> Cgroups | None:
        """The cgroup layout executions get, or None where cgroups cannot be written."""
        return self.sandbox.cgroups()

    def sandbox_mode(self) -> tuple[str, str]:
        """``("bwrap", "")`` or ``("none", why)`` according to ``PLANQK_SANDBOX``."""
        return self.sandbox.mode()

    def sandbox_line(self) -> str:
        """One line for logs and the settings page saying how user code is isolated."""
        return self.sandbox.line()

    def isolation_notice(self) -> str:
        """What every job log says first when executions lack isolation (empty with bubblewrap)."""
        mode, _ = self.sandbox_mode()
        gaps = isolation_gaps(mode, os.geteuid() == 0)
        return f"sandbox: none: {gaps}" if gaps else ""

    def describe(self) -> dict[str, str]:
        mode, _ = self.sandbox_mode()
        cg = self.cgroups()
        as_root = os.geteuid() == 0
        user = (
            f"a uid of its own per execution ({self.config.execution_uids})"
            if as_root
            else f"the worker's uid {os.geteuid()}"
        )
        if cg:
            pids = f"cgroup v{cg.version} pids.max"
            memory = f"cgroup v{cg.version} memory limit (OOM kill)"
        else:
            pids = f"RLIMIT_NPROC (counts every process of {user})"
            memory = "RLIMIT_AS (address space per process; MemoryError)"
        isolated = mode == "bwrap" or as_root
        network = "none (own network namespace)" if isolated else "the host's network (no sandbox)"
        return {
            "runtime": self.name,
            "sandbox": self.sandbox_line(),
            "user": user,
            "pids": pids,
            "memory": memory,
            "cpu": f"RLIMIT_CPU{' + cgroup CPU quota' if cg and 'cpu' in cg.bases else ''}",
            "output": "RLIMIT_FSIZE on output.log + kill at the cap",
            "network": network,
            "timeout": "wall clock, enforced by the execution's supervisor and by poll()",
            "warm": self.warm.summary(),
        }

    # --- builds ------------------------------------------------------------------------------

    def build(self, spec: BuildSpec, *, log: LogFunc, should_cancel: CancelFunc = _never) -> BuildResult:
        check_id(spec.version_id, "version id")
        source = Path(spec.source_dir)
        if not (source / "src").is_dir():
            raise BuildError("the user code has no src/ folder", user_error=True, code="build:user:no-src")
        started = time.monotonic()
        log(self.sandbox_line())
        key, env_dir, reused = self.environments.ensure(spec.requirements, log=log, should_cancel=should_cancel)
        if should_cancel():
            raise BuildError("build cancelled", user_error=False, code="build:cancelled")
        build_dir = self.environments.install_code(spec, log)
        log(f"build finished in {time.monotonic() - started:.1f}s")
        return BuildResult(
            LocalBuildHandle(
                version_id=spec.version_id,
                env_key=key,
                env_dir=str(env_dir),
                build_dir=str(build_dir),
                python_version=self.python_info()["version"],
                reused=reused,
                lock=self.environments.read_lock(env_dir),
                code_digest=self.environments.code_digest(build_dir),
            )
        )

    def remove_build(self, build_handle: BuildHandle | Mapping[str, Any]) -> None:
        handle = self.build_handle(build_handle)
        assert isinstance(handle, LocalBuildHandle)
        self.remove_versions([check_id(handle.version_id, "version id")])

    def remove_versions(self, version_ids: Iterable[str]) -> list[str]:
        """Remove what this host holds of each version: its code folder and that folder's lock and
        digest files, all named from the id alone (an id that is not a plain name is skipped).
        Environments are shared by equal requirements: :meth:`garbage_collect_envs` removes them
        once no build uses them. Returns the ids whose code folder was here."""
        removed: list[str] = []
        version_ids = list(version_ids)
        self.warm.stop_versions(set(version_ids))
        for version_id in version_ids:
            try:
                check_id(version_id, "version id")
            except ValueError:
                logger.warning("not removing the builds of %r: not a version id", version_id)
                continue
            folder = self.builds_dir / version_id
            if folder.exists():
                removed.append(version_id)
            rmtree(folder)
            for suffix in ("runner.lock", "code.lock", "code-digest"):
                (self.builds_dir / f".{version_id}.{suffix}").unlink(missing_ok=True)
        return removed

    def garbage_collect_envs(self, keep: set[str], *, idle_seconds: float | None = None) -> list[str]:
        """Delete environments whose hash is not in ``keep`` (and, with ``idle_seconds``, idle that long)."""
        return self.environments.garbage_collect(keep, idle_seconds=idle_seconds)

    # --- executions --------------------------------------------------------------------------

    def start(self, spec: ExecutionSpec) -> LocalExecutionHandle:
        if not isinstance(spec.build, LocalBuildHandle):
            raise ValueError(f"not a build of the local runtime: {spec.build!r}")
        build = self.build_here(spec)
        build_dir = Path(build.build_dir)
        try:
            # Every execution runs the platform's current runner, also for versions built before an upgrade.
            self.environments.refresh_runner(build_dir)
        except OSError as exc:
            raise RuntimeUnavailable(f"the build's copy of the runner could not be updated: {exc}") from exc
        # A warm runner of this build and these limits, when the pool has one (runtimes.local.warm).
        handle = self.warm.take(spec, build)
        return handle if handle is not None else self.executions.start(spec, build)

    def build_here(self, spec: ExecutionSpec) -> LocalBuildHandle:
        """The build of ``spec`` with this host's folders, materialised first when this host lacks them.

        The folders come from the handle's environment key and version id, never from its
        paths: a handle edited in the database names no folder of its choosing. A build made on
        another host (or whose environment was collected here) is made again from its lock and
        the version's archive (``spec.unpack_code``); ``spec.log`` hears what was done, in one line.
        """
        build = spec.build
        assert isinstance(build, LocalBuildHandle)
        try:
            version_id = check_id(build.version_id, "version id")
            key = check_env_key(build.env_key)
        except ValueError as exc:
            raise RuntimeUnavailable(f"the build handle is not valid: {exc}", code=BUILD_UNAVAILABLE) from None
        started = time.monotonic()
        waited: list[str] = []

        def step_log(line: str) -> None:
            # The steps go to the operator's log; the job's log gets one line (below).
            if line.startswith("another build is creating"):
                waited.append(line)
            logger.info("materialising %s: %s", version_id, line)

        env_dir = self.envs_dir / key
        env_made = False
        if build.lock:
            self._check_python(build)
            try:
                env_dir, env_made = self.environments.materialise(
                    key, build.lock, log=step_log, should_stop=spec.should_stop or _never
                )
            except LockError as exc:
                raise RuntimeUnavailable(f"the build's lock is refused: {exc}", code=BUILD_UNAVAILABLE) from None
        elif not (env_dir / READY_MARKER).exists():
            raise RuntimeUnavailable(
                f"the build's environment {key[:12]} is not on this host and the build has no lock to make it "
                "from (it was built before builds were locked); build the version again",
                code=BUILD_UNAVAILABLE,
            )
        build_dir, code_made = self.environments.materialise_code(
            version_id, build.code_digest, spec.unpack_code, log=step_log
        )
        seconds = time.monotonic() - started
        if spec.log is not None:
            made = [("environment", "the build's lock")] if env_made else []
            made += [("code", "the version's archive")] if code_made else []
            if made:
                what, sources = (" and ".join(names) for names in zip(*made, strict=True))
                spec.log(f"{what} materialised from {sources} in {seconds:.1f}s")
            elif waited:
                spec.log(f"waited {seconds:.1f}s for another job materialising this build; reusing it")
        return dataclasses.replace(build, env_dir=str(env_dir), build_dir=str(build_dir))

    def prewarm(self, spec: ExecutionSpec, *, wait_seconds: float = 0.0) -> int:
        """Count ``spec`` as a call and start its shape's warm runners now, not in the background;
        with ``wait_seconds``, wait that long at most for one to be ready. Returns how many are
        ready (benchmarks and tests use it to measure and check the warm path itself)."""
        if not isinstance(spec.build, LocalBuildHandle):
            raise ValueError(f"not a build of the local runtime: {spec.build!r}")
        build = self.build_here(spec)
        self.environments.refresh_runner(Path(build.build_dir))
        return self.warm.prewarm(spec, build, wait_seconds=wait_seconds)

    def _check_python(self, build: LocalBuildHandle) -> None:
        here = self.python_info()["version"]
        if build.python_version and build.python_version.split(".")[:2] != here.split(".")[:2]:
            raise RuntimeUnavailable(
                f"the build was made for Python {build.python_version} and this host's is {here}",
                code=BUILD_UNAVAILABLE,
            )

    def poll(self, handle: ExecutionHandle) -> ExecutionState:
        return self.executions.poll(self._own(handle))

    def wait(self, handle: ExecutionHandle, timeout: float, *, offset: int | None = None) -> None:
        """Woken by the execution's folder and its supervisor's exit (:mod:`runtimes.local.waiter`)."""
        if not self.executions.wait(self._own(handle), timeout, offset=offset):
            self.clock_wait(handle, timeout)

    def read_output(self, handle: ExecutionHandle, offset: int) -> tuple[str, int]:
        return self.executions.read_output(self._own(handle), offset)

    def final_response(self, handle: ExecutionHandle) -> FinalResponse | None:
        return self.executions.final_response(self._own(handle))

    def result_files(self, handle: ExecutionHandle, limits: OutputLimits) -> tuple[list[OutputFile], list[str]]:
        return self.executions.result_files(self._own(handle), limits)

    def cancel(self, handle: ExecutionHandle) -> None:
        self.executions.cancel(self._own(handle))

    def cleanup(self, handle: ExecutionHandle) -> None:
        self.executions.cleanup(self._own(handle))

    def orphans(self, known_execution_ids: set[str]) -> list[ExecutionHandle]:
        return list(self.executions.orphans(known_execution_ids))

    @staticmethod
    def _own(handle: ExecutionHandle) -> LocalExecutionHandle:
        if not isinstance(handle, LocalExecutionHandle):
            raise TypeError(f"not an execution handle of the local runtime: {handle!r}")
        return handle
