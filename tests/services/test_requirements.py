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


# --- an operator's allow-list of indexes (PLANQK_ALLOWED_INDEX_URLS) -----------------------------

ALLOWED = ("https://pypi.example.org/simple/", "https://extra.example.org/wheels/")
INDEX = ALLOWED[0]


@pytest.mark.parametrize(
    ("line", "canonical"),
    [
        (f"--index-url {INDEX}", f"--index-url {INDEX}"),
        (f"--index-url={INDEX}", f"--index-url {INDEX}"),
        (f"-i {INDEX}", f"--index-url {INDEX}"),
        (f"--extra-index-url {ALLOWED[1]}", f"--extra-index-url {ALLOWED[1]}"),
        (f"--extra-index-url={ALLOWED[1]}  # our mirror", f"--extra-index-url {ALLOWED[1]}"),
    ],
)
def test_an_allowed_index_is_accepted_in_its_canonical_spelling(line, canonical):
    assert canonical_requirements(f"{line}\nsix==1.16.0\n", allowed_index_urls=ALLOWED) == [canonical, "six==1.16.0"]


HOSTILE_INDEX_LINES = [
    f"--index-url {INDEX}x/",  # extra path
    "--index-url https://pypi.example.org/simple/../../evil/",
    "--index-url https://pypi.example.org/simple",  # not exactly the allowed URL
    "--index-url https://user:secret@pypi.example.org/simple/",  # userinfo
    "--index-url https://pypi.example.org@127.0.0.1/simple/",
    "--index-url HTTPS://pypi.example.org/simple/",  # other case
    "--index-url https://PYPI.example.org/simple/",
    f"--index-url '{INDEX}'",  # quoted: shlex would strip it, the check does not
    f"--index-url  {INDEX}",  # two spaces
    f"--index-url\t{INDEX}",
    f"--index-url {INDEX} --no-index",
    f"--index-url {INDEX} --find-links /srv",
    f"--index-url {INDEX} six",
    f"six --index-url {INDEX}",
    f"-i={INDEX}",
    f"-i{INDEX}",
    f"--index {INDEX}",  # optparse would take the abbreviation; the check does not
    f"--find-links {INDEX}",
    f"--trusted-host {INDEX}",
    f"-r {INDEX}",
    f"--extra-index-url {INDEX}?${{HOME}}",
    "--index-url",
]


@pytest.mark.parametrize("line", HOSTILE_INDEX_LINES)
def test_anything_but_exactly_an_allowed_index_is_refused(line):
    with pytest.raises(RequirementsError) as caught:
        canonical_requirements(f"six\n{line}\n", allowed_index_urls=ALLOWED)
    assert caught.value.line == 2


@pytest.mark.parametrize("sep", NON_NEWLINE_SEPARATORS, ids=[repr(s) for s in NON_NEWLINE_SEPARATORS])
def test_line_separators_cannot_smuggle_an_index_or_an_option(sep):
    for text in (
        f"--index-url{sep}{INDEX}",  # the option alone on a line, the URL a "requirement"
        f"--index-url {INDEX}{sep}--find-links /srv",
        f"# --index-url https://evil.example/{sep}--index-url https://evil.example/",
        f"--index-url {INDEX}\\{sep}../evil/",
    ):
        with pytest.raises(RequirementsError):
            canonical_requirements(text, allowed_index_urls=ALLOWED)
    # A continuation joins the URL to the option exactly as pip joins it: then it is the allowed one.
    assert canonical_requirements(f"--index-url \\\n{INDEX}\n", allowed_index_urls=ALLOWED) == [f"--index-url {INDEX}"]


def test_without_an_allow_list_or_with_two_primary_indexes_index_lines_are_refused():
    with pytest.raises(RequirementsError, match="installer options"):
        canonical_requirements(f"--index-url {INDEX}\nsix\n")
    with pytest.raises(RequirementsError, match="second --index-url"):
        canonical_requirements(f"-i {INDEX}\n--index-url {ALLOWED[1]}\n", allowed_index_urls=ALLOWED)


def test_the_allow_list_setting_refuses_what_is_not_an_index_url():
    from runtimes.requirements import parse_allowed_index_urls

    assert parse_allowed_index_urls(f" {INDEX} ,{ALLOWED[1]},") == ALLOWED
    for bad in ("pypi.example.org/simple/", "ftp://x/simple/", "https://x/simple/ #c", "https://x/$HOME/", "https://x"):
        with pytest.raises(ValueError):
            parse_allowed_index_urls(bad)


def pip_indexes(raw: bytes) -> tuple[list[str], str, list[str]] | str:
    """pip's own reading of the file: its requirements, the --index-url and the --extra-index-urls."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import RequirementsFileParser, build_parser, get_line_parser

    defaults = vars(build_parser().parse_args([])[0])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "requirements.txt")
        with open(path, "wb") as fh:
            fh.write(raw)
        requirements, index, extra = [], "", []
        try:
            for parsed in RequirementsFileParser(PipSession(), get_line_parser(None)).parse(path, constraint=False):
                if parsed.requirement:
                    requirements.append(parsed.requirement)
                    continue
                index = parsed.opts.index_url or index
                extra += parsed.opts.extra_index_urls or []
                others = {
                    k: v
                    for k, v in vars(parsed.opts).items()
                    if v != defaults.get(k) and k not in ("index_url", "extra_index_urls")
                }
                if others:
                    return f"pip sees other options: {others}"
        except (SystemExit, Exception) as exc:
            return f"pip refuses: {type(exc).__name__}"
        return requirements, index, extra


INDEX_PIECES = [
    *PIECES,
    f"--index-url {INDEX}",
    f"-i {INDEX}",
    f"--index-url={INDEX}",
    f"--extra-index-url {ALLOWED[1]}",
    f"--extra-index-url={ALLOWED[1]}",
    "--index-url https://evil.example/simple/",
    f"--index-url {INDEX}evil/",
    f"--index-url {INDEX} --no-index",
    "--index-url \\",
    INDEX,
    "--extra-index-url",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(INDEX_PIECES), st.sampled_from(SEPARATORS)), min_size=1, max_size=6))
def test_with_an_allow_list_the_checker_and_pip_agree_on_packages_and_indexes(parts):
    from runtimes.requirements import split_indexes

    raw = "".join(piece + sep for piece, sep in parts).encode()
    try:
        accepted = split_indexes(canonical_requirements(raw, allowed_index_urls=ALLOWED))
    except RequirementsError:
        return  # refusing is always safe
    pip = pip_indexes(raw)
    assert not isinstance(pip, str), (raw, pip)
    requirements, index, extra = pip
    assert [Requirement(r) for r in requirements] == [Requirement(r) for r in accepted.requirements], raw
    assert index == accepted.index_url, raw
    assert list(dict.fromkeys(extra)) == list(accepted.extra_index_urls), raw
    assert set(extra) | ({index} - {""}) <= set(ALLOWED), raw


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_the_upload_takes_an_allowed_index_and_refuses_another(api_client, settings):
    settings.PLANQK_ALLOWED_INDEX_URLS = ALLOWED
    data = make_zip({"requirements.txt": f"--index-url={INDEX}\nsix==1.16.0\n".encode()})
    response = api_client.post("/api/v1/services/", {"name": "mirror", "file": upload(data)}, format="multipart")
    assert response.status_code == 201, response.json()
    from services.models import ServiceVersion

    stored = ServiceVersion.objects.get(service_id=response.json()["id"]).requirements
    assert stored == f"--index-url {INDEX}\nsix==1.16.0\n"
    data = make_zip({"requirements.txt": b"six\n--index-url https://user@pypi.example.org/simple/\n"})
    response = api_client.post("/api/v1/services/", {"name": "other", "file": upload(data)}, format="multipart")
    assert response.status_code == 400
    assert "line 2" in response.json()["detail"]
    assert "not one of the package indexes this platform allows" in response.json()["detail"]
