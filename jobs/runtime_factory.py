"""The runtimes as the Django settings configure them (``runtimes`` itself never imports Django).

Every setting read here is declared in ``planqk_portal/settings.py``; tests that need another
configuration construct the runtime from its config directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from runtimes.base import RUNTIME_CLASSES, Runtime, RuntimeUnavailable, runtime_class

logger = logging.getLogger(__name__)


def local_config() -> Any:
    """:class:`runtimes.local.LocalConfig` from ``PLANQK_DATA_DIR``, ``PLANQK_SANDBOX``, ``PLANQK_EXECUTION_UIDS``...

    Pip and build settings too.
    """
    from runtimes.local import LocalConfig
    from runtimes.local.handles import default_python

    return LocalConfig(
        data_dir=Path(settings.PLANQK_DATA_DIR),
        python=settings.PLANQK_LOCAL_PYTHON or default_python(),
        sandbox=settings.PLANQK_SANDBOX or "bwrap",
        execution_uids=settings.PLANQK_EXECUTION_UIDS,
        execution_group=int(settings.PLANQK_EXECUTION_GROUP),
        pip_index_url=settings.PLANQK_PIP_INDEX_URL,
        pip_extra_index_url=settings.PLANQK_PIP_EXTRA_INDEX_URL,
        allowed_index_urls=tuple(settings.PLANQK_ALLOWED_INDEX_URLS),
        ca_bundle=settings.PLANQK_BUILD_CA_BUNDLE,
        build_timeout_seconds=int(settings.PLANQK_BUILD_TIMEOUT),
        installer=settings.PLANQK_INSTALLER,
        warm=warm_config(),
    )


def warm_config() -> Any:
    """:class:`runtimes.local.handles.WarmConfig` from ``PLANQK_WARM*``: one rule for the local
    runtime's warm runners and the Docker runtime's warm containers."""
    from runtimes.local.handles import WarmConfig

    return WarmConfig(
        enabled=settings.PLANQK_WARM == "on",
        min_runners=int(settings.PLANQK_WARM_MIN_RUNNERS),
        max_runners=int(settings.PLANQK_WARM_MAX_RUNNERS),
        idle_seconds=int(settings.PLANQK_WARM_IDLE_SECONDS),
        memory_mb=int(settings.PLANQK_WARM_MEMORY_MB),
    )


def docker_config() -> Any:
    """:class:`runtimes.docker.DockerConfig` from ``PLANQK_BASE_IMAGE``, ``PLANQK_BUILD_NETWORK``..."""
    from runtimes.docker import DockerConfig

    return DockerConfig(
        data_dir=Path(settings.PLANQK_DATA_DIR),
        base_image=settings.PLANQK_BASE_IMAGE or "planqk/python-base:3.11",
        build_network=settings.PLANQK_BUILD_NETWORK or "host",
        execution_uids=settings.PLANQK_EXECUTION_UIDS,
        ca_bundle=settings.PLANQK_BUILD_CA_BUNDLE,
        pip_index_url=settings.PLANQK_PIP_INDEX_URL,
        pip_extra_index_url=settings.PLANQK_PIP_EXTRA_INDEX_URL,
        allowed_index_urls=tuple(settings.PLANQK_ALLOWED_INDEX_URLS),
        build_timeout_seconds=int(settings.PLANQK_BUILD_TIMEOUT),
        registry=settings.PLANQK_DOCKER_REGISTRY,
        registry_username=settings.PLANQK_DOCKER_REGISTRY_USERNAME,
        registry_password=settings.PLANQK_DOCKER_REGISTRY_PASSWORD,
        host_name=settings.PLANQK_HOST_NAME,
        warm=warm_config(),
    )


def external_config() -> Any:
    """:class:`runtimes.external.ExternalConfig` from ``PLANQK_DATA_DIR`` and ``PLANQK_EXTERNAL_ALLOW_PRIVATE``."""
    from runtimes.external import ExternalConfig

    return ExternalConfig(
        data_dir=Path(settings.PLANQK_DATA_DIR),
        allow_private=bool(settings.PLANQK_EXTERNAL_ALLOW_PRIVATE),
    )


CONFIGS: dict[str, Callable[[], Any]] = {"local": local_config, "docker": docker_config, "external": external_config}
assert set(CONFIGS) == set(RUNTIME_CLASSES), "every registered runtime needs its configuration here"


def get_runtime(name: str | None = None) -> Runtime:
    """The runtime called ``name``, or the one the ``PLANQK_RUNTIME`` setting chooses."""
    name = name or settings.PLANQK_RUNTIME or "local"
    cls = runtime_class(name)  # RuntimeUnavailable for an unknown name
    return cls(CONFIGS[name]())  # type: ignore[call-arg]


def _warm_pools() -> Iterator[Any]:
    """The warm pools of this host: local runners and, where the host runs Docker, containers."""
    for name in sorted({"local", *settings.PLANQK_HOST_RUNTIMES}):
        try:
            pool = getattr(get_runtime(name), "warm", None)
        except RuntimeUnavailable:
            continue  # no Docker engine on this host: nothing of it is warm here
        if pool is not None:
            yield pool


def warm_trim() -> dict[str, int]:
    """Housekeeping: stop the warm runners (local) and warm containers (Docker) nobody wants any
    more (versions not called for ``PLANQK_WARM_IDLE_SECONDS``, over ``PLANQK_WARM_MEMORY_MB``) and
    clean up ended ones; with ``PLANQK_WARM=off`` stop every idle one (warm was turned off)."""
    totals = {"stopped": 0, "cleaned": 0}
    for pool in _warm_pools():
        counts = pool.trim() if pool.config.enabled else {"stopped": pool.stop_all(), "cleaned": 0}
        for key in totals:
            totals[key] += int(counts.get(key, 0))
    return totals


def warm_stop_all(wait_seconds: float = 0.0) -> int:
    """Stop every warm runner and container of this host nobody took (the host shuts down: its
    workers stopped first, so nothing takes or refills meanwhile); ``wait_seconds`` for those
    still starting. Returns how many were stopped."""
    return sum(pool.stop_all(wait_seconds=wait_seconds) for pool in _warm_pools())


def environments_reap() -> dict[str, int]:
    """Reaper check: remove local environments no current build uses, idle ``PLANQK_ENV_IDLE_DAYS``.

    An environment is in use while a version of a service that is not deleted has a build
    handle pointing at it; the idle time also spares one a build has just created or reused
    but not yet recorded.
    """
    from services.models import ServiceVersion

    try:
        runtime = get_runtime("local")
    except RuntimeUnavailable as exc:
        logger.info("reaper: no local runtime here: %s", exc)
        return {"removed": 0}
    keep: set[str] = set()
    handles = ServiceVersion.objects.filter(
        runtime="local", build_handle__isnull=False, service__deleted_at__isnull=True
    ).values_list("build_handle", flat=True)
    for stored in handles.iterator():
        try:
            keep.add(runtime.build_handle(stored).env_key)  # type: ignore[attr-defined]
        except ValueError:
            logger.warning("reaper: a version's build handle is not a local build: %r", stored)
    idle_seconds = float(settings.PLANQK_ENV_IDLE_DAYS) * 86400
    removed = runtime.garbage_collect_envs(keep, idle_seconds=idle_seconds)  # type: ignore[attr-defined]
    if removed:
        logger.info("reaper: removed %d unused environments", len(removed))
    return {"removed": len(removed)}
