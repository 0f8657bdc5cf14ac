"""deploy/compose.yaml validates with docker-compose and says what a deployment needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = ROOT / "deploy" / "compose.yaml"
SECRETS = {"POSTGRES_PASSWORD": "pw", "DJANGO_SECRET_KEY": "sk", "PLANQK_FIELD_ENCRYPTION_KEY": "fk"}
PLATFORM = ("web", "worker-1", "worker-2", "beat")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "DJANGO_ALLOWED_HOSTS"}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "config"], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_compose_file_validates_and_its_hosts_differ_only_where_they_must():
    completed = compose_config(SECRETS)
    assert completed.returncode == 0, completed.stderr
    services = yaml.safe_load(completed.stdout)["services"]
    assert set(services) == {*PLATFORM, "postgres", "redis", "registry"}
    env = {name: services[name]["environment"] for name in PLATFORM}
    shared = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "PLANQK_FIELD_ENCRYPTION_KEY")
    for key in (*shared, "DJANGO_MEDIA_ROOT", "PLANQK_HOST_LOST_SECONDS", "PLANQK_JOB_HEARTBEAT_STALE_SECONDS"):
        assert len({env[name][key] for name in PLATFORM}) == 1, key
    assert env["web"]["DJANGO_SECRET_KEY"] == "sk"
    # Each worker host has a name and a data directory of its own, mounted at the same path as on
    # the machine (the engine bind-mounts folders of it into executions).
    workers = ("worker-1", "worker-2")
    assert len({env[name]["PLANQK_HOST_NAME"] for name in workers}) == 2
    assert len({env[name]["PLANQK_DATA_DIR"] for name in workers}) == 2
    for name in workers:
        data_dir = env[name]["PLANQK_DATA_DIR"]
        assert f"{data_dir}:{data_dir}:rw" in services[name]["volumes"], services[name]["volumes"]
        assert "worker" in services[name]["command"]
    assert "beat" in services["beat"]["command"]
    # One registry for every host, at the address the machine's engine (which pushes and pulls) reaches.
    assert {env[name]["PLANQK_DOCKER_REGISTRY"] for name in PLATFORM} == {"127.0.0.1:5000/planqk"}
    ports = services["registry"]["ports"]  # docker-compose 1 writes "ip:published:target/tcp"
    assert [str(port).split("/")[0] for port in ports] == ["127.0.0.1:5000:5000"], ports
    assert sum("beat" in (services[name].get("command") or []) for name in services) == 1  # exactly one beat


def test_the_compose_file_refuses_to_start_without_its_secrets():
    completed = compose_config({k: v for k, v in SECRETS.items() if k != "DJANGO_SECRET_KEY"})
    assert completed.returncode != 0
    assert "set DJANGO_SECRET_KEY" in completed.stderr


def test_every_setting_the_compose_file_sets_is_declared_and_documented():
    # The web server's own variables are read where it starts (planqk_portal/server.py).
    settings_py = "".join((ROOT / "planqk_portal" / name).read_text() for name in ("settings.py", "server.py"))
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r"^\s+((?:PLANQK|DJANGO)_[A-Z_]+):", COMPOSE.read_text(), re.MULTILINE))
    assert "PLANQK_HOST_NAME" in names
    for name in sorted(names):
        assert f'"{name}"' in settings_py, f"{name} is not read by the platform"
        assert f"`{name}`" in readme, f"{name} is not in the README's settings table"
