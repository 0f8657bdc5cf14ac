"""Fetch user code from a git repository over http(s), with the outbound rules of URL-imported services.

The URL is checked by :func:`runtimes.external.check_url` (no userinfo, no backslashes, only
public addresses unless the operator allows private ones) and git connects only to the
addresses that check resolved (``http.curloptResolve`` pins them, so a second DNS answer
cannot differ). Only the http and https transports are allowed (``protocol.allow=never`` plus
``GIT_ALLOW_PROTOCOL``: no ``file://``, ``ext::``, ssh or git://), no redirects, no proxies, no
submodules, no hooks, no system or global configuration, symlinks checked out as plain files.
The clone runs under a wall-clock timeout and is stopped as soon as it grows past a size cap.
The working tree (without ``.git``) becomes a zip that then goes through the same upload checks
as a service archive (:func:`services.uploads.inspect_archive`).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from runtimes.external import ForwardError, check_url

REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_POLL_SECONDS = 0.2


class GitFetchError(Exception):
    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class FetchedCode:
    archive: bytes
    commit: str


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _git_env(home: Path) -> dict[str, str]:
    # Nothing of the worker's environment reaches git: no proxies, no credentials, no config.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": "http:https",
        "GIT_PROTOCOL_FROM_USER": "0",
    }


def _zip_tree(root: Path, *, max_bytes: int) -> bytes:
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != ".git" and not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(files):
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                total += path.stat().st_size
                if total > max_bytes:
                    raise GitFetchError(
                        f"The repository's files are larger than {max_bytes // (1024 * 1024)} MB.",
                        code="git:too-large",
                    )
                zf.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def fetch_repository(url: str, *, ref: str = "", allow_private: bool, timeout: float, max_bytes: int) -> FetchedCode:
    """Clone ``url`` (at branch or tag ``ref``) and return its files as a zip and the commit id."""
    ref = (ref or "").strip()
    if ref and not REF_RE.match(ref):
        raise GitFetchError(f"{ref!r} is not a branch or tag name.", code="git:bad-ref")
    try:
        target = check_url(url, allow_private=allow_private)
    except ForwardError as exc:
        code = exc.code.replace("upstream:", "git:")
        raise GitFetchError(exc.detail.replace("service's", "repository's"), code=code) from None
    addresses = ",".join(f"[{a}]" if ":" in a else a for a in target.addresses)
    workdir = Path(tempfile.mkdtemp(prefix="planqk-git-"))
    dest = workdir / "repo"
    try:
        cmd = [
            "git",
            "-c", "protocol.allow=never",
            "-c", "protocol.http.allow=always",
            "-c", "protocol.https.allow=always",
            "-c", f"http.curloptResolve={target.host}:{target.port}:{addresses}",
            "-c", "http.followRedirects=false",
            "-c", "http.proxy=",
            "-c", "core.symlinks=false",
            "-c", "core.hooksPath=/dev/null",
            "-c", "transfer.fsckObjects=true",
            "-c", "submodule.recurse=false",
            "clone", "--quiet", "--no-tags", "--single-branch", "--no-recurse-submodules",
            *(["--branch", ref] if ref else []),
            "--", url, str(dest),
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=_git_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise GitFetchError(
                        f"Fetching the repository took longer than {int(timeout)} s.", code="git:timeout"
                    )
                if dest.exists() and _tree_size(dest) > 2 * max_bytes:
                    raise GitFetchError(
                        f"The repository is larger than {max_bytes // (1024 * 1024)} MB.", code="git:too-large"
                    )
                time.sleep(_POLL_SECONDS)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
        stderr = (proc.stderr.read() if proc.stderr else b"").decode("utf-8", "replace")
        if proc.returncode != 0:
            lines = [line for line in stderr.splitlines() if line.strip()]
            detail = lines[-1][:300] if lines else f"git exited with {proc.returncode}"
            raise GitFetchError(f"The repository could not be fetched: {detail}", code="git:fetch-failed")
        commit = subprocess.run(
            ["git", "-C", str(dest), "rev-parse", "HEAD"],
            env=_git_env(workdir),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        return FetchedCode(archive=_zip_tree(dest, max_bytes=max_bytes), commit=commit)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
