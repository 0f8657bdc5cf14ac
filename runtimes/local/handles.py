"""The local runtime's configuration and handles."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.base import BuildHandle, ExecutionHandle

# The supplementary gid of every execution without bubblewrap (PLANQK_EXECUTION_GROUP).
DEFAULT_EXECUTION_GROUP = 199999


def default_python() -> str:
    """The interpreter behind the worker's own virtual environment, not the venv's wrapper."""
    return getattr(sys, "_base_executable", None) or sys.executable


def default_ca_bundle() -> str:
    path = "/etc/ssl/certs/ca-certificates.crt"
    return path if os.path.exists(path) else ""


@dataclass(frozen=True)
class WarmConfig:
    """``PLANQK_WARM*``: whether executions take warm runners and how many a host keeps
    (:mod:`runtimes.local.warm`)."""

    enabled: bool = False
    min_runners: int = 1
    max_runners: int = 2
    idle_seconds: int = 600
    memory_mb: int = 1024


@dataclass(frozen=True)
class LocalConfig:
    """Everything the local runtime needs (``jobs.runtime_factory`` fills it from the settings)."""

    data_dir: Path
    python: str = field(default_factory=default_python)
    # "bwrap" (the default: nothing runs where it does not work) or "none" (the operator's choice).
    sandbox: str = "bwrap"
    # A root worker runs each execution as a uid of its own from this range (its gid is the same
    # number); claims live in uid_claims_dir, shared by the host's workers (default under /run).
    execution_uids: str = "200000-265535"
    uid_claims_dir: Path | None = None
    # Without bubblewrap every execution of a root worker also has this supplementary gid, which
    # alone may read the interpreter where other users may not (:meth:`Sandbox.open_interpreter`).
    execution_group: int = DEFAULT_EXECUTION_GROUP
    pip_index_url: str = ""
    pip_extra_index_url: str = ""
    #: Index URLs a requirements file may name (``PLANQK_ALLOWED_INDEX_URLS``).
    allowed_index_urls: tuple[str, ...] = ()
    ca_bundle: str = field(default_factory=default_ca_bundle)
    runner_dir: Path | None = None
    bwrap: str = "bwrap"
    use_cgroups: bool = True
    cgroup_name: str = "planqk"
    build_timeout_seconds: int = 1800
    #: ``uv`` (fast; the binary of the ``uv`` package unless ``uv`` names another) or ``pip``.
    installer: str = "uv"
    uv: str = ""
    warm: WarmConfig = field(default_factory=WarmConfig)


@dataclass(frozen=True)
class LocalBuildHandle(BuildHandle):
    """A built version: its environment (shared by equal requirements) and its code folder.

    ``env_dir`` and ``build_dir`` say where the building host put them, for people: a runtime
    never uses them (a handle edited in the database must not point it at another folder), it
    derives this host's folders from ``env_key`` and ``version_id``. ``lock`` (every installed
    distribution pinned with its hashes, as uv reports them) and ``code_digest`` (of the code
    folder without the runner) let any host materialise both (:meth:`LocalRuntime.start`).
    """

    version_id: str
    env_key: str
    env_dir: str
    build_dir: str
    python_version: str = ""
    reused: bool = False
    lock: str = ""
    code_digest: str = ""
    runtime: str = "local"


@dataclass(frozen=True)
class LocalExecutionHandle(ExecutionHandle):
    """A supervised execution: its folder, its supervisor process and its limits."""

    execution_id: str
    dir: str
    # None for a leftover found without its handle file (its age is unknown).
    started_at: float | None = None
    timeout: int = 0
    max_output_bytes: int = 0
    pid: int | None = None
    pgid: int | None = None
    start_time: int | None = None
    sandbox: str = ""
    cgroup: dict[str, Any] | None = None
    # The execution's own uid (root workers only; released at cleanup).
    uid: int | None = None
    # What its processes carry in PLANQK_EXECUTION_ID: the id it started under (a warm runner's
    # own name, kept when an execution takes it); empty in handles of earlier releases.
    marker: str = ""
    # Taken from the warm pool (runtimes.local.warm) rather than started for this execution.
    warm: bool = False
    runtime: str = "local"
