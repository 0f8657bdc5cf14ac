"""Git import: a repository this test makes on disk, served over dumb HTTP on loopback.

The fetch uses the outbound rules of URL-imported services (check_url, pinned addresses,
private addresses only when the operator allows them), only the http(s) transports, no
redirects, no submodules, symlinks as plain files, a size cap and a timeout; what it fetched is
checked like any upload.
"""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest

from algorithms.git import GitFetchError, fetch_repository
from planqk_template import template_files

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def make_repository(
    root: Path, files: dict[str, bytes], *, name: str = "code.git", symlinks=None, branch=None
) -> tuple[Path, str]:
    """A bare repository under ``root/name`` (ready for dumb HTTP) with one commit of ``files``."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=work)
    for path, content in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    for link, target in (symlinks or {}).items():
        (work / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, work / link)
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "code", cwd=work)
    if branch:
        _git("checkout", "-q", "-b", branch, cwd=work)
        (work / "BRANCH").write_text(branch)
        _git("add", "-A", cwd=work)
        _git("commit", "-q", "-m", "branch", cwd=work)
        _git("checkout", "-q", "main", cwd=work)
    commit = _git("rev-parse", "HEAD", cwd=work).strip()
    bare = root / name
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    _git("update-server-info", cwd=bare)
    return bare, commit


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server of ``tmp_path/www`` (dumb git); yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = lambda *a, **kw: _Quiet(*a, directory=str(www), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _sum_files() -> dict[str, bytes]:
    return dict(template_files().items())


def _names(archive: bytes) -> set[str]:
    return set(zipfile.ZipFile(io.BytesIO(archive)).namelist())


def test_fetches_the_working_tree_without_git_metadata(served):
    www, base = served
    _bare, commit = make_repository(www, _sum_files())
    fetched = fetch_repository(f"{base}/code.git", allow_private=True, timeout=60, max_bytes=10 * 1024 * 1024)
    assert fetched.commit == commit
    names = _names(fetched.archive)
    assert "src/program.py" in names
    assert "requirements.txt" in names
    assert not any(name.startswith(".git/") for name in names)


def test_a_branch_is_fetched_by_name(served):
    www, base = served
    make_repository(www, _sum_files(), branch="feature")
    fetched = fetch_repository(f"{base}/code.git", ref="feature", allow_private=True, timeout=60, max_bytes=10**7)
    assert "BRANCH" in _names(fetched.archive)


def test_loopback_is_refused_unless_the_operator_allows_private_addresses(served):
    www, base = served
    make_repository(www, _sum_files())
    with pytest.raises(GitFetchError) as refused:
        fetch_repository(f"{base}/code.git", allow_private=False, timeout=60, max_bytes=10**7)
    assert refused.value.code == "git:private-address"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "ext::sh -c touch% /tmp/planqk-git-pwned",
        "ssh://example.org/x.git",
        "git://127.0.0.1/x.git",
        "http://user:secret@127.0.0.1/x.git",
        "http://127.0.0.1\\@example.org/x.git",
        "-uhttp://127.0.0.1/x.git",
    ],
)
def test_other_transports_and_ambiguous_urls_are_refused(url):
    with pytest.raises(GitFetchError) as refused:
        fetch_repository(url, allow_private=True, timeout=10, max_bytes=10**7)
    assert refused.value.code.startswith("git:")
    assert not Path("/tmp/planqk-git-pwned").exists()


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/x", "-b", "a b", "x;y"])
def test_refs_that_look_like_options_are_refused(ref):
    with pytest.raises(GitFetchError) as refused:
        fetch_repository("http://127.0.0.1:1/x.git", ref=ref, allow_private=True, timeout=10, max_bytes=10**7)
    assert refused.value.code == "git:bad-ref"


def test_symlinks_arrive_as_plain_files_and_submodules_are_not_fetched(served):
    www, base = served
    files = {**_sum_files(), ".gitmodules": b'[submodule "x"]\n\tpath = vendor\n\turl = file:///etc\n'}
    make_repository(www, files, symlinks={"src/passwd.py": "/etc/passwd"})
    fetched = fetch_repository(f"{base}/code.git", allow_private=True, timeout=60, max_bytes=10**7)
    zf = zipfile.ZipFile(io.BytesIO(fetched.archive))
    assert zf.read("src/passwd.py") == b"/etc/passwd"  # the link's text, not the file it points to
    assert all((info.external_attr >> 16) & 0o170000 != 0o120000 for info in zf.infolist())
    assert not any(name.startswith("vendor/") for name in zf.namelist())


def test_a_redirect_is_not_followed(tmp_path):
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(GitFetchError) as refused:
            fetch_repository(
                f"http://127.0.0.1:{server.server_address[1]}/code.git", allow_private=True, timeout=30, max_bytes=10**7
            )
        assert refused.value.code == "git:fetch-failed"
    finally:
        server.shutdown()
        server.server_close()


def test_a_repository_over_the_size_cap_is_refused(served):
    www, base = served
    make_repository(www, {**_sum_files(), "data.bin": os.urandom(300_000)})
    with pytest.raises(GitFetchError) as refused:
        fetch_repository(f"{base}/code.git", allow_private=True, timeout=60, max_bytes=100_000)
    assert refused.value.code == "git:too-large"


def test_a_server_that_never_answers_times_out(tmp_path):
    class Hang(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(30)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(GitFetchError) as refused:
            fetch_repository(
                f"http://127.0.0.1:{server.server_address[1]}/code.git", allow_private=True, timeout=2, max_bytes=10**7
            )
        assert refused.value.code == "git:timeout"
    finally:
        server.shutdown()
        server.server_close()


# --- the import as a version of an implementation -----------------------------------------------


@pytest.mark.django_db
def test_import_becomes_a_new_version_checked_like_an_upload(served, settings, media):
    from algorithms import services
    from tests.algorithms.conftest import make_algorithm
    from tests.conftest import make_user

    settings.PLANQK_EXTERNAL_ALLOW_PRIVATE = True
    www, base = served
    _bare, commit = make_repository(www, _sum_files())
    make_repository(www, {"src/main.py": b"print(1)\n"}, name="broken.git")
    owner = make_user("owner@example.com")
    implementation = services.implementation_create(algorithm=make_algorithm(owner), owner=owner, name="from git")

    row = services.implementation_git_import(implementation=implementation, user=owner, url=f"{base}/code.git")
    assert row.status == "PENDING"
    assert row.version == 1
    row = services.implementation_git_fetch(file_id=row.pk)
    assert (row.status, row.git_commit, row.error) == ("READY", commit, "")
    assert row.is_runnable
    assert row.sha256

    broken = services.implementation_git_import(implementation=implementation, user=owner, url=f"{base}/broken.git")
    broken = services.implementation_git_fetch(file_id=broken.pk)
    assert (broken.status, broken.error_code, broken.version) == ("FAILED", "upload:no-program", 2)
    # a second delivery of the task does nothing
    assert services.implementation_git_fetch(file_id=broken.pk).status == "FAILED"


@pytest.mark.django_db
def test_import_of_a_private_address_fails_by_default(served, media):
    from algorithms import services
    from tests.algorithms.conftest import make_algorithm
    from tests.conftest import make_user

    www, base = served
    make_repository(www, _sum_files())
    owner = make_user("owner@example.com")
    implementation = services.implementation_create(algorithm=make_algorithm(owner), owner=owner, name="from git")
    row = services.implementation_git_import(implementation=implementation, user=owner, url=f"{base}/code.git")
    row = services.implementation_git_fetch(file_id=row.pk)
    assert (row.status, row.error_code) == ("FAILED", "git:private-address")
