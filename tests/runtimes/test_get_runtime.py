"""Choosing the runtime from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from jobs.runtime_factory import get_runtime
from runtimes import RuntimeUnavailable
from runtimes.docker import DockerRuntime
from runtimes.local import LocalRuntime


def test_the_setting_chooses_the_runtime_and_its_configuration(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PLANQK_RUNTIME", "local", raising=False)
        patch.setattr(settings, "PLANQK_DATA_DIR", tmp_path, raising=False)
        patch.setattr(settings, "PLANQK_SANDBOX", "none", raising=False)
        patch.setattr(settings, "PLANQK_PIP_INDEX_URL", "http://127.0.0.1:1/simple", raising=False)
        runtime = get_runtime()
    assert isinstance(runtime, LocalRuntime)
    assert runtime.data_dir == tmp_path.resolve()
    assert runtime.config.sandbox == "none"
    assert runtime.config.pip_index_url == "http://127.0.0.1:1/simple"


def test_docker_is_chosen_by_name_without_contacting_the_engine(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PLANQK_DATA_DIR", tmp_path, raising=False)
        patch.setattr(settings, "PLANQK_BASE_IMAGE", "example/base:1", raising=False)
        runtime = get_runtime("docker")
    assert isinstance(runtime, DockerRuntime)
    assert runtime.config.base_image == "example/base:1"


def test_an_unknown_runtime_is_refused() -> None:
    with pytest.raises(RuntimeUnavailable, match="unknown runtime"):
        get_runtime("kubernetes")
