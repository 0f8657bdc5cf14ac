"""Shared fixtures: users, an API client with a personal access token, a real browser, real workers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run in a thread
# with a running loop unless told that this is deliberate (tests only).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple-42"
CHROMIUM = os.environ.get("PLANQK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


# --- users and API ------------------------------------------------------------------------------


def make_user(email: str | None = None, password: str = PASSWORD):
    """Create an account with a known password."""
    from accounts.models import User

    return User.objects.create_user(email=email or f"user-{uuid.uuid4().hex[:8]}@example.com", password=password)


@pytest.fixture
def user(db):
    return make_user("alice@example.com")


@pytest.fixture
def other_user(db):
    return make_user("bob@example.com")


def token_for(user, scopes: list[str] | None = None) -> str:
    """A fresh personal access token for ``user``."""
    from accounts.services import personal_access_token_create

    return personal_access_token_create(user=user, name="tests", scopes=scopes or ["api"], expires_days=1).secret


def api_client_for(user):
    """A DRF client sending ``Authorization: Bearer <personal access token>``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


@pytest.fixture
def api_client(user):
    return api_client_for(user)


# --- browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_browser, request) -> Iterator[object]:
    """A fresh browser context and page; a screenshot is kept in var/test-screenshots on failure."""
    context = _browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        out = ROOT / "var" / "test-screenshots"
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def login(page, live_server, user, password: str = PASSWORD) -> None:
    """Log in through the real login form."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_selector("[data-testid=logout]")


# --- Celery workers -----------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A started process group (a Celery worker; a server subclasses it) and its log file."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Kill the worker and its pool children at once, as a crashed host would."""
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def _database_url() -> str:
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a process that works on this test run's database, queue and files."""
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "PLANQK_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PLANQK_DATA_DIR": str(settings.PLANQK_DATA_DIR),
        **extra,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def start_worker(concurrency: int = 1, extra_env: dict[str, str] | None = None) -> WorkerProcess:
    """Start a real Celery worker process on this test run's queue, against the test database."""
    from django.conf import settings

    log_dir = ROOT / "var" / "test-workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    env = _child_env({"DJANGO_DEBUG": "true", **(extra_env or {})})
    cmd = [
        sys.executable, "-m", "celery", "-A", "planqk_portal", "worker", "-l", "info",
        "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", str(concurrency),
        "-n", f"test-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    worker = WorkerProcess(proc=proc, log_path=log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited early:\n{worker.log()}")
        if " ready." in worker.log():
            return worker
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"the Celery worker did not become ready:\n{worker.log()}")


@dataclass
class ServerProcess(WorkerProcess):
    """A started production server: a process group with a log, like a worker, plus its URL."""

    url: str = ""


_static_collected: list[bool] = []


def _collect_static(env: dict[str, str]) -> None:
    """DEBUG off serves the collected, hashed static files (as `make run` does): collect them once."""
    if not _static_collected:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=ROOT, env=env, check=True, timeout=300,
        )  # fmt: skip
        _static_collected.append(True)


def start_production_server(extra_env: dict[str, str] | None = None) -> ServerProcess:
    """The portal under its production server (``python -m planqk_portal.server``: granian) with
    ``DJANGO_DEBUG=false``, against the test database, on this run's queue unless ``extra_env``
    says otherwise. Call with database access allowed."""
    import socket

    from django.conf import settings

    from planqk_portal.server import server_command

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Encrypted fields (provider tokens, an execution's $secrets) must read the same here as in
    # the worker, as in one install: this run's key, not one derived from the server's own signing key.
    field_key = settings.PLANQK_FIELD_ENCRYPTION_KEY
    env = _child_env(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "test-only-" + uuid.uuid4().hex * 2,
            **({"PLANQK_FIELD_ENCRYPTION_KEY": field_key} if field_key else {}),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            **(extra_env or {}),
        }
    )
    _collect_static(env)
    log_dir = ROOT / "var" / "test-workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{uuid.uuid4().hex[:8]}.log"
    command = server_command(host="127.0.0.1", port=port, workers=1, threads=4)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ServerProcess(proc=proc, log_path=log_path, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the production server did not start:\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if b" 200 " in sock.recv(200):
                    return server
        except OSError:
            pass
        time.sleep(0.2)


@pytest.fixture(scope="session")
def production_server(django_db_setup, django_db_blocker) -> Iterator[ServerProcess]:
    """One production server for the session (see ``start_production_server``); like
    ``live_server`` it has ``.url``. Tests using it need ``transactional_db``, as the rows must be
    visible to another process, and must leave no execution for a worker to pick up after them:
    a worker reading while the test's tables are truncated deadlocks the flush."""
    with django_db_blocker.unblock():
        server = start_production_server()
    yield server
    server.stop()


@pytest.fixture(params=["live_server", "production_server"])
def portal(request: pytest.FixtureRequest) -> object:
    """Django's test server, then the production server: the same test runs against both."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    """One real worker for the session; tests using it need ``transactional_db`` or ``live_server``."""
    with django_db_blocker.unblock():
        worker = start_worker(concurrency=2)
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker_factory(django_db_blocker) -> Iterator[Callable[..., WorkerProcess]]:
    """Start extra workers inside a test (e.g. one to kill); they are stopped afterwards."""
    started: list[WorkerProcess] = []

    def factory(**kwargs: object) -> WorkerProcess:
        with django_db_blocker.unblock():
            worker = start_worker(**kwargs)
        started.append(worker)
        return worker

    yield factory
    for worker in started:
        worker.stop()


def docker_available() -> bool:
    """True when a Docker engine answers."""
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


BASE_IMAGE = os.environ.get("PLANQK_BASE_IMAGE") or "planqk/python-base:3.11"


@pytest.fixture(scope="session")
def base_image() -> str:
    """The base image of service images, built once by scripts/build-base-image.sh (debootstrap,
    no registry; the script returns at once when the image exists). Any test on the Docker
    runtime needs it: a clean machine has no images at all."""
    if not docker_available():
        pytest.skip("no Docker engine answers (start one with ../shared/ci/start-docker.sh)")
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-base-image.sh"), BASE_IMAGE],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return BASE_IMAGE


def pytest_collection_modifyitems(config, items) -> None:
    if any(item.get_closest_marker("docker") for item in items) and not docker_available():
        skip = pytest.mark.skip(reason="no Docker engine answers (start one with ../shared/ci/start-docker.sh)")
        for item in items:
            if item.get_closest_marker("docker"):
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _the_runs_queue_after_each_test() -> Iterator[None]:
    """Each test ends with the run's queue family as it found it.

    Tests that give themselves a queue family of their own (tests/hosts) must give it back: once a
    test left its family set, every later test sent its jobs to a queue no worker read, and a full
    CI run timed out test after test. A leak is put right here, so the rest of the run is not
    hurt, and the test that leaked fails, naming the queue it left."""
    from django.conf import settings

    from planqk_portal.celery import app

    before = (settings.CELERY_TASK_DEFAULT_QUEUE, app.conf.task_default_queue)
    yield
    after = (settings.CELERY_TASK_DEFAULT_QUEUE, app.conf.task_default_queue)
    if after != before:
        settings.CELERY_TASK_DEFAULT_QUEUE, app.conf.task_default_queue = before
        pytest.fail(f"the test left the default queue at {after}, not the run's {before}")


@pytest.fixture(autouse=True)
def _no_execution_left_at_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transactional test ends with none of its jobs pending or running.

    Its jobs go to the test run's queue, which the session's ``celery_worker`` (started by an
    earlier test) also reads: a job that worker runs while the flush truncates the tables
    deadlocks the two (seen in a full CI run after a curl-example test). So every job left
    active is cancelled and the test waits, bounded, until all are final, before the flush.
    """
    if not {"transactional_db", "live_server"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so its flush runs after this
    yield
    from jobs.models import Job

    active = list(Job.objects.active().values_list("pk", flat=True))
    if not active:
        return
    for job_id in active:
        Job.objects.request_cancel(job_id)
    deadline = time.monotonic() + 60
    while Job.objects.active().exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # the worker's last writes and its cleanup of the execution
