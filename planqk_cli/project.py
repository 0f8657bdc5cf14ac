"""The user code folder: finding the template, zipping it, ``planqk.json`` and the input files."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from planqk_cli.errors import FileProblem, NoTemplate, UsageError

PROJECT_FILE = "planqk.json"
ENTRY_POINT = Path("src") / "program.py"
#: What goes into the zip, like the documentation's `zip -r user_code.zip src requirements.txt ...`.
#: planqk.json goes along: its "generation" key ("2022" or "current") overrides what the build
#: detects from run()'s signature (planqk_runtime.generation).
ZIP_MEMBERS = ("src", "requirements.txt", "environment.yml", "openapi-spec.yml", PROJECT_FILE)
_SKIPPED_DIRS = {"__pycache__", ".ipynb_checkpoints"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def require_template(folder: Path) -> Path:
    """``folder`` when it holds the user code template, NoTemplate otherwise."""
    if not (folder / ENTRY_POINT).is_file():
        raise NoTemplate(
            f"{folder} holds no user code template (no {ENTRY_POINT})",
            hint="Run `planqk init` to create one, or change into your service's folder.",
        )
    return folder


def zip_template(folder: Path, dest: Path) -> list[str]:
    """Zip the template's service files from ``folder`` into ``dest``; returns the archived names.

    Only regular files: symbolic links are left out (the portal refuses archives with links, and
    they could point outside the folder), as are ``__pycache__`` folders and compiled files.
    """
    names: list[str] = []
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in ZIP_MEMBERS:
            path = folder / member
            if path.is_symlink() or not path.exists():
                continue
            if path.is_file():
                archive.write(path, member)
                names.append(member)
                continue
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not (Path(root) / d).is_symlink())
                for name in sorted(files):
                    file_path = Path(root) / name
                    if name.endswith(_SKIPPED_SUFFIXES) or file_path.is_symlink() or not file_path.is_file():
                        continue
                    arcname = file_path.relative_to(folder).as_posix()
                    archive.write(file_path, arcname)
                    names.append(arcname)
    return names


def read_project(folder: Path) -> dict[str, Any] | None:
    """``planqk.json`` of the folder (``{"serviceId", "name"}``), or None when it names no service yet
    (missing, or only settings such as ``"generation"``: the first ``planqk up`` adds the service)."""
    path = folder / PROJECT_FILE
    if not path.exists():
        return None
    data = read_json_file(path)
    if isinstance(data, dict) and "serviceId" not in data:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("serviceId"), str) or not data["serviceId"]:
        raise FileProblem(
            f'{path} does not name a service (expected {{"serviceId": ..., "name": ...}})',
            hint=f"Fix or delete {PROJECT_FILE}; `planqk up` writes it again.",
        )
    return data


def write_project(folder: Path, *, service_id: str, name: str) -> Path:
    """Remember the service of this folder, so the next ``planqk up`` uploads a new version."""
    path = folder / PROJECT_FILE
    # Keep what else the file says (the "generation" override, say): only the service is ours.
    try:
        kept = read_json_file(path) if path.is_file() else {}
    except FileProblem:
        kept = {}
    project = {**(kept if isinstance(kept, dict) else {}), "serviceId": service_id, "name": name}
    try:
        path.write_text(json.dumps(project, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise FileProblem(f"cannot write {path}: {exc.strerror}") from exc
    return path


def read_json_file(path: Path) -> Any:
    """The JSON in ``path``; FileProblem when it is missing, unreadable or not JSON. Empty is ``{}``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileProblem(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FileProblem(f"{path} is not valid JSON: {exc}") from exc


def parse_json_argument(value: str, option: str) -> Any:
    """The JSON given on the command line; UsageError saying which option was wrong."""
    try:
        return json.loads(value)
    except ValueError as exc:
        raise UsageError(
            f"{option} is not valid JSON: {exc}",
            hint=f"Quote it for the shell, e.g. {option} '{{\"values\": [1, 2]}}'",
        ) from exc


def slugify(text: str) -> str:
    """A valid service name from any text: lower-case letters, digits and dashes, at most 64."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:64].strip("-") or "planqk-service"
