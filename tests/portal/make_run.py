"""A portal started exactly as `make run` starts it: its own data directory, SQLite, filesystem
broker, no production variables, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# Variables the embedded default must not see (they would point it at the test run's services).
_PRODUCTION = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "PLANQK_QUEUE")


@dataclass
class MakeRunPortal:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    url: str
    env: dict[str, str]

    @property
    def log_path(self) -> Path:
        return self.data_dir / "make-run.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def manage(self, *args: str, code: str | None = None) -> str:
        """``manage.py`` against this portal's database (``code``: run with ``shell -c``)."""
        command = [sys.executable, "manage.py", *(args or ("shell", "-v", "0", "-c", code or ""))]
        done = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_make_run(extra_env: dict[str, str] | None = None) -> MakeRunPortal:
    data_dir = Path(tempfile.mkdtemp(prefix="planqk-make-run-"))
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in _PRODUCTION}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update({"PLANQK_DATA_DIR": str(data_dir), "PLANQK_PORT": str(port), **(extra_env or {})})
    # What the make-run children see (scripts/run.py adds these), for manage.py calls of the tests.
    manage_env = {**env, "PLANQK_WEB_HOST": "127.0.0.1", "DJANGO_SECURE_SSL_REDIRECT": "false"}
    out = open(data_dir / "make-run.log", "wb")  # noqa: SIM115 - the child writes it for its whole life
    proc = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    portal = MakeRunPortal(proc=proc, data_dir=data_dir, url=f"http://127.0.0.1:{port}", env=manage_env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"make run exited:\n{portal.log()}")
        try:
            if requests.get(f"{portal.url}/healthz", timeout=2).status_code == 200:
                return portal
        except requests.RequestException:
            pass
        time.sleep(0.5)
    portal.stop()
    raise RuntimeError(f"make run did not answer:\n{portal.log()}")
