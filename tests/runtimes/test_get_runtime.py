"""Choosing the runtime from the settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from jobs.runtime_factory import get_runtime
from runtimes import RuntimeUnavailable
from runtimes.docker import DockerRuntime
from runtimes.local import LocalRuntime


def test_the_setting_chooses_the_runtime_and_its_configuration(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PLANQK_RUNTIME", "local")
        patch.setattr(settings, "PLANQK_DATA_DIR", tmp_path)
        patch.setattr(settings, "PLANQK_SANDBOX", "none")
        patch.setattr(settings, "PLANQK_PIP_INDEX_URL", "http://127.0.0.1:1/simple")
        runtime = get_runtime()
    assert isinstance(runtime, LocalRuntime)
    assert runtime.data_dir == tmp_path.resolve()
    assert runtime.config.sandbox == "none"
    assert runtime.config.pip_index_url == "http://127.0.0.1:1/simple"


def test_docker_is_chosen_by_name_without_contacting_the_engine(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PLANQK_DATA_DIR", tmp_path)
        patch.setattr(settings, "PLANQK_BASE_IMAGE", "example/base:1")
        runtime = get_runtime("docker")
    assert isinstance(runtime, DockerRuntime)
    assert runtime.config.base_image == "example/base:1"


def test_external_is_registered_and_refuses_private_addresses_unless_the_setting_allows(tmp_path: Path) -> None:
    from runtimes.external import ExternalRuntime

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PLANQK_DATA_DIR", tmp_path)
        patch.setattr(settings, "PLANQK_EXTERNAL_ALLOW_PRIVATE", False)
        refusing = get_runtime("external")
        patch.setattr(settings, "PLANQK_EXTERNAL_ALLOW_PRIVATE", True)
        allowing = get_runtime("external")
    assert isinstance(refusing, ExternalRuntime)
    assert refusing.config.allow_private is False
    assert allowing.config.allow_private is True


def test_every_setting_the_factory_reads_is_declared() -> None:
    import inspect

    from jobs import runtime_factory
    from planqk_portal import settings as declared

    source = inspect.getsource(runtime_factory)
    assert "getattr(settings" not in source
    for name in re.findall(r"settings\.(PLANQK_[A-Z_]+)", source):
        assert hasattr(declared, name), name


def test_an_unknown_runtime_is_refused() -> None:
    with pytest.raises(RuntimeUnavailable, match="unknown runtime"):
        get_runtime("kubernetes")
