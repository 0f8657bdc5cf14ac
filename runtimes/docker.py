"""The Docker runtime: one image per service version, one locked-down container per execution.

Builds
    Two halves, as on the local runtime (issue 16). *Fetch*, on the worker with its network: the
    canonical requirements are downloaded as wheels for the base image's Python (its tags, asked
    from the image once), ``pip download --only-binary :all:``, so no package code runs; a listed
    package without a wheel comes as its source archive (the platform's finder) with the build
    requirements its pyproject.toml declares. *Install*: a generated context (never the
    Dockerfile of the upload), ``FROM {PLANQK_BASE_IMAGE}``, the fetched files, ``pip install
    --no-index --find-links`` them, then ``src/``, built with ``--network none`` (setup scripts and
    build backends run without any network); tagged ``planqk-svc-<version_id>``. The requirements
    layers come before the code, so unchanged requirements are served from Docker's layer cache.

Registry (``PLANQK_DOCKER_REGISTRY``, issue 22)
    Without one, a version's image lives in the building host's engine only. With one (say
    ``127.0.0.1:5000/planqk``) the build tags the image ``<registry>/planqk-svc-<version_id>`` and
    pushes it; the handle records the manifest digest the registry answered. A host whose engine
    lacks the image pulls ``<registry>/planqk-svc-<version_id>@<digest>`` before it creates the
    container: by digest, so a tag someone moved later cannot swap the code, and by a name made
    from this host's setting and the version id, never one read from the stored handle.

Executions
    Container ``planqk-job-<execution_id>`` (a retried start removes a leftover of that name)
    with no network, a read-only root, size-limited private ``/tmp``, ``/var/tmp`` and
    ``/dev/shm`` (tmpfs, gone with the container), all capabilities dropped,
    ``no-new-privileges``, memory (no swap), CPU and pid limits, a uid of its own from
    ``PLANQK_EXECUTION_UIDS`` (the local runtime's claims, so no two running executions of
    the host share one), the input folder bound read-only at ``/var/input``, the platform's
    current runner bound read-only on the container's ``PYTHONPATH`` (so images built before an
    upgrade run today's runner, not their base image's) and a ``planqk.execution`` label for
    the reaper.
    Everything :meth:`poll` needs is in the handle, the container and its labels, plus a
    ``stop`` file beside the input that records why the platform killed it.

Warm containers (``PLANQK_WARM``, issue 17)
    Pre-created, single-use containers (:class:`DockerWarmPool`): created and started ahead of
    time by the same :meth:`DockerRuntime._create` as a cold execution's container (every limit
    and isolation setting above), with no variables and an empty input, named
    ``planqk-job-warm-<id>`` and labelled ``planqk.warm=<shape>``. Its supervisor
    (:mod:`planqk_runtime.container` ``--warm``) lets the runner import the code, then listens
    on ``go.sock`` in a folder of the container's own (bound at ``/var/run/planqk-warm``). A take
    (:meth:`DockerRuntime.start`) claims one in the pool's files, connects (a killed or ended one
    does not answer and is removed: the execution starts cold), checks the listener is the
    container's uid, renames the folder and the container to the execution's, writes the input
    and sends the go with the execution's variables (never in the container's configuration);
    the execution's deadline counts from the take, in :meth:`poll` and in the container's own
    alarm (armed by the go). The container ends with its execution and is never reused. Sizing,
    idle stop and memory budget are the local runtime's (:func:`runtimes.local.warm.target`).
    Pre-created containers rather than a template process forking into namespaces: the engine
    creates every namespace, cgroup and mount of a container, and a fork would share the
    template's memory and start outside them; measured, a take answers in a fraction of the
    cold start's time (``tests/runtimes/test_docker_warm.py::test_cold_versus_warm_timings``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import queue
import re
import socket
import stat
import struct
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import docker.errors
from docker.types import LogConfig, Ulimit
from docker.utils import parse_repository_tag

import docker
import planqk_runtime
from planqk_runtime.channel import go_message, response_from_json
from planqk_runtime.container import FILES_DIR, RESPONSE_FILE, WARM_STARTED
from planqk_runtime.outputs import CONTAINER_OUTPUT_DIR, OUTPUT_DIRECTORY_ENV, OutputFile, OutputLimits, collect
from planqk_runtime.protocol import FinalResponse
from runtimes._common import READABLE_DIR, decode_prefix, has_requirements, pip_error, rmtree
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
from runtimes.local import supervisor as sup
from runtimes.local.environments import BUILD_UNAVAILABLE
from runtimes.local.executions import WARM_PREFIX
from runtimes.local.handles import WarmConfig
from runtimes.local.sandbox import DEFAULT_UID_CLAIMS_DIR, ExecutionUids
from runtimes.local.warm import WarmPool, target
from runtimes.requirements import RequirementsError, canonical_requirements, canonical_text, split_indexes

logger = logging.getLogger(__name__)

IMAGE_PREFIX = "planqk-svc-"
CONTAINER_PREFIX = "planqk-job-"
LABEL_EXECUTION = "planqk.execution"
LABEL_TIMEOUT = "planqk.timeout"
LABEL_MAX_OUTPUT = "planqk.max-output-bytes"
#: On a warm container (created ahead of its execution): the shape of its pool.
LABEL_WARM = "planqk.warm"
#: Which install created the container (a digest of its data folder): an engine can be shared by
#: two installs (staging and production, say), and one's reaper must never take the other's
#: running executions for orphans. Containers without it predate the label and count as ours.
LABEL_INSTALL = "planqk.install"
PEAK_FILE = "peak_memory_kb"
CA_FILE = "planqk-build-ca.crt"
BUILD_DIR = "/opt/planqk-build"
TIMEOUT_GRACE_SECONDS = 2.0
_STEP_RE = re.compile(r"^Step \d+/\d+ : (.*)$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# The reference grammar of the distribution project (distribution/reference, regexp.go), which
# the Docker engine enforces: the SDK only splits names (docker.auth.split_repo_name,
# docker.utils.parse_repository_tag) and lets upper case, "..", empty parts or spaces through.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REPOSITORY_RE = re.compile(rf"^{_DOMAIN}(?:/{_PATH_COMPONENT})*$")
# The container's main process is the runner's supervisor (planqk_runtime.container): it
# points stderr at stdout (one stream in write order, as the local runtime's log file), arms
# an alarm so the deadline holds even when no worker polls (poll() normally kills earlier),
# gives the runner a result pipe and, once the runner exited and every other process of the
# container is gone, writes the response to a mount of its own. No shell.
SUPERVISOR = ["python", "-m", "planqk_runtime.container"]
RUNNER = ["python", "-m", "planqk_runtime"]
#: Where the container's supervisor writes the runner's response (a host folder per execution).
RESULT_MOUNT = "/var/run/planqk-result"
#: The folder on the container's PYTHONPATH that holds the platform's current runner (bound read-only).
RUNNER_MOUNT = "/opt/planqk-runner"
# How long after the timeout the container's own alarm ends it, when nobody polled.
ALARM_GRACE_SECONDS = 30
ALARM_EXIT_CODE = 128 + 14  # SIGALRM, as the init process reports it
#: A warm container's folder for its go socket (host side, under its execution folder) and where
#: the container sees it.
WARM_DIR = "warm"
WARM_MOUNT = "/var/run/planqk-warm"
WARM_SOCKET = "go.sock"
#: A warm container's handle, in its folder until an execution takes it.
WARM_HANDLE_FILE = "warm-handle.json"
# How long a take waits for the warm container's answer to its go (milliseconds normally; a
# loaded host must not lose a container that has its execution already).
WARM_ANSWER_SECONDS = 30.0
# A warm container's folder without its handle after this long: its creator died.
STARTING_SECONDS = 300.0
# A take hands a container over in milliseconds; a claim older than this is one whose taker died.
TAKE_SECONDS = 60.0


def runner_command(
    timeout_seconds: int,
    grace_seconds: int = ALARM_GRACE_SECONDS,
    max_response_bytes: int = 64 << 20,
    output_limits: OutputLimits | None = None,
    warm: tuple[int, str] | None = None,
) -> list[str]:
    """The container's command: the runner under its supervisor, with a deadline of its own;
    ``warm`` (idle seconds, socket path) makes it wait for its execution's go first."""
    alarm = str(int(timeout_seconds) + int(grace_seconds))
    output = ["--output", CONTAINER_OUTPUT_DIR, *output_limits.to_args()] if output_limits is not None else []
    waits = ["--warm", str(int(warm[0])), warm[1]] if warm is not None else []
    return [*SUPERVISOR, alarm, str(int(max_response_bytes)), RESULT_MOUNT, *waits, *output, "--", *RUNNER]


def execution_env(spec: ExecutionSpec) -> dict[str, str]:
    """The environment of an execution's runner: the spec's variables (checked; ``ValueError``
    for one Docker cannot pass) and the platform's own, which a spec cannot override."""
    env = {"HOME": "/tmp", "PYTHONUNBUFFERED": "1"}  # noqa: S108 - the container's private tmpfs
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in str(value):
            raise ValueError(f"invalid environment variable {key!r}")
        env[key] = str(value)
    env["INPUT_DIR"] = "/var/input"
    env[OUTPUT_DIRECTORY_ENV] = CONTAINER_OUTPUT_DIR
    # The platform's current runner, whatever the image holds (see runner_copy).
    env["PYTHONPATH"] = RUNNER_MOUNT
    return env


@dataclass(frozen=True)
class DockerConfig:
    """Everything the Docker runtime needs (``jobs.runtime_factory`` fills it from the settings)."""

    data_dir: Path
    base_image: str = "planqk/python-base:3.11"
    build_network: str = "host"
    ca_bundle: str = ""
    pip_index_url: str = ""
    pip_extra_index_url: str = ""
    #: Index URLs a requirements file may name (``PLANQK_ALLOWED_INDEX_URLS``); fetched into the build's own folder.
    allowed_index_urls: tuple[str, ...] = ()
    # Each execution runs as a uid (and gid) of its own from this range.
    execution_uids: str = "200000-265535"
    # Where the claims of that range live: shared with the local runtime's workers of the host.
    uid_claims_dir: Path | None = None
    init: bool = True
    alarm_grace_seconds: int = ALARM_GRACE_SECONDS
    build_timeout_seconds: int = 1800
    #: The runner every container runs (default: the platform's own ``planqk_runtime``).
    runner_dir: Path | None = None
    #: Where builds push their images and other hosts pull them (``PLANQK_DOCKER_REGISTRY``,
    #: checked by :func:`parse_registry`); empty: images stay in the building host's engine.
    registry: str = ""
    registry_username: str = ""
    # Never in a repr, a log line or an error message.
    registry_password: str = field(default="", repr=False)
    #: This host's name (``PLANQK_HOST_NAME``), for the build and job log lines.
    host_name: str = ""
    #: ``PLANQK_WARM*``: warm containers, sized as the local runtime's warm runners.
    warm: WarmConfig = field(default_factory=WarmConfig)


@dataclass(frozen=True)
class DockerBuildHandle(BuildHandle):
    """A built version: its image."""

    version_id: str
    image: str
    image_id: str = ""
    base_image: str = ""
    reused: bool = False
    #: The image as pushed to the registry (``<registry>/planqk-svc-<version>:<tag>``), for the
    #: build log and the operator; a host pulls by :attr:`digest` under its own registry setting.
    pushed: str = ""
    #: The manifest digest the registry answered to the push (``sha256:...``); empty without a registry.
    digest: str = ""
    runtime: str = "docker"


@dataclass(frozen=True)
class DockerExecutionHandle(ExecutionHandle):
    """An execution: its container (by its deterministic name) and its limits."""

    execution_id: str
    container: str
    dir: str
    started_at: float | None = None
    container_id: str = ""
    timeout: int = 0
    max_output_bytes: int = 0
    uid: int | None = None
    #: Taken from the warm pool (created ahead of the execution) rather than created for it.
    warm: bool = False
    runtime: str = "docker"


def image_tag(version_id: str) -> str:
    """The image name of a service version (Docker wants lower case)."""
    return IMAGE_PREFIX + check_id(version_id, "version id").lower()


def parse_registry(value: str) -> str:
    """``PLANQK_DOCKER_REGISTRY`` checked: ``host[:port][/path]``, no scheme, tag or digest.

    Raises ``ValueError`` saying what is wrong. The host is required: without one Docker would
    read the first part as a namespace on Docker Hub and push the providers' code there.
    """
    from docker.auth import resolve_repository_name, split_repo_name
    from docker.errors import InvalidRepository
    from docker.utils import parse_repository_tag

    text = value.strip().rstrip("/")
    if not text:
        return ""
    example = f"{text}/{IMAGE_PREFIX}v1"
    try:
        resolve_repository_name(example)
    except InvalidRepository as exc:
        raise ValueError(f"{value!r} is not a registry: {exc}") from None
    # Without a "/", a ":" is the port (localhost:5000), which the SDK's splitter reads as a tag.
    if parse_repository_tag(text)[1] is not None and ("/" in text or "@" in text):
        raise ValueError(f"{value!r} names a tag or a digest; give the registry and an optional path only")
    if not example.startswith(split_repo_name(example)[0] + "/"):
        raise ValueError(f"{value!r} has no registry host: write host[:port][/path], e.g. 127.0.0.1:5000/planqk")
    if not _REPOSITORY_RE.match(text) or len(example) > 255:
        raise ValueError(
            f"{value!r} is not host[:port][/path] in Docker's reference grammar (the path in lower case "
            "letters and digits, separated by '/', '.', '_' or '-')"
        )
    return text


def registry_repository(registry: str, version_id: str) -> str:
    """Where a version's image lives in the registry: ``<registry>/planqk-svc-<version_id>``."""
    return f"{registry}/{image_tag(version_id)}"


def container_name(execution_id: str) -> str:
    """The deterministic container name of an execution."""
    return CONTAINER_PREFIX + check_id(execution_id, "execution id")


def dockerfile(*, requirements: bool, **_unused: bool) -> str:
    """The Dockerfile of a service image, in the template's shape.

    Exec-form RUN only: no shell parses anything, and the base image needs none. The build runs
    without network (``--network none``): pip installs from the files fetched beforehand into the
    context's ``wheels/`` only, building a source archive there when a package has no wheel.
    """
    lines = [
        "ARG BASE_IMAGE",
        "FROM ${BASE_IMAGE}",
        "USER root",
    ]
    if requirements:
        lines.append(f"COPY requirements.txt {BUILD_DIR}/")
        lines.append(f"COPY wheels/ {BUILD_DIR}/wheels/")
        pip = ["python", "-m", "pip", "install", "--no-cache-dir", "--no-input", "--progress-bar", "off"]
        pip += ["--no-index", "--find-links", f"{BUILD_DIR}/wheels", "-r", f"{BUILD_DIR}/requirements.txt"]
        lines.append("RUN " + json.dumps(pip))
    lines += [
        "COPY src/ /app/src/",
        "WORKDIR /app",
        "USER 1000:1000",
        'CMD ["python", "-m", "planqk_runtime"]',
    ]
    return "\n".join(lines) + "\n"


def _context_tar(spec: BuildSpec, files: dict[str, bytes], log: LogFunc, wheels: Path | None = None) -> io.BytesIO:
    """The build context as a tar: ``src/`` of the upload (regular files only) plus ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_bytes(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))

        for name, data in files.items():
            add_bytes(name, data)
        if wheels is not None:
            info = tarfile.TarInfo("wheels")
            info.type = tarfile.DIRTYPE
            info.mode = READABLE_DIR
            tar.addfile(info)
            for path in sorted(wheels.iterdir()):
                if path.is_file() and not path.is_symlink():
                    add_bytes(f"wheels/{path.name}", path.read_bytes())
        src = Path(spec.source_dir) / "src"
        for root, dirs, names in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(root, d)))
            rel_root = os.path.relpath(root, spec.source_dir)
            info = tarfile.TarInfo(rel_root)
            info.type = tarfile.DIRTYPE
            info.mode = READABLE_DIR
            tar.addfile(info)
            for name in sorted(names):
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    log(f"skipped {os.path.join(rel_root, name)}: not a regular file or folder")
                    continue
                with open(path, "rb") as fh:
                    add_bytes(os.path.join(rel_root, name), fh.read())
    buf.seek(0)
    return buf


class _BuildClient(docker.APIClient):
    """An API client that keeps the build's streaming response, so a cancel can cut it.

    Closing the connection is how a build is cancelled: the engine stops the build when its
    client goes away.
    """

    response: Any = None

    def _stream_helper(self, response: Any, decode: bool = False) -> Any:
        self.response = response
        return super()._stream_helper(response, decode=decode)

    def abort(self) -> None:
        if self.response is None:
            return
        with contextlib.suppress(Exception):
            sock = self._get_raw_response_socket(self.response)
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.response.close()


class DockerRuntime(Runtime):
    """Images built by the Docker engine, executions in containers."""

    name: ClassVar[str] = "docker"
    build_handle_class = DockerBuildHandle
    execution_handle_class = DockerExecutionHandle

    def __init__(self, config: DockerConfig, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self._client_instance = client
        self._runner: tuple[str, Path] | None = None
        self._tags: tuple[str, dict[str, Any]] | None = None
        self.warm = DockerWarmPool(config.warm, self)

    @property
    def client(self) -> docker.DockerClient:
        """The engine's client; :class:`RuntimeUnavailable` when no engine answers."""
        if self._client_instance is None:
            try:
                client = docker.from_env()
                client.ping()
            except docker.errors.DockerException as exc:
                raise RuntimeUnavailable(f"no Docker engine answers: {exc}") from exc
            self._client_instance = client
        return self._client_instance

    @property
    def executions_dir(self) -> Path:
        return self.data_dir / "containers"

    @property
    def install_id(self) -> str:
        """This install's :data:`LABEL_INSTALL`: its data folder's digest (no path on the engine)."""
        return hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]

    def owns(self, labels: dict[str, str]) -> bool:
        """Whether a container with ``labels`` is this install's (see :data:`LABEL_INSTALL`)."""
        return labels.get(LABEL_INSTALL, self.install_id) == self.install_id

    def runner_copy(self) -> Path:
        """The platform's current runner, as a folder the engine binds read-only into every container.

        An image carries the runner of its base image on the day it was built; a version built
        before an upgrade (before the result channel, say) would run a runner the platform no
        longer understands. Containers run this one instead, the same for every image: a copy
        per digest under the data folder (regular files, readable by every execution's uid).
        """
        from runtimes.local.environments import copy_tree, tree_digest

        source = Path(self.config.runner_dir) if self.config.runner_dir else Path(planqk_runtime.__file__).parent
        digest = tree_digest(source)
        if self._runner is not None and self._runner[0] == digest:
            return self._runner[1]
        folder = self.data_dir / "runner" / digest[:32]
        target = folder / "planqk_runtime"
        if tree_digest(target) != digest:
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, READABLE_DIR)
            staging = folder / f".planqk_runtime.{os.getpid()}.{time.monotonic_ns()}.tmp"
            try:
                copy_tree(source, staging)
                with contextlib.suppress(OSError):  # another worker put the same copy there first
                    os.rename(staging, target)
            finally:
                rmtree(staging)
            if tree_digest(target) != digest:
                raise RuntimeUnavailable(f"the runner copy {target} does not match the platform's runner")
        self._runner = (digest, target)
        return target

    def uids(self) -> ExecutionUids:
        """The execution uids (claims in /run for a root worker, else in the data directory)."""
        try:
            first, last = ExecutionUids.parse(self.config.execution_uids)
        except ValueError as exc:
            raise RuntimeUnavailable(f"PLANQK_EXECUTION_UIDS: {exc}") from None
        claims = self.config.uid_claims_dir or (
            DEFAULT_UID_CLAIMS_DIR if os.geteuid() == 0 else self.data_dir / "execution-uids"
        )
        return ExecutionUids(first, last, Path(claims))

    def describe(self) -> dict[str, str]:
        return {
            "runtime": self.name,
            "sandbox": "container: no network, read-only root, all capabilities dropped, no-new-privileges",
            "user": f"a uid of its own per execution ({self.config.execution_uids})",
            "pids": "pids_limit (cgroup)",
            "memory": "mem_limit without swap (cgroup; OOM kill)",
            "cpu": "nano_cpus (cgroup CPU quota)",
            "output": "kill at the cap (checked on every poll)",
            "network": "none",
            "timeout": "wall clock, enforced by poll(); the container's own alarm soon after if nobody polls",
            "images": (
                f"pushed to {self.config.registry}, pulled by digest where missing"
                if self.config.registry
                else "in this host's engine only (no PLANQK_DOCKER_REGISTRY)"
            ),
            "warm": self.warm.summary(),
        }

    # --- builds ------------------------------------------------------------------------------

    def build(self, spec: BuildSpec, *, log: LogFunc, should_cancel: CancelFunc = _never) -> BuildResult:
        tag = image_tag(spec.version_id)
        if not (Path(spec.source_dir) / "src").is_dir():
            raise BuildError("the user code has no src/ folder", user_error=True, code="build:user:no-src")
        client = self.client
        try:
            client.images.get(self.config.base_image)
        except docker.errors.ImageNotFound:
            if not self._in_registry(self.config.base_image):
                raise BuildError(
                    f"the base image {self.config.base_image} is missing: build it with "
                    "scripts/build-base-image.sh (or push it to PLANQK_DOCKER_REGISTRY and name it there)",
                    user_error=False,
                    code="build:platform:base-image",
                ) from None
            self._pull_base_image(log)
        try:
            # pip in the image is handed the platform's canonical list only, never the provider's bytes.
            indexes = split_indexes(
                canonical_requirements(spec.requirements, allowed_index_urls=self.config.allowed_index_urls)
            )
            requirements = canonical_text(indexes.requirements)
        except RequirementsError as exc:
            raise BuildError(
                f"requirements.txt {exc.message}", user_error=True, code="build:user:requirements"
            ) from None
        wants_pip = has_requirements(requirements)
        files = {
            "Dockerfile": dockerfile(requirements=wants_pip).encode(),
            "requirements.txt": requirements.encode(),
        }
        buildargs = {"BASE_IMAGE": self.config.base_image}
        fetch_dir = self.data_dir / "docker-fetch" / f"{spec.version_id}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            if wants_pip:
                (fetch_dir / "wheels").mkdir(parents=True)
                (fetch_dir / "tmp").mkdir()
                fetch_started = time.monotonic()
                log("==> fetch (on the worker, with network; no package code runs)")
                if indexes.options:
                    log(f"packages come from the index(es) requirements.txt names: {' '.join(indexes.options)}")
                self._fetch(
                    requirements.splitlines(),
                    fetch_dir,
                    log=log,
                    should_cancel=should_cancel,
                    index_options=indexes.options,
                )
                log(f"<== fetch done in {time.monotonic() - fetch_started:.1f}s")
            context = _context_tar(spec, files, log, fetch_dir / "wheels" if wants_pip else None)
        finally:
            rmtree(fetch_dir)
        log("==> install (docker build --network none, from the fetched files only)")

        started = time.monotonic()
        api = _BuildClient(**self._api_kwargs())
        events: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()

        def pump() -> None:
            try:
                for chunk in api.build(
                    fileobj=context,
                    custom_context=True,
                    tag=tag,
                    buildargs=buildargs,
                    # Package code (setup scripts, build backends) runs here: never with a network.
                    network_mode="none",
                    rm=True,
                    forcerm=True,
                    pull=False,
                    decode=True,
                ):
                    events.put(chunk)
            except BaseException as exc:
                events.put(exc)
            finally:
                events.put(None)

        threading.Thread(target=pump, daemon=True).start()
        step = ""
        pip_step = False
        cached_requirements = False
        tail: list[str] = []
        error = ""
        partial = ""
        deadline = started + self.config.build_timeout_seconds
        stopped: BuildError | None = None
        try:
            while True:
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    event = {}
                if event is None:
                    break
                if isinstance(event, BaseException):
                    if stopped is None:
                        raise BuildError(f"the Docker engine failed: {event}", user_error=False) from event
                    break
                text = event.get("stream", "")
                if text:
                    partial += text
                    *lines, partial = partial.split("\n")
                    for line in lines:
                        line = line.rstrip("\r")
                        log(line)
                        tail.append(line)
                        del tail[:-300]
                        match = _STEP_RE.match(line)
                        if match:
                            step = match.group(1)
                            pip_step = "pip" in step and "install" in step
                        elif pip_step and line.strip() == "---> Using cache":
                            cached_requirements = True
                if "error" in event:
                    error = event.get("errorDetail", {}).get("message") or event["error"]
                    log(error)
                if stopped is None:
                    if should_cancel():
                        stopped = BuildError("build cancelled", user_error=False, code="build:cancelled")
                    elif time.monotonic() > deadline:
                        stopped = BuildError(
                            f"the build took longer than {self.config.build_timeout_seconds} seconds",
                            user_error=True,
                            code="build:user:time-out",
                        )
                    if stopped is not None:
                        api.abort()
        finally:
            api.abort()
            api.close()
        if partial.strip():
            log(partial)
            tail.append(partial)
        if stopped is not None:
            raise stopped
        if error:
            if pip_step:
                raise BuildError(
                    f"pip install failed:\n{pip_error(tail) or error}",
                    user_error=True,
                    code="build:user:requirements",
                )
            raise BuildError(f"the image build failed at '{step}': {error}", user_error=False)
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise BuildError(f"the build ended without the image {tag}", user_error=False) from None
        if cached_requirements:
            log("requirements unchanged: reusing the cached pip layer")
        log(f"build finished in {time.monotonic() - started:.1f}s")
        pushed = digest = ""
        if self.config.registry:
            pushed, digest = self._push(image, spec.version_id, log=log)
        return BuildResult(
            DockerBuildHandle(
                version_id=spec.version_id,
                image=tag,
                image_id=image.id,
                base_image=self.config.base_image,
                reused=cached_requirements or not wants_pip,
                pushed=pushed,
                digest=digest,
            )
        )

    # --- the registry ------------------------------------------------------------------------

    def _registry_auth(self) -> dict[str, str] | None:
        if not self.config.registry_username:
            return None
        return {"username": self.config.registry_username, "password": self.config.registry_password}

    def _host(self) -> str:
        return self.config.host_name or socket.gethostname()

    def _push(self, image: Any, version_id: str, *, log: LogFunc) -> tuple[str, str]:
        """Push a built image to the registry; the pushed name and the manifest digest it answered.

        The tag is the image's own id (short): the same build gives the same tag, another build
        of the version another. Hosts pull by the digest, so the tag only helps the operator.
        """
        repository = registry_repository(self.config.registry, version_id)
        tag = "b" + image.id.removeprefix("sha256:")[:16]
        pushed = f"{repository}:{tag}"
        started = time.monotonic()
        log(f"==> push {pushed}")
        digest = ""
        failure = ""
        try:
            if not image.tag(repository, tag):
                raise BuildError(
                    f"could not tag the image as {pushed}", user_error=False, code="build:platform:registry"
                )
            for event in self.client.api.push(
                repository, tag=tag, stream=True, decode=True, auth_config=self._registry_auth()
            ):
                if "error" in event:
                    failure = (event.get("errorDetail") or {}).get("message") or str(event["error"])
                found = (event.get("aux") or {}).get("Digest", "")
                if isinstance(found, str) and _DIGEST_RE.match(found):
                    digest = found
        except docker.errors.DockerException as exc:
            failure = _engine_message(exc)
        if failure or not digest:
            # The registry's name stays only on an image the registry holds.
            with contextlib.suppress(docker.errors.DockerException):
                self.client.images.remove(pushed)
            raise BuildError(
                f"pushing the image to the registry {self.config.registry} failed: "
                f"{failure or 'the registry answered no digest'}",
                user_error=False,
                code="build:platform:registry-push",
            )
        log(f"pushed to {pushed} digest {digest} from host {self._host()} in {time.monotonic() - started:.1f}s")
        return pushed, digest

    def _in_registry(self, image: str) -> bool:
        """Whether ``image`` is a name under this host's registry setting."""
        return bool(self.config.registry) and image.startswith(self.config.registry + "/")

    def _pull_base_image(self, log: LogFunc) -> None:
        """Pull a base image the operator pushed to the registry (a host's first build).

        By its name, which the operator chose: the operator's registry is trusted for the base as
        for every service image in it.
        """
        image = self.config.base_image
        started = time.monotonic()
        failure = ""
        try:
            for event in self.client.api.pull(image, stream=True, decode=True, auth_config=self._registry_auth()):
                if "error" in event:
                    failure = (event.get("errorDetail") or {}).get("message") or str(event["error"])
            self.client.images.get(image)
        except docker.errors.DockerException as exc:
            failure = failure or _engine_message(exc)
        if failure:
            raise BuildError(
                f"the base image {image} is missing here and pulling it from the registry failed: {failure}",
                user_error=False,
                code="build:platform:base-image",
            )
        log(f"pulled the base image {image} on host {self._host()} in {time.monotonic() - started:.1f}s")

    def _image_for(self, build: DockerBuildHandle, spec: ExecutionSpec) -> str:
        """The image a container of ``build`` runs on this host, pulled from the registry when missing.

        A build with a digest runs ``<registry>/planqk-svc-<version>@<digest>``: the name from
        this host's registry setting and the version id (checked), the digest checked too, so a
        handle edited in the database can name no other image. The engine verifies what it pulls
        against the digest. The pull says so in the job's log (``spec.log``) and beats the job's
        heartbeat while it downloads (``spec.should_stop``, which may also stop it).
        """
        if not build.digest:
            return build.image_id or build.image
        if not self.config.registry:
            raise RuntimeUnavailable(
                f"the version's image was pushed to a registry ({(build.pushed or build.digest)[:200]}), but this host "
                "has no PLANQK_DOCKER_REGISTRY: set it as on the building host",
                code=BUILD_UNAVAILABLE,
            )
        if not _DIGEST_RE.match(build.digest):
            raise RuntimeUnavailable(
                f"the build's image digest is not a sha256 digest: {build.digest[:80]!r}",
                code=BUILD_UNAVAILABLE,
            )
        reference = f"{registry_repository(self.config.registry, build.version_id)}@{build.digest}"
        client = self.client
        try:
            return client.images.get(reference).id
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"the Docker engine failed: {_engine_message(exc)}") from None
        started = time.monotonic()
        failure = ""
        try:
            events = client.api.pull(reference, stream=True, decode=True, auth_config=self._registry_auth())
            for event in events:
                if "error" in event:
                    failure = (event.get("errorDetail") or {}).get("message") or str(event["error"])
                if spec.should_stop is not None and spec.should_stop():
                    # Closing the stream ends the engine's pull.
                    with contextlib.suppress(Exception):
                        events.close()
                    raise RuntimeUnavailable(
                        f"the pull of {reference} was stopped: the job is no longer ours", code=BUILD_UNAVAILABLE
                    )
            image_id = client.images.get(reference).id
        except docker.errors.DockerException as exc:
            failure = failure or _engine_message(exc)
        if failure:
            raise RuntimeUnavailable(
                f"pulling {reference} on host {self._host()} failed: {failure}", code=BUILD_UNAVAILABLE
            )
        if spec.log is not None:
            # The job's log names the host of every line the runtime sends it.
            spec.log(f"pulled {reference} in {time.monotonic() - started:.1f}s")
        return image_id

    def _api_kwargs(self) -> dict[str, Any]:
        # The engine from the environment, as docker.from_env() found it.
        kwargs = docker.utils.kwargs_from_env()
        return {**kwargs, "version": self.client.api.api_version, "timeout": 60}

    def _image_tags(self) -> dict[str, Any]:
        """What wheels the base image's Python takes: version, implementation, ABIs, platforms (once per image)."""
        image = self.client.images.get(self.config.base_image)
        if self._tags is not None and self._tags[0] == image.id:
            return self._tags[1]
        probe = (
            "import json, sys\n"
            "from pip._vendor.packaging import tags\n"
            "found = list(tags.sys_tags())\n"
            "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], 'implementation': found[0].interpreter[:2],"
            " 'abis': sorted({t.abi for t in found}), 'platforms': sorted({t.platform for t in found} - {'any'})}))\n"
        )
        output = self.client.containers.run(
            image.id, ["python", "-c", probe], network_mode="none", remove=True, stdout=True, stderr=False
        )
        tags = json.loads(output.decode().strip().splitlines()[-1])
        self._tags = (image.id, tags)
        return tags

    def _fetch(
        self,
        wanted: list[str],
        work: Path,
        *,
        log: LogFunc,
        should_cancel: CancelFunc,
        index_options: list[str] | None = None,
    ) -> None:
        """Download wheels for the image (and source archives where a package has none) into ``work/wheels``.

        The worker's pip only downloads (``--only-binary :all:`` for the image's tags: wheel
        metadata is static, no package code runs); a package without a wheel is fetched as its
        source archive by the platform's own finder (runtimes.local.fetch), and the build
        requirements it declares are read from its pyproject.toml without running it.
        """
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        from runtimes.local import fetch
        from runtimes.local.environments import Environments
        from runtimes.local.handles import LocalConfig

        wheels = work / "wheels"
        tags = self._image_tags()
        platform_args = ["--python-version", tags["version"], "--implementation", tags["implementation"]]
        for abi in tags["abis"]:
            platform_args += ["--abi", abi]
        for platform in tags["platforms"]:
            platform_args += ["--platform", platform]
        steps = Environments(
            LocalConfig(data_dir=self.data_dir, build_timeout_seconds=self.config.build_timeout_seconds), self.data_dir
        )
        deadline = time.monotonic() + self.config.build_timeout_seconds
        env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower().endswith("_proxy")}
        env.update(
            PATH="/usr/local/bin:/usr/bin:/bin",
            HOME=str(work / "tmp"),
            LANG="C.UTF-8",
            PYTHONPATH=str(Path(fetch.__file__).resolve().parents[2]),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_INPUT="1",
        )
        if self.config.pip_index_url:
            env["PIP_INDEX_URL"] = self.config.pip_index_url
        if self.config.pip_extra_index_url:
            env["PIP_EXTRA_INDEX_URL"] = self.config.pip_extra_index_url
        if self.config.ca_bundle and os.path.isfile(self.config.ca_bundle):
            env["PIP_CERT"] = self.config.ca_bundle

        def run(argv: list[str], log_as: str) -> tuple[int, list[str]]:
            log(log_as)
            return steps.stream(argv, env=env, log=log, should_cancel=should_cancel, deadline=deadline, cwd=work)

        def download(requirements: list[str]) -> tuple[int, list[str]]:
            argv = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--progress-bar", "off"]
            argv += ["--dest", str(wheels), "--find-links", str(wheels), *platform_args, *(index_options or [])]
            argv += requirements
            return run(argv, "$ pip download --only-binary :all: (for the image's Python) ...")

        built: set[str] = set()
        remaining = list(wanted)
        for _round in range(20):
            if not remaining:
                return
            code, tail = download(remaining)
            if code == 0:
                return
            missing = fetch.missing_requirement(tail)
            try:
                name = canonicalize_name(Requirement(missing).name) if missing else ""
            except ValueError:
                name = ""
            if not name or name in built:
                raise BuildError(
                    f"fetching the requirements failed:\n{pip_error(tail)}",
                    user_error=True,
                    code="build:user:requirements",
                )
            listed = [r for r in remaining if canonicalize_name(Requirement(r).name) == name]
            if not listed:
                raise BuildError(
                    f"{missing} (a dependency of another requirement) has no wheel for the image; Docker builds "
                    "build source archives only of packages requirements.txt names. List it there, or pin a "
                    f"version that has a wheel.\n{pip_error(tail)}",
                    user_error=True,
                    code="build:user:requirements",
                )
            built.add(name)
            assert missing is not None
            code, sdist_tail = run(
                [sys.executable, "-m", "runtimes.local.fetch", str(wheels), missing, *(index_options or [])],
                f"{missing} has no wheel: fetching its source archive (built later, without network)",
            )
            if code != 0:
                raise BuildError(
                    f"fetching the requirements failed:\n{pip_error(tail)}\nand there is no source archive "
                    f"either:\n{pip_error(sdist_tail)}",
                    user_error=True,
                    code="build:user:requirements",
                )
            sdist = Path(sdist_tail[-1].strip())
            if sdist.parent != wheels or not sdist.is_file():
                raise BuildError(f"fetching the source of {missing} failed", user_error=False)
            try:
                build_requires = fetch.build_requirements(sdist)
            except RequirementsError as exc:
                raise BuildError(exc.message, user_error=True, code="build:user:requirements") from None
            if build_requires:
                code, tail = download(build_requires)
                if code != 0:
                    raise BuildError(
                        f"fetching the build requirements of {sdist.name} failed:\n{pip_error(tail)}",
                        user_error=True,
                        code="build:user:requirements",
                    )
            # The rest is fetched without it; its own dependencies pip in the image finds among
            # the fetched files (those it declares must be listed too when they are not).
            remaining = [r for r in remaining if r not in listed]
        raise BuildError("too many packages must be built from source", user_error=True, code="build:user:requirements")

    def remove_build(self, build_handle: BuildHandle | Mapping[str, Any]) -> None:
        """Remove the version's image from this host's engine (the registry keeps its copy:
        deleting there is the registry's garbage collection, an operator's job)."""
        handle = self.build_handle(build_handle)
        assert isinstance(handle, DockerBuildHandle)
        self.remove_versions([check_id(handle.version_id, "version id")])

    def remove_versions(self, version_ids: Iterable[str]) -> list[str]:
        """Remove every name this engine has for the images of these versions: ``planqk-svc-<id>``
        as built here, and ``<this host's registry>/planqk-svc-<id>`` by tag or by digest as pushed
        or pulled. The names are derived from the id (an id that is not a plain name is skipped)
        and this host's setting, never read from a handle; other images are not touched. An image
        a container still uses stays (the next housekeeping tries again). Returns the ids of
        which a name was removed."""
        version_ids = list(version_ids)
        # Their warm containers first: an image a container uses cannot be removed.
        self.warm.stop_versions(set(version_ids))
        wanted: dict[str, str] = {}
        for version_id in version_ids:
            try:
                wanted[image_tag(version_id)] = version_id
            except ValueError:
                logger.warning("not removing the image of %r: not a version id", version_id)
                continue
            if self.config.registry:
                wanted[registry_repository(self.config.registry, version_id)] = version_id
        if not wanted:
            return []
        removed: set[str] = set()
        for image in self.client.images.list():
            # Tags first: an image pulled by digest is gone with its last name either way.
            references = [*(image.attrs.get("RepoTags") or []), *(image.attrs.get("RepoDigests") or [])]
            for reference in references:
                version_id = wanted.get(parse_repository_tag(reference)[0])
                if version_id is None:
                    continue
                try:
                    self.client.images.remove(reference)
                    removed.add(version_id)
                except docker.errors.ImageNotFound:
                    pass
                except docker.errors.APIError as exc:
                    # Still used by a container: the next housekeeping gets it.
                    logger.warning("could not remove image %s: %s", reference, _engine_message(exc))
        return sorted(removed)

    # --- executions --------------------------------------------------------------------------

    def _container(self, handle: ExecutionHandle) -> Any | None:
        try:
            return self.client.containers.get(self._own(handle).container)
        except docker.errors.NotFound:
            return None

    @staticmethod
    def _own(handle: ExecutionHandle) -> DockerExecutionHandle:
        if not isinstance(handle, DockerExecutionHandle):
            raise TypeError(f"not an execution handle of the docker runtime: {handle!r}")
        return handle

    def start(self, spec: ExecutionSpec) -> DockerExecutionHandle:
        # The take's moment: a warm execution's time counts from here, not from its container's start.
        taken_at = time.time()
        execution_id = check_id(spec.execution_id, "execution id")
        build = spec.build
        if not isinstance(build, DockerBuildHandle):
            raise ValueError(f"not a build of the docker runtime: {build!r}")
        # Checked before anything is taken or written: bad variables leave nothing behind.
        env = execution_env(spec)
        # A container started ahead of time for this build and these limits (see DockerWarmPool).
        handle = self.warm.take(spec, build, env=env, taken_at=taken_at)
        if handle is not None:
            return handle
        name = container_name(execution_id)
        client = self.client
        # Before anything is written for the execution: a build this host cannot get leaves nothing.
        image = self._image_for(build, spec)
        with contextlib.suppress(docker.errors.NotFound):
            # A leftover of an earlier attempt of this execution.
            client.containers.get(name).remove(force=True)
        exec_dir = self.executions_dir / execution_id
        rmtree(exec_dir)
        self._make_dir(exec_dir, warm=False)
        self._write_input(exec_dir, spec)
        uids = self.uids()
        uid = uids.claim(execution_id, exec_dir)
        try:
            container = self._create(client, image, spec, execution_id, exec_dir, uid)
            container.start()
        except docker.errors.ImageNotFound as exc:
            uids.release(execution_id)
            raise RuntimeUnavailable(f"the image {build.image} is gone; build the version again") from exc
        except BaseException:
            uids.release(execution_id)
            raise
        return DockerExecutionHandle(
            execution_id=execution_id,
            container=name,
            container_id=container.id,
            dir=str(exec_dir),
            started_at=time.time(),
            timeout=spec.timeout_seconds,
            max_output_bytes=spec.max_output_bytes,
            uid=uid,
        )

    @staticmethod
    def _make_dir(exec_dir: Path, *, warm: bool) -> None:
        """An execution's host folder: its input (bound read-only), the result mount and, for a warm
        container, the folder of its go socket."""
        subs = ["input/data", "input/params", "result"] + ([WARM_DIR] if warm else [])
        for sub in subs:
            (exec_dir / sub).mkdir(parents=True, exist_ok=True)
        for path in [exec_dir, *exec_dir.rglob("*")]:
            os.chmod(path, READABLE_DIR if path.is_dir() else 0o644)
        if warm:
            # Only the container's uid (which gets it below) and the worker may enter.
            os.chmod(exec_dir / WARM_DIR, 0o700)

    @staticmethod
    def _write_input(exec_dir: Path, spec: ExecutionSpec) -> None:
        for name, value in (("data", spec.data), ("params", spec.params)):
            path = exec_dir / "input" / name / f"{name}.json"
            tmp = path.with_name(f".{name}.json.tmp")
            tmp.write_text(json.dumps(value or {}))
            os.chmod(tmp, 0o644)
            # Whole or not at all: a warm runner reads it the moment it has its go.
            os.replace(tmp, path)

    def _create(
        self,
        client: docker.DockerClient,
        image: str,
        spec: ExecutionSpec,
        label_id: str,
        exec_dir: Path,
        uid: int,
        *,
        warm_shape: str = "",
    ) -> Any:
        """Create the container of an execution, cold or warm: this is the ONE place its isolation
        and limits are written (a warm container differs only in its name and labels, its socket
        folder and its supervisor's idle time; its variables come with the go, see
        :meth:`DockerWarmPool.take`). The container is not started yet."""
        memory = f"{int(spec.memory_mb)}m"
        # In memory and counted against the container's memory limit, gone with the container.
        tmpfs = f"rw,nosuid,nodev,size={int(spec.memory_mb)}m,mode=1777"
        volumes = {
            str(exec_dir / "input"): {"bind": "/var/input", "mode": "ro"},
            str(exec_dir / "result"): {"bind": RESULT_MOUNT, "mode": "rw"},
            str(self.runner_copy()): {"bind": f"{RUNNER_MOUNT}/planqk_runtime", "mode": "ro"},
        }
        labels = {
            LABEL_EXECUTION: label_id,
            LABEL_INSTALL: self.install_id,
            LABEL_TIMEOUT: str(spec.timeout_seconds),
            LABEL_MAX_OUTPUT: str(spec.max_output_bytes),
        }
        warm = None
        if warm_shape:
            volumes[str(exec_dir / WARM_DIR)] = {"bind": WARM_MOUNT, "mode": "rw"}
            labels[LABEL_WARM] = warm_shape
            warm = (self.config.warm.idle_seconds, f"{WARM_MOUNT}/{WARM_SOCKET}")
        container = client.containers.create(
            image,
            command=runner_command(
                spec.timeout_seconds,
                self.config.alarm_grace_seconds,
                max_response_bytes=spec.max_output_bytes,
                output_limits=spec.output_limits,
                warm=warm,
            ),
            # An init process (tini) reaps orphans, whose zombies would count against the
            # pids limit, and lets the runner's alarm fire (PID 1 ignores it).
            init=self.config.init,
            name=container_name(label_id),
            detach=True,
            network_mode="none",
            read_only=True,
            # The output directory too: bounded like memory; the supervisor copies the result
            # files out of it once every other process of the container is gone.
            tmpfs={"/tmp": tmpfs, "/var/tmp": tmpfs, "/dev/shm": tmpfs, CONTAINER_OUTPUT_DIR: tmpfs},  # noqa: S108
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=int(spec.max_pids),
            user=f"{uid}:{uid}",
            volumes=volumes,
            labels=labels,
            # A warm container is created before its execution: its variables come with the go.
            # A warm container's spec has no variables (DockerWarmPool): they come with the go.
            environment=execution_env(spec),
            working_dir="/app",
            ulimits=[Ulimit(name="core", soft=0, hard=0)],
            log_config=LogConfig(type="json-file", config={}),
        )
        # The container's supervisor (the container's user) writes the response there, and a warm
        # one's its go socket.
        user, _, group = str(container.attrs["Config"].get("User") or "").partition(":")
        if user.isdigit():
            for sub in ("result", WARM_DIR) if warm_shape else ("result",):
                os.chown(exec_dir / sub, int(user), int(group) if group.isdigit() else int(user))
        return container

    # --- warm containers (issue 17) ------------------------------------------------------------

    def warm_shape(self, spec: ExecutionSpec) -> str:
        """The pool a container for ``spec`` comes from: everything fixed when it is created."""
        build = spec.build
        assert isinstance(build, DockerBuildHandle)
        fixed = {
            "version": build.version_id,
            "image": build.image,
            "image_id": build.image_id,
            "digest": build.digest,
            "memory_mb": int(spec.memory_mb),
            "cpus": float(spec.cpus),
            "timeout": int(spec.timeout_seconds),
            "max_pids": int(spec.max_pids),
            "max_output_bytes": int(spec.max_output_bytes),
            "output_limits": list(spec.output_limits.to_args()),
            # A container runs the runner (and alarm) of the day it was created.
            "runner": self.runner_copy().parent.name,
            "init": bool(self.config.init),
            "grace": int(self.config.alarm_grace_seconds),
        }
        return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:32]

    def prewarm(self, spec: ExecutionSpec, *, wait_seconds: float = 0.0) -> int:
        """Count ``spec`` as a call and create its shape's warm containers now, not in the
        background; with ``wait_seconds``, wait that long at most for one to be ready. Returns how
        many are ready (benchmarks and tests use it to measure and check the warm path itself)."""
        if not isinstance(spec.build, DockerBuildHandle):
            raise ValueError(f"not a build of the docker runtime: {spec.build!r}")
        return self.warm.prewarm(spec, spec.build, wait_seconds=wait_seconds)

    def start_warm(self, client: docker.DockerClient, spec: ExecutionSpec, shape: str) -> None:
        """Create and start the warm container ``spec.execution_id`` (a ``warm-`` name) of ``shape``."""
        runner = check_id(spec.execution_id, "warm container")
        assert isinstance(spec.build, DockerBuildHandle)
        image = self._image_for(spec.build, spec)
        exec_dir = self.executions_dir / runner
        rmtree(exec_dir)
        self._make_dir(exec_dir, warm=True)
        uids = self.uids()
        uid = uids.claim(runner, exec_dir)
        try:
            container = self._create(client, image, spec, runner, exec_dir, uid, warm_shape=shape)
            handle = DockerExecutionHandle(
                execution_id=runner,
                container=container.name,
                container_id=container.id,
                dir=str(exec_dir),
                timeout=spec.timeout_seconds,
                max_output_bytes=spec.max_output_bytes,
                uid=uid,
                warm=True,
            )
            sup.write_json_atomic(exec_dir / WARM_HANDLE_FILE, handle.to_json())
            container.start()
        except BaseException:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_container(container_name(runner), force=True)
            uids.release(runner)
            rmtree(exec_dir)
            raise

    def warm_handle(self, runner: str) -> DockerExecutionHandle | None:
        """The handle a warm container was created with (None when its folder is gone)."""
        try:
            data = json.loads((self.executions_dir / check_id(runner, "warm container") / WARM_HANDLE_FILE).read_text())
            return DockerExecutionHandle.from_json(data)
        except (OSError, ValueError):
            return None

    def warm_ready(self, runner: str) -> bool:
        """Whether the warm container listens for its go (its socket appears only then)."""
        try:
            return stat.S_ISSOCK(os.lstat(self.executions_dir / runner / WARM_DIR / WARM_SOCKET).st_mode)
        except OSError:
            return False

    def discard_warm(self, runner: str) -> None:
        """Remove a warm container nobody took: the container (by its name, which a take changes,
        so a container taken meanwhile is never hit), its uid claim and its folder."""
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(container_name(runner), force=True)
        self.uids().release(runner)
        rmtree(self.executions_dir / runner)

    def take_warm(
        self, spec: ExecutionSpec, runner: str, env: Mapping[str, str], taken_at: float
    ) -> DockerExecutionHandle | None:
        """Give the execution ``spec`` to the warm container ``runner`` (claimed by the caller):
        the folder and the uid claim become the execution's, the input is written, the container
        gets the execution's name and its go with the execution's variables. None when the
        container is gone or does not answer (what is left of it is removed; start cold)."""
        execution_id = check_id(spec.execution_id, "execution id")
        slot = self.warm_handle(runner)
        if slot is None:
            self.discard_warm(runner)
            return None
        runner_dir = self.executions_dir / runner
        connection = _connect(runner_dir / WARM_DIR / WARM_SOCKET, slot.uid)
        if connection is None:
            # Killed or ended while idle.
            self.discard_warm(runner)
            return None
        exec_dir = self.executions_dir / execution_id
        name = container_name(execution_id)
        handle = DockerExecutionHandle(
            execution_id=execution_id,
            container=name,
            container_id=slot.container_id,
            dir=str(exec_dir),
            started_at=taken_at,
            timeout=spec.timeout_seconds,
            max_output_bytes=spec.max_output_bytes,
            uid=slot.uid,
            warm=True,
        )
        client = self.client
        with connection:
            try:
                with contextlib.suppress(docker.errors.NotFound):
                    # A leftover of an earlier attempt of this execution.
                    client.api.remove_container(name, force=True)
                rmtree(exec_dir)
                # The uid claim names a folder that exists at every moment (a claim whose folder
                # is gone is free for the taking): moved to an empty folder of the execution's
                # name, which the rename then replaces. The container keeps its mounts across the
                # rename (they hold the folders, not their names); under the execution's name
                # cleanup, orphans and a retried start find it as they find any execution's.
                exec_dir.mkdir()
                self.uids().move(runner, execution_id, exec_dir)
                os.rename(runner_dir, exec_dir)
                (exec_dir / WARM_HANDLE_FILE).unlink(missing_ok=True)
                self._write_input(exec_dir, spec)
                client.api.rename(slot.container_id, name)
                connection.sendall(go_message(env))
                answer = _read_line(connection)
            except (OSError, docker.errors.APIError) as exc:
                logger.warning("warm container %s could not be taken: %s", runner, exc)
                answer = b""
        if answer != WARM_STARTED:
            self._discard_taken(handle, runner)
            return None
        return handle

    def _discard_taken(self, handle: DockerExecutionHandle, runner: str) -> None:
        """Remove what a failed take left: the container under either name, the folder, the claim."""
        with contextlib.suppress(docker.errors.DockerException, OSError):
            self.client.api.remove_container(handle.container_id, force=True)
        self.uids().release(runner)
        self.uids().release(handle.execution_id)
        rmtree(self.executions_dir / runner)
        rmtree(Path(handle.dir))

    def _logs(self, container: Any) -> bytes:
        return container.logs(stdout=True, stderr=True) or b""

    def _output_over(self, container: Any, cap: int) -> bool:
        # The json-file log holds more than the output (JSON, timestamps): while it is under
        # the cap the output is too, and the logs need not be fetched.
        with contextlib.suppress(OSError, KeyError, TypeError):
            if os.path.getsize(container.attrs["LogPath"]) <= cap:
                return False
        return len(self._logs(container)) > cap

    def _record_peak(self, container: Any, exec_dir: Path) -> int | None:
        """Note the container's peak memory while it runs: the engine forgets it at exit.

        Read from the container's cgroup when this worker runs beside the engine (the stats
        API takes a second per call, too slow for every poll); None elsewhere.
        """
        peak = self._read_peak(exec_dir)
        sample = _cgroup_peak_bytes(container.id)
        if sample is not None and (peak is None or sample // 1024 > peak):
            peak = sample // 1024
            with contextlib.suppress(OSError):
                (exec_dir / PEAK_FILE).write_text(str(peak))
        return peak

    @staticmethod
    def _read_peak(exec_dir: Path) -> int | None:
        try:
            return int((exec_dir / PEAK_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _kill(self, container: Any, handle: DockerExecutionHandle, reason: str) -> None:
        exec_dir = Path(handle.dir)
        if exec_dir.exists():
            sup.write_stop(exec_dir, reason)
        with contextlib.suppress(docker.errors.APIError):
            container.kill()
        with contextlib.suppress(Exception):
            container.wait(timeout=10)

    def poll(self, handle: ExecutionHandle) -> ExecutionState:
        handle = self._own(handle)
        exec_dir = Path(handle.dir)
        container = self._container(handle)
        if container is None:
            return ExecutionState(running=False, exit_code=None, cancelled=sup.read_stop(exec_dir) == "cancel")
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("created", "running", "restarting", "paused"):
            self._record_peak(container, exec_dir)
            if time.time() > (handle.started_at or 0) + handle.timeout:
                self._kill(container, handle, "timeout")
            elif self._output_over(container, handle.max_output_bytes):
                self._kill(container, handle, "output")
            else:
                return ExecutionState(running=True)
            container.reload()
            state = container.attrs["State"]
        reason = sup.read_stop(exec_dir)
        if reason is None and state.get("ExitCode") == ALARM_EXIT_CODE and self.config.init:
            reason = "timeout"  # the container's own deadline: nobody polled in time
        output_size = len(self._logs(container))
        return ExecutionState(
            running=False,
            exit_code=state.get("ExitCode"),
            timed_out=reason == "timeout",
            oom_killed=bool(state.get("OOMKilled")),
            output_truncated=reason == "output" or output_size > handle.max_output_bytes,
            peak_memory_kb=self._read_peak(exec_dir),
            cancelled=reason == "cancel",
        )

    def final_response(self, handle: ExecutionHandle) -> FinalResponse | None:
        """The response the container's supervisor wrote after the runner and everything else ended.

        Read only once the container has stopped: while it runs, user code can write there too.
        """
        own = self._own(handle)
        container = self._container(own)
        if container is not None:
            container.reload()
            if container.attrs["State"]["Status"] in ("created", "running", "restarting", "paused"):
                return None
        path = Path(own.dir) / "result" / RESPONSE_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(2 * max(int(own.max_output_bytes), 1 << 20) + 4096)
        try:
            return response_from_json(json.loads(data))
        except (ValueError, RecursionError):
            return None

    def result_files(self, handle: ExecutionHandle, limits: OutputLimits) -> tuple[list[OutputFile], list[str]]:
        """The files the container's supervisor copied out after everything else had ended
        (``result/files``); nothing while the container still runs (user code could write there)."""
        own = self._own(handle)
        container = self._container(own)
        if container is not None:
            container.reload()
            if container.attrs["State"]["Status"] in ("created", "running", "restarting", "paused"):
                return [], []
        files, _ = collect(Path(own.dir) / "result" / FILES_DIR, limits)
        return files, []  # the supervisor printed its notes into the execution's output

    def read_output(self, handle: ExecutionHandle, offset: int) -> tuple[str, int]:
        container = self._container(handle)
        if container is None:
            return "", offset
        data = self._logs(container)[offset : int(self._own(handle).max_output_bytes)]
        return decode_prefix(data, offset)

    def cancel(self, handle: ExecutionHandle) -> None:
        container = self._container(handle)
        if container is None:
            return
        container.reload()
        if container.attrs["State"]["Status"] in ("created", "running", "restarting", "paused"):
            self._kill(container, self._own(handle), "cancel")

    def cleanup(self, handle: ExecutionHandle) -> None:
        container = self._container(handle)
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        exec_dir = Path(self._own(handle).dir)
        if exec_dir.exists() and exec_dir.parent.resolve() != self.executions_dir:
            raise ValueError(f"not an execution folder of this runtime: {exec_dir}")
        self.uids().release(self._own(handle).execution_id)
        rmtree(exec_dir)

    def orphans(self, known_execution_ids: set[str]) -> list[ExecutionHandle]:
        found: list[ExecutionHandle] = []
        for container in self.client.containers.list(all=True, filters={"label": LABEL_EXECUTION}):
            labels = container.labels
            if not self.owns(labels):
                continue
            execution_id = labels.get(LABEL_EXECUTION, "")
            if LABEL_WARM in labels:
                # Created ahead under a warm name (its label cannot change): still untaken it is
                # the pool's (DockerWarmPool.trim), taken it carries its execution's name.
                taken = str(container.name).removeprefix(CONTAINER_PREFIX)
                if taken.startswith(WARM_PREFIX) or taken == container.name:
                    continue
                execution_id = taken
            if execution_id in known_execution_ids:
                continue
            found.append(
                DockerExecutionHandle(
                    execution_id=execution_id,
                    container=container.name,
                    container_id=container.id,
                    dir=str(self.executions_dir / execution_id),
                    started_at=_started_at(container),
                    timeout=int(labels.get(LABEL_TIMEOUT, "0") or 0),
                    max_output_bytes=int(labels.get(LABEL_MAX_OUTPUT, "0") or 0),
                )
            )
        return found


def _engine_message(exc: BaseException) -> str:
    """What the engine said, without the SDK's request URL (it names the engine's socket)."""
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()[:500]


def _cgroup_value(container_id: str, v1_name: str, v2_name: str) -> int | None:
    """A number from the container's memory cgroup (v1 cgroupfs or systemd driver, or v2)."""
    candidates = (
        f"/sys/fs/cgroup/memory/docker/{container_id}/{v1_name}",
        f"/sys/fs/cgroup/memory/system.slice/docker-{container_id}.scope/{v1_name}",
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/{v2_name}",
        f"/sys/fs/cgroup/docker/{container_id}/{v2_name}",
    )
    for path in candidates:
        with contextlib.suppress(OSError, ValueError):
            return int(Path(path).read_text())
    return None


def _cgroup_memory_bytes(container_id: str) -> int | None:
    """The container's memory charge now."""
    return _cgroup_value(container_id, "memory.usage_in_bytes", "memory.current")


def _cgroup_peak_bytes(container_id: str) -> int | None:
    """The container's peak memory."""
    return _cgroup_value(container_id, "memory.max_usage_in_bytes", "memory.peak")


def _started_at(container: Any) -> float:
    """The container's start as a timestamp (the engine's clock; creation when never started)."""
    from datetime import datetime

    text = container.attrs.get("State", {}).get("StartedAt") or container.attrs.get("Created", "")
    # Docker writes nanoseconds; fromisoformat takes at most microseconds.
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", text)
    if not match or text.startswith("0001-"):
        return time.time()
    stamp = datetime.fromisoformat(match.group(1) + "+00:00").timestamp()
    return stamp + float(f"0.{match.group(2) or 0}")


def _connect(path: Path, uid: int | None) -> socket.socket | None:
    """A connection to the warm container's socket at ``path``, or None when nobody listens
    there or the listener is not of the container's ``uid``.

    The container owns the socket's folder: what it put there may be a symlink to another
    socket of the host (the engine's, another container's), so the peer is checked before a
    byte is sent. Through the folder's descriptor: ``/proc/self/fd/N/name`` stays short whatever
    the data folder's path (a socket address holds 107 bytes)."""
    try:
        folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(WARM_ANSWER_SECONDS)
        sock.connect(f"/proc/self/fd/{folder}/{path.name}")
        _, peer_uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    except OSError:
        sock.close()
        return None
    finally:
        os.close(folder)
    if uid is None or peer_uid != uid:
        logger.warning("warm socket %s: the listener has uid %d, not the container's %s", path, peer_uid, uid)
        sock.close()
        return None
    return sock


def _read_line(sock: socket.socket, limit: int = 256) -> bytes:
    """The first line the peer sends (with its newline), or what came before it closed."""
    data = bytearray()
    while b"\n" not in data and len(data) < limit:
        chunk = sock.recv(limit)
        if not chunk:
            break
        data += chunk
    return bytes(data)


class DockerWarmPool(WarmPool):
    """Warm containers: :class:`runtimes.local.warm.WarmPool`'s files, sizing (``target``) and
    housekeeping (``trim``, ``stop_versions``, ``stop_all``, ``state``, ``summary``), with
    containers for runners.

    A warm container is created by :meth:`DockerRuntime._create`, exactly as a cold execution's
    (the limits, uid, network, read-only root and tmpfs of its shape), its supervisor in warm
    mode (:mod:`planqk_runtime.container`): the runner imports the code and the supervisor
    listens on a socket in the container's folder. Its files, shared by every worker process of
    the host (the local pool's, plus ``starting/``)::

        {DATA_DIR}/docker-warm/<shape>/runners/<id>   created or being created
        {DATA_DIR}/docker-warm/<shape>/starting/<id>  not listening yet
        {DATA_DIR}/docker-warm/<shape>/ready/<id>     listening; removing the entry claims it
        {DATA_DIR}/containers/<id>/                   its folder (input, result, warm socket)

    A container cannot write the pool's files, so whoever looks at the pool moves a starting
    entry to ``ready/`` once its socket exists (a rename: it happens once, so a claimed
    container never reappears as ready). Single use: a taken container ends with its execution
    and is removed by the execution's cleanup; one nobody takes stops itself after
    ``idle_seconds`` and :meth:`trim` removes it.
    """

    def __init__(self, config: WarmConfig, runtime: DockerRuntime) -> None:
        super().__init__(config, runtime.data_dir, None)  # type: ignore[arg-type]
        # Apart from the local runtime's pool: housekeeping of one never touches the other's.
        self.warm_dir = runtime.data_dir / "docker-warm"
        self.runtime = runtime
        self._clients = threading.local()

    def _client(self) -> docker.DockerClient:
        """An engine client of this thread (the refill thread does not share the runtime's)."""
        client = getattr(self._clients, "client", None)
        if client is None:
            client = self.runtime.client if threading.current_thread() is threading.main_thread() else None
            if client is None:
                try:
                    client = docker.from_env()
                except docker.errors.DockerException as exc:
                    raise RuntimeUnavailable(f"no Docker engine answers: {exc}") from exc
            self._clients.client = client
        return client

    # --- the execution's side -----------------------------------------------------------------

    def take(  # type: ignore[override]
        self, spec: ExecutionSpec, build: DockerBuildHandle, *, env: Mapping[str, str], taken_at: float
    ) -> DockerExecutionHandle | None:
        """A warm container of ``spec``'s shape given ``spec``, or None (start it cold); the call
        counts as demand either way and the shape is refilled in the background."""
        if not self.config.enabled:
            return None
        shape = self.runtime.warm_shape(spec)
        folder = self.warm_dir / shape
        self._note_call(folder, spec, build)
        handle = None
        (folder / "taken").mkdir(exist_ok=True)
        for runner in self._ready(folder):
            taken = folder / "taken" / runner
            try:
                # The claim: exactly one taker (or one trimmer) moves or removes the entry. While
                # it is in taken/ housekeeping leaves the container alone (its names change).
                os.rename(folder / "ready" / runner, taken)
                os.utime(taken)
            except FileNotFoundError:
                continue
            try:
                handle = self.runtime.take_warm(spec, runner, env, taken_at)
            finally:
                (folder / "runners" / runner).unlink(missing_ok=True)
                taken.unlink(missing_ok=True)
            if handle is not None:
                break
        self.refill_soon(shape)
        return handle

    def prewarm(self, spec: ExecutionSpec, build: Any, *, wait_seconds: float = 0.0) -> int:
        """:meth:`DockerRuntime.prewarm`."""
        if not self.config.enabled:
            return 0
        shape = self.runtime.warm_shape(spec)
        folder = self.warm_dir / shape
        self._note_call(folder, spec, build)
        self.refill(shape)
        give_up = time.monotonic() + wait_seconds
        while not self._ready(folder) and time.monotonic() < give_up:
            time.sleep(0.01)
        return len(self._ready(folder))

    # --- the pool's side ------------------------------------------------------------------------

    def _start_runner(self, folder: Path, meta: dict[str, Any]) -> None:
        runner = f"{WARM_PREFIX}{uuid.uuid4().hex}"
        spec = ExecutionSpec(
            execution_id=runner,
            build=DockerBuildHandle.from_json(meta["build"]),
            # No variables, no input: those are the execution's and come with the take.
            env={},
            memory_mb=meta["memory_mb"],
            cpus=meta["cpus"],
            timeout_seconds=meta["timeout_seconds"],
            max_pids=meta["max_pids"],
            max_output_bytes=meta["max_output_bytes"],
            output_limits=OutputLimits(**meta["output_limits"]),
        )
        for sub in ("runners", "starting", "ready"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "runners" / runner).touch()
        (folder / "starting" / runner).touch()
        try:
            self.runtime.start_warm(self._client(), spec, folder.name)
        except BaseException:
            (folder / "starting" / runner).unlink(missing_ok=True)
            (folder / "runners" / runner).unlink(missing_ok=True)
            raise

    def _ready(self, folder: Path) -> list[str]:  # type: ignore[override]
        """The shape's ready containers, after moving those that listen now out of ``starting/``."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder / "starting"):
                if entry.name.startswith(WARM_PREFIX) and self.runtime.warm_ready(entry.name):
                    with contextlib.suppress(OSError):
                        os.rename(entry.path, folder / "ready" / entry.name)
        return WarmPool._ready(folder)

    def _being_taken(self, runner: str) -> bool:
        """Whether a taker claimed the container a moment ago and is still handing it over."""
        for taken in self.warm_dir.glob(f"*/taken/{runner}"):
            with contextlib.suppress(OSError):
                if time.time() - taken.stat().st_mtime < TAKE_SECONDS:
                    return True
        return False

    def _ended(self, runner: str) -> bool:
        """Whether the container stopped (idle, killed, died) without an execution taking it."""
        if self._being_taken(runner):
            return False
        runner_dir = self.runtime.executions_dir / runner
        if not runner_dir.exists():
            return True  # taken (its folder is an execution's now) or removed
        handle = self.runtime.warm_handle(runner)
        if handle is None:
            # Being created; a creator that died left this: gone after a while.
            with contextlib.suppress(OSError):
                return time.time() - runner_dir.stat().st_mtime > STARTING_SECONDS
            return True
        try:
            state = self._client().api.inspect_container(container_name(runner))["State"]
        except docker.errors.NotFound:
            return True
        except (docker.errors.DockerException, RuntimeUnavailable, OSError):
            return False  # no engine answers now: nothing can be told, nothing is removed
        return state.get("Status") not in ("created", "running", "restarting", "paused")

    def _remove(self, folder: Path, runner: str) -> None:
        for sub in ("ready", "starting", "taken"):
            (folder / sub / runner).unlink(missing_ok=True)
        self.runtime.discard_warm(runner)
        (folder / "runners" / runner).unlink(missing_ok=True)

    def _discard(self, runner: str) -> None:
        self.runtime.discard_warm(runner)

    def _runner_memory_kb(self, runner: str) -> int:
        """The container's memory charge from its cgroup; its limit where that cannot be read."""
        handle = self.runtime.warm_handle(runner)
        if handle is None:
            return 0
        used = _cgroup_memory_bytes(handle.container_id)
        if used is not None:
            return used // 1024
        try:
            limit = self._client().api.inspect_container(handle.container_id)["HostConfig"]["Memory"]
        except (docker.errors.DockerException, RuntimeUnavailable, OSError, KeyError, TypeError):
            return 0
        return int(limit or 0) // 1024

    def trim(self) -> dict[str, int]:
        """:meth:`WarmPool.trim` (the starting containers of a shape nobody wants go too), then the
        warm containers and folders no pool knows (a worker that died while creating one, a pool
        folder removed): none is left behind."""
        stopped = 0
        if self.warm_dir.is_dir():
            now = time.time()
            for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
                if target(self._calls(folder), now, self.config) == 0:
                    stopped += self._stop_folder(folder)
                else:
                    stopped += self._stop_chatty(folder)
        counts = super().trim()
        counts["stopped"] += stopped
        counts["cleaned"] += self._sweep()
        return counts

    def stop_versions(self, version_ids: set[str]) -> int:
        """Forget the demand for these versions (deleted, or removed from this host) and remove
        their containers nobody took, also those still starting."""
        stopped = super().stop_versions(version_ids)
        if self.warm_dir.is_dir():
            for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
                if not (folder / "calls").exists():
                    stopped += self._stop_folder(folder)
        return stopped

    def stop_all(self, wait_seconds: float = 0.0) -> int:
        """Remove every warm container of this host nobody took, also those still starting (the
        host's shutdown, warm execution turned off: housekeeping calls this, not :meth:`trim`); a
        starting one has a claim of its own here, so nothing needs ``wait_seconds``. This
        process's queued refills are dropped first."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._refills.get_nowait()
        stopped = 0
        if self.warm_dir.is_dir():
            for folder in sorted(p for p in self.warm_dir.iterdir() if p.is_dir()):
                stopped += self._stop_folder(folder)
        self._sweep()
        return stopped

    def _stop_chatty(self, folder: Path) -> int:
        """Remove the shape's idle containers whose output (import-time prints, a thread the
        import started) passed the output cap: nobody polls an idle container, and its log is
        on this host's disk. A taken one would be killed at its first poll anyway."""
        try:
            cap = int(json.loads((folder / "meta.json").read_text())["max_output_bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0
        stopped = 0
        for runner in self._ready(folder):
            try:
                log_path = self._client().api.inspect_container(container_name(runner))["LogPath"]
                over = bool(log_path) and os.path.getsize(log_path) > cap
            except (docker.errors.DockerException, RuntimeUnavailable, OSError, KeyError, TypeError):
                continue  # gone (trim cleans it up), no engine now, or an engine on another machine
            if not over:
                continue
            with contextlib.suppress(FileNotFoundError):
                (folder / "ready" / runner).unlink()  # the same claim a taker makes
                self.runtime.discard_warm(runner)
                (folder / "runners" / runner).unlink(missing_ok=True)
                stopped += 1
        return stopped

    def _stop_folder(self, folder: Path) -> int:
        """Remove the shape's containers nobody took (ready, starting or ended). Under the shape's
        start lock, so no refill of any worker process is creating one of it meanwhile."""
        stopped = 0
        with self._locked(folder):
            for runner in self._runners(folder):
                claimed = False
                # The claim a taker makes; a starting one may become ready meanwhile.
                for sub in ("starting", "ready"):
                    with contextlib.suppress(FileNotFoundError):
                        (folder / sub / runner).unlink()
                        claimed = True
                if claimed or self._ended(runner):
                    self.runtime.discard_warm(runner)
                    (folder / "runners" / runner).unlink(missing_ok=True)
                    stopped += int(claimed)
        return stopped

    def _sweep(self) -> int:
        # Listed first, known second: a container created meanwhile is in runners/ before it exists.
        try:
            containers = self._client().api.containers(all=True, filters={"label": LABEL_WARM})
        except (docker.errors.DockerException, RuntimeUnavailable, OSError):
            return 0
        folders = []
        with contextlib.suppress(OSError):
            folders = [e.name for e in os.scandir(self.runtime.executions_dir) if e.name.startswith(WARM_PREFIX)]
        known: set[str] = set()
        if self.warm_dir.is_dir():
            for folder in self.warm_dir.iterdir():
                if folder.is_dir():
                    known.update(self._runners(folder))
        swept = 0
        names = {
            str(name).lstrip("/").removeprefix(CONTAINER_PREFIX)
            for c in containers
            if self.runtime.owns(c.get("Labels") or {})
            for name in c["Names"]
        }
        for runner in sorted((names | set(folders)) - known):
            if not runner.startswith(WARM_PREFIX):
                continue
            with contextlib.suppress(ValueError):
                self.runtime.discard_warm(check_id(runner, "warm container"))
                swept += 1
            # Its entries too: no pool may count it any more.
            for entry in self.warm_dir.glob(f"*/*/{runner}"):
                with contextlib.suppress(OSError):
                    entry.unlink()
        return swept
