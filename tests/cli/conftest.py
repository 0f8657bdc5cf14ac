"""Running `planqk` as a user does: a subprocess with its own HOME, in a folder of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The CLI reads these; a test sets exactly the ones it is about.
_CLI_VARIABLES = ("PLANQK_ENDPOINT", "XDG_CONFIG_HOME", "PLANQK_DEBUG", "NO_COLOR")


@dataclass
class Result:
    """One finished `planqk` command."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> object:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        command = " ".join(self.args)
        return f"planqk {command} -> {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Cli:
    """`planqk` for one test: a private HOME and a working folder, the portal from `endpoint`."""

    home: Path
    cwd: Path
    endpoint: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _CLI_VARIABLES}
        env["HOME"] = str(self.home)
        # The CLI runs from the source tree, as the installed console script would run it.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        if self.endpoint:
            env["PLANQK_ENDPOINT"] = self.endpoint
        env.update(self.extra_env)
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def __call__(
        self, *args: str, cwd: Path | None = None, input: str | None = None, timeout: float = 300, **env: str | None
    ) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "planqk_cli", *args],
            cwd=cwd or self.cwd,
            env=self.env(**env),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = Result(list(args), completed.returncode, completed.stdout, completed.stderr)
        assert "Traceback" not in result.stderr, str(result)
        return result

    def popen(self, *args: str, cwd: Path | None = None, **env: str | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "planqk_cli", *args],
            cwd=cwd or self.cwd,
            env=self.env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def config_file(self) -> Path:
        return self.home / ".config" / "planqk" / "config.json"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return Cli(home=home, cwd=work)


def closed_port() -> int:
    """A local port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A running `planqk serve` and its address."""

    process: subprocess.Popen[str]
    url: str

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user stops it; (exit code, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr


def start_serve(cli: Cli, folder: Path, *args: str, **env: str | None) -> Served:
    """`planqk serve -p 0` in `folder`, once it has printed its address."""
    process = cli.popen("serve", "-p", "0", *args, cwd=folder, **env)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"at (http://\S+?)/?$", line.strip())
    if match is None:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"planqk serve did not start: {line!r}\n{stderr}")
    return Served(process=process, url=match.group(1))


@pytest.fixture
def template(cli: Cli) -> Path:
    """A fresh user code template made by `planqk init`."""
    result = cli("init", "sum-service")
    assert result.returncode == 0, str(result)
    return cli.cwd / "sum-service"


@pytest.fixture
def served(cli: Cli, template: Path) -> Iterator[Served]:
    server = start_serve(cli, template)
    yield server
    server.stop()


def wait_until(condition, *, timeout: float = 120, interval: float = 0.1, message: str = "condition"):
    """Poll `condition` until it returns something truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def user(user):
    """`planqk up` creates services, which needs a valid card (payments): Stripe's 4242 test card."""
    from payments.testing import add_test_card

    add_test_card(user)
    return user
