"""Upload checks: every hostile archive is refused with its reason, nothing lands outside a fresh folder."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from planqk_portal.errors import ApplicationError
from planqk_samples import SAMPLES, sample_zip
from services import uploads
from services.models import Service

from .helpers import PROGRAM, make_zip, upload

pytestmark = pytest.mark.django_db


def _link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _fifo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    return info


def _patch_central(
    data: bytes, name: str, *, offset: int, fmt: str, value: int, local_offset: int | None = None
) -> bytes:
    """Overwrite a field of ``name``'s central directory record (and its local header) after writing."""
    raw = bytearray(data)
    encoded = name.encode()
    central = raw.find(b"PK\x01\x02" + b"", 0)
    while central != -1:
        name_len = struct.unpack_from("<H", raw, central + 28)[0]
        if raw[central + 46 : central + 46 + name_len] == encoded:
            struct.pack_into(fmt, raw, central + offset, value)
            if local_offset is not None:
                header = struct.unpack_from("<I", raw, central + 42)[0]
                struct.pack_into(fmt, raw, header + local_offset, value)
            return bytes(raw)
        central = raw.find(b"PK\x01\x02", central + 4)
    raise AssertionError(f"{name} not in the archive")


def _encrypted() -> bytes:
    data = make_zip({"src/secret.py": b"x = 1\n"})
    # General purpose flag bit 0 (encrypted): offset 8 in the central record, 6 in the local header.
    return _patch_central(data, "src/secret.py", offset=8, fmt="<H", value=0x1, local_offset=6)


def _bomb() -> bytes:
    # 64 MB of zeros deflate to about 64 KB: a thousandfold expansion, below the total size limit.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("src/program.py", PROGRAM)
        archive.writestr("requirements.txt", b"")
        with archive.open("src/zeros.bin", "w") as out:
            block = b"\0" * (1024 * 1024)
            for _ in range(64):
                out.write(block)
    return buffer.getvalue()


def _lying_header() -> bytes:
    # The central directory claims 1 KB for 2 MB of text: decompression must not trust it.
    data = make_zip({"src/big.txt": os.urandom(1024 * 1024).hex().encode()})
    return _patch_central(data, "src/big.txt", offset=24, fmt="<I", value=1024)


HOSTILE = {
    "zip slip": (lambda: make_zip({"../evil.py": b"boom"}), "upload:zip-slip"),
    "zip slip inside a folder": (lambda: make_zip({"src/../../evil.py": b"boom"}), "upload:zip-slip"),
    "absolute path": (lambda: make_zip({"/tmp/planqk-evil.py": b"boom"}), "upload:absolute-path"),
    "windows drive": (lambda: make_zip({"C:/evil.py": b"boom"}), "upload:absolute-path"),
    "backslash": (lambda: make_zip({"src\\..\\..\\evil.py": b"boom"}), "upload:backslash"),
    "symlink": (lambda: make_zip(entries=[_link("src/passwd.py", "/etc/passwd")]), "upload:symlink"),
    "special file": (lambda: make_zip(entries=[_fifo("src/pipe")]), "upload:special-file"),
    "zip bomb": (_bomb, "upload:zip-bomb"),
    "lying size header": (_lying_header, "upload:corrupt"),
    "encrypted entry": (_encrypted, "upload:encrypted"),
    "duplicate entry": (
        lambda: make_zip(entries=[(zipfile.ZipInfo("src/program.py"), b"x = 1\n")]),
        "upload:duplicate-entry",
    ),
    "no program.py": (
        lambda: make_zip({"src/main.py": PROGRAM, "requirements.txt": b""}, base=False),
        "upload:no-program",
    ),
    "program.py without run": (
        lambda: make_zip({"src/program.py": b"def main():\n    return 1\n"}),
        "upload:no-run",
    ),
    "program.py with a syntax error": (
        lambda: make_zip({"src/program.py": b"def run(:\n"}),
        "upload:program-syntax",
    ),
    "no requirements": (
        lambda: make_zip({"src/program.py": PROGRAM}, base=False),
        "upload:no-requirements",
    ),
    "requirements with a local path": (
        lambda: make_zip({"requirements.txt": b"numpy\n-e /etc\n"}),
        "upload:bad-requirements",
    ),
    "requirements pointing pip elsewhere": (
        lambda: make_zip({"requirements.txt": b"--index-url http://127.0.0.1:1/simple\nsix\n"}),
        "upload:bad-requirements",
    ),
    "not a zip": (lambda: b"this is not an archive at all" * 10, "upload:not-a-zip"),
}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archive_is_rejected_with_its_reason_and_nothing_escapes(case, tmp_path):
    build, code = HOSTILE[case]
    data = build()
    with pytest.raises(ApplicationError) as inspected:
        uploads.inspect_archive(io.BytesIO(data))
    assert inspected.value.code == code
    assert inspected.value.message  # a sentence a provider can act on

    # Extraction repeats every check; whatever happens, nothing appears outside the fresh folder.
    dest = tmp_path / "fresh"
    dest.mkdir()
    with pytest.raises(ApplicationError) as extracted:
        uploads.extract_archive(io.BytesIO(data), dest)
    assert extracted.value.code == code
    outside = _tree(tmp_path) - {"fresh"} - {f"fresh/{p}" for p in _tree(dest)}
    assert outside == set()
    assert not Path("/tmp/planqk-evil.py").exists()
    assert not (tmp_path / "evil.py").exists()


def test_zip_bomb_stops_while_decompressing(tmp_path):
    dest = tmp_path / "fresh"
    dest.mkdir()
    with pytest.raises(ApplicationError, match="zip bomb"):
        uploads.extract_archive(io.BytesIO(_bomb()), dest)
    written = (dest / "src" / "zeros.bin").stat().st_size
    assert written < 16 * 1024 * 1024  # stopped long before the 64 MB the entry holds


def test_too_many_entries_is_rejected(settings):
    settings.PLANQK_UPLOAD_MAX_ENTRIES = 50
    data = make_zip({f"src/libs/m{i}.py": b"" for i in range(60)})
    with pytest.raises(ApplicationError) as exc:
        uploads.inspect_archive(io.BytesIO(data))
    assert exc.value.code == "upload:too-many-entries"
    assert "50" in exc.value.message


def test_total_uncompressed_size_is_limited(settings):
    settings.PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB = 1
    data = make_zip({"src/data.txt": os.urandom(700 * 1024).hex().encode()})  # 1.4 MB of hex, ratio about 2
    with pytest.raises(ApplicationError) as exc:
        uploads.inspect_archive(io.BytesIO(data))
    assert exc.value.code == "upload:too-large-uncompressed"


def test_upload_above_the_size_limit_is_rejected(settings):
    settings.PLANQK_MAX_UPLOAD_MB = 1
    data = make_zip({"src/blob.bin": os.urandom(1536 * 1024)})
    with pytest.raises(ApplicationError) as exc:
        uploads.inspect_archive(io.BytesIO(data))
    assert exc.value.code == "upload:too-large"
    assert exc.value.status == 413


def test_zipped_folder_gets_a_hint_to_zip_its_content():
    data = make_zip({"my-service/src/program.py": PROGRAM, "my-service/requirements.txt": b""}, base=False)
    with pytest.raises(ApplicationError, match="zip the content of your service folder") as exc:
        uploads.inspect_archive(io.BytesIO(data))
    assert exc.value.code == "upload:no-program"


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_passes_and_unpacks(name, tmp_path):
    summary = uploads.inspect_archive(io.BytesIO(sample_zip(name)))
    assert "src/program.py" in summary.files
    assert summary.api_spec is not None
    uploads.validate_api_spec(summary.api_spec)
    dest = tmp_path / "code"
    dest.mkdir()
    uploads.extract_archive(io.BytesIO(sample_zip(name)), dest)
    assert (dest / "src" / "program.py").read_bytes().startswith(b'"""')


def test_environment_yml_alone_gives_its_pip_dependencies():
    environment = b"""name: planqk-service
channels: [conda-forge]
dependencies:
  - python=3.11
  - numpy=1.26
  - pip
  - pip:
      - -r requirements.txt
      - six==1.16.0
      - requests>=2.31
"""
    summary = uploads.inspect_archive(
        io.BytesIO(make_zip({"src/program.py": PROGRAM, "environment.yml": environment}, base=False))
    )
    assert summary.requirements == "six==1.16.0\nrequests>=2.31\n"
    assert summary.requirements_source == "environment.yml"
    assert summary.ignored_conda_packages == ["numpy=1.26"]


def test_run_defined_by_import_or_assignment_counts():
    for program in (b"from .libs.impl import run\n", b"def _impl(data=None, params=None):\n    pass\nrun = _impl\n"):
        uploads.inspect_archive(io.BytesIO(make_zip({"src/program.py": program})))


SPEC_OK = b"""openapi: 3.0.3
info: {title: Mine, version: "1.0"}
paths:
  /:
    get:
      responses:
        "200": {description: ok}
"""


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (b"openapi: 3.0.3\ninfo: {title: x}\npaths: {}\n", "spec:invalid"),
        (b"openapi: [unclosed\n", "spec:not-yaml"),
        (b'swagger: "2.0"\ninfo: {title: x, version: "1"}\npaths: {}\n', "spec:not-openapi3"),
        (b"- just\n- a list\n", "spec:invalid"),
        (
            SPEC_OK.replace(b'"200": {description: ok}', b'"200": {$ref: "file:///etc/passwd"}'),
            "spec:external-ref",
        ),
        (
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
            "spec:too-large",
        ),
    ],
    ids=["missing info.version", "not yaml", "swagger 2", "not a mapping", "external ref", "alias bomb"],
)
def test_invalid_api_spec_is_rejected_with_its_reason(spec, code):
    with pytest.raises(ApplicationError) as exc:
        uploads.validate_api_spec(spec)
    assert exc.value.code == code


def test_valid_spec_is_kept_as_written():
    assert uploads.validate_api_spec(SPEC_OK) == SPEC_OK.decode()


def test_rejected_upload_stores_nothing(user, settings, tmp_path):
    from services.services import service_create

    settings.MEDIA_ROOT = tmp_path / "media"
    with pytest.raises(ApplicationError) as exc:
        service_create(owner=user, name="slip", archive=upload(make_zip({"../evil.py": b"x"})))
    assert exc.value.code == "upload:zip-slip"
    assert not Service.objects.filter(name="slip").exists()
    assert not (tmp_path / "media").exists() or _tree(tmp_path / "media") == set()
