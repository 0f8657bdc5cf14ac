"""requirements.txt is read as pip reads it, and only plain named requirements pass.

The attacks of issue 16: a form feed (or any other character ``str.splitlines()`` breaks at)
hides installer options and a local archive behind a comment; ``numpy\\f-r /etc/shadow``. Each
is refused at upload with a 400 naming the line. A property test generates files with every
line separator, continuations and comment tricks and checks that whatever the platform accepts
is exactly what pip's own parser would install from the same bytes.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from runtimes.requirements import RequirementsError, canonical_requirements, canonical_text
from services import uploads

from .helpers import make_zip, upload

SEPARATORS = ["\n", "\r\n", "\r", "\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
NON_NEWLINE_SEPARATORS = [s for s in SEPARATORS if s not in ("\n", "\r\n")]


def attack_file(sep: str) -> bytes:
    """Version 2's requirements.txt from the issue: one line to the eye, four to pip."""
    parts = ["# pinned versions", "--no-index", "--find-links /srv/var/media/service-archives", "/srv/v1.zip"]
    return sep.join(parts).encode()


@pytest.mark.parametrize("sep", NON_NEWLINE_SEPARATORS, ids=[repr(s) for s in NON_NEWLINE_SEPARATORS])
def test_options_hidden_behind_a_comment_by_a_line_separator_are_refused(sep):
    with pytest.raises(uploads.ApplicationError) as caught:
        uploads.check_requirements(attack_file(sep))
    assert caught.value.code == "upload:bad-requirements"
    assert "line 2" in caught.value.message
    assert "--no-index" in caught.value.message
    assert "line separators" in caught.value.message


@pytest.mark.parametrize("sep", NON_NEWLINE_SEPARATORS, ids=[repr(s) for s in NON_NEWLINE_SEPARATORS])
def test_an_include_after_a_package_is_refused(sep):
    with pytest.raises(uploads.ApplicationError) as caught:
        uploads.check_requirements(f"numpy{sep}-r /etc/shadow".encode())
    assert "line 2" in caught.value.message
    assert "'-r'" in caught.value.message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("numpy\n-e /etc\n", "options"),
        ("--index-url http://127.0.0.1:1/simple\nsix\n", "options"),
        ("six --hash=sha256:00\n", "options"),
        ("six -r /etc/shadow\n", "options"),
        ("x @ http://127.0.0.1:18081/x.tar.gz\n", "URL"),
        ("git+https://127.0.0.1/repo.git#egg=x\n", "URL"),
        ("./local-folder\n", "paths"),
        ("/srv/v1.zip\n", "paths"),
        ("evil.zip\n", "archive"),
        ("six; os_name == 'x -r /etc/shadow'\n", "options"),
        ("six; os_name == 'a b'\n", "marker value"),
        ("six${HOME}\n", "environment variables"),
        ("six \\\n--no-index\n", "options"),
        ("# -*- coding: latin-1 -*-\nsix\n", "encoding"),
        ("six\\\n-r /etc/shadow\n", "paths"),
    ],
)
def test_anything_but_plain_requirements_is_refused_naming_the_line(text, why):
    with pytest.raises(uploads.ApplicationError) as caught:
        uploads.check_requirements(text.encode())
    assert why in caught.value.message
    assert "line" in caught.value.message


def test_plain_requirements_become_one_canonical_line_each():
    text = b"\xef\xbb\xbf# a comment\nqiskit>=1.2,<3  # inline comment\n\nqiskit-aer \\\n  >=0.15,<1\r\n"
    text += b"numpy[extra]==1.26.4; python_version >= '3.8' and sys_platform == \"linux\"\n"
    assert uploads.check_requirements(text) == (
        "qiskit<3,>=1.2\nqiskit-aer<1,>=0.15\n"
        'numpy[extra]==1.26.4; python_version >= "3.8" and sys_platform == "linux"\n'
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
@pytest.mark.parametrize("sep", NON_NEWLINE_SEPARATORS, ids=[repr(s) for s in NON_NEWLINE_SEPARATORS])
def test_the_attack_is_a_400_at_upload(api_client, sep):
    for requirements, shown in ((attack_file(sep), "--no-index"), (f"numpy{sep}-r /etc/shadow".encode(), "-r")):
        data = make_zip({"requirements.txt": requirements})
        response = api_client.post("/api/v1/services/", {"name": "evil", "file": upload(data)}, format="multipart")
        assert response.status_code == 400, response.json()
        body = response.json()
        assert body["code"] == "upload:bad-requirements"
        assert "line 2" in body["detail"]
        assert shown in body["detail"]


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_the_stored_requirements_are_the_canonical_list(api_client):
    data = make_zip({"requirements.txt": "six==1.16.0 # pinned\u2028# a comment after a separator\n".encode()})
    response = api_client.post("/api/v1/services/", {"name": "ok", "file": upload(data)}, format="multipart")
    assert response.status_code == 201, response.json()
    from services.models import ServiceVersion

    assert ServiceVersion.objects.get(service_id=response.json()["id"]).requirements == "six==1.16.0\n"


# --- the checker and pip agree ------------------------------------------------------------------

NAMES = ["six", "numpy", "qiskit-aer", "evil.zip", "a_b.c", "x"]
PIECES = [
    "six",
    "numpy==1.26.4",
    "qiskit-aer>=0.15,<1",
    "x[extra]",
    "six ; python_version >= '3'",
    "six; os_name == 'a -r /etc/shadow'",
    "numpy\\",
    "\\",
    "--no-index",
    "-r /etc/shadow",
    "-c c.txt",
    "--find-links /srv",
    "-e .",
    "/srv/v1.zip",
    "./pkg",
    "evil.zip",
    "x @ http://127.0.0.1:1/x.tar.gz",
    "git+https://127.0.0.1/r.git",
    "#",
    "# comment",
    " # comment",
    "six #comment",
    "six# not a comment",
    "${HOME}",
    "six --hash=sha256:00",
    "",
    " ",
    "\t",
]


def pip_view(raw: bytes) -> list[tuple[str, bool, dict]] | str:
    """What pip's own parser makes of the bytes: (requirement, is_editable, options) per entry."""
    from pip._internal.exceptions import InstallationError, RequirementsFileParseError
    from pip._internal.network.session import PipSession
    from pip._internal.req.constructors import install_req_from_parsed_requirement
    from pip._internal.req.req_file import parse_requirements

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "requirements.txt")
        with open(path, "wb") as fh:
            fh.write(raw)
        try:
            entries = []
            for parsed in parse_requirements(path, session=PipSession(), constraint=False):
                req = install_req_from_parsed_requirement(parsed)
                text = str(req.req) if req.req else ""
                if req.req and req.markers is not None:
                    text = f"{req.req.name}{''.join(f'[{e}]' for e in [','.join(sorted(req.req.extras))] if e)}"
                    text += f"{req.req.specifier}; {req.markers}"
                entries.append((text, req.link is not None or parsed.is_editable, parsed))
            return entries
        except (InstallationError, RequirementsFileParseError, SystemExit, Exception) as exc:
            return f"pip refuses: {type(exc).__name__}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), min_size=1, max_size=6))
def test_what_the_checker_accepts_is_exactly_what_pip_installs(parts):
    raw = "".join(piece + sep for piece, sep in parts).encode()
    try:
        accepted = canonical_requirements(raw)
    except RequirementsError:
        return  # refusing is always safe
    pip = pip_view(raw)
    assert isinstance(pip, list), (raw, pip)
    assert [Requirement(r) for r, _, _ in pip] == [Requirement(r) for r in accepted], raw
    for _req, has_link, parsed in pip:
        assert not has_link, raw  # no path, URL or editable
        assert not parsed.options, raw  # no per-requirement options
    # The file the installer gets reads back the same, in pip and here.
    canonical = canonical_text(accepted).encode()
    assert [r for r, _, _ in pip_view(canonical)] == accepted
    assert canonical_requirements(canonical) == accepted


TRICKY = list("six=1.0 #-r\\/@;'\"[]<>") + NON_NEWLINE_SEPARATORS + ["\n"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(TRICKY), max_size=40))
def test_arbitrary_text_of_tricky_characters_never_makes_the_checker_and_pip_disagree(text):
    raw = text.encode()
    try:
        accepted = canonical_requirements(raw)
    except RequirementsError:
        return
    pip = pip_view(raw)
    assert isinstance(pip, list), (raw, pip)
    assert [Requirement(r) for r, _, _ in pip] == [Requirement(r) for r in accepted], raw
    assert all(not has_link and not parsed.options for _, has_link, parsed in pip), raw
