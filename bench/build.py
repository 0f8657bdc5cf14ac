"""Build times: a first build and an unchanged rebuild of the sum and qiskit_bell samples per runtime.

``python -m bench build [--samples sum,qiskit_bell] [--runtimes local,docker] [--rebuilds N]``

Each measurement is what the build task does after its claim: unpack the stored archive with
every upload check (:func:`services.uploads.extract_archive`) and run ``Runtime.build``.

- *first build*: requirements nobody built before here (a unique comment line is added to the
  sample's requirements, so the local runtime creates a new environment and Docker misses its
  pip layer cache); pip's own download cache stays warm, as on a running platform.
- *unchanged rebuild*: a new version with the same requirements (the environment, or the
  cached pip layer, is reused; only the code is copied).

The local runtime builds into a temporary data folder, removed afterwards; Docker images are
removed after they are measured. Docker runs only where an engine answers and the base image
exists (``scripts/build-base-image.sh``). Writes bench/results/build.md.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from bench.common import write_table

ROOT = Path(__file__).resolve().parent.parent


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planqk_portal.settings")
    import django

    django.setup()


def _runtime(name: str, data_dir: Path):
    """The runtime ``name`` configured from the settings, or None with the reason it cannot run."""
    if name == "local":
        from jobs.runtime_factory import local_config
        from runtimes.local import LocalRuntime

        return LocalRuntime(replace(local_config(), data_dir=data_dir)), ""
    from jobs.runtime_factory import get_runtime

    runtime = get_runtime("docker")
    try:
        runtime.client.ping()
        runtime.client.images.get(runtime.config.base_image)
    except Exception as exc:  # no engine, or no base image: say so in the table
        return None, f"skipped: {exc}"
    return runtime, ""


def _build_once(runtime, archive: bytes, requirements: str, work: Path) -> tuple[float, dict]:
    from runtimes import BuildSpec
    from services.uploads import extract_archive

    version_id = uuid.uuid4().hex
    source = work / version_id
    source.mkdir(parents=True)
    started = time.perf_counter()
    extract_archive(io.BytesIO(archive), source)
    result = runtime.build(
        BuildSpec(version_id=version_id, source_dir=source, requirements=requirements), log=lambda _line: None
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(source, ignore_errors=True)
    return elapsed, result.handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench build")
    parser.add_argument("--samples", default="sum,qiskit_bell")
    parser.add_argument("--runtimes", default="local,docker")
    parser.add_argument("--rebuilds", type=int, default=3, help="unchanged rebuilds per sample and runtime")
    args = parser.parse_args(argv or [])
    _setup_django()

    from planqk_samples import sample_files
    from planqk_template import zip_bytes

    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        tmp_path = Path(tmp)
        for runtime_name in args.runtimes.split(","):
            runtime, why = _runtime(runtime_name, tmp_path / "data")
            for sample in args.samples.split(","):
                if runtime is None:
                    rows.append({"runtime": runtime_name, "sample": sample, "first build s": why})
                    continue
                files = sample_files(sample)
                requirements = files.get("requirements.txt", b"").decode()
                # A comment nobody used before: a new environment / a pip layer cache miss.
                requirements += f"\n# bench {uuid.uuid4().hex}\n"
                files = {**files, "requirements.txt": requirements.encode()}
                archive = zip_bytes(
                    {p: c for p, c in files.items() if p.startswith("src/") or p in ("requirements.txt",)}
                )
                handles = []
                print(f"{runtime_name} {sample}: first build…", flush=True)
                first, handle = _build_once(runtime, archive, requirements, tmp_path / "work")
                handles.append(handle)
                rebuilds = []
                for _ in range(args.rebuilds):
                    elapsed, handle = _build_once(runtime, archive, requirements, tmp_path / "work")
                    rebuilds.append(elapsed)
                    handles.append(handle)
                for handle in handles:
                    runtime.remove_build(handle)
                rows.append(
                    {
                        "runtime": runtime_name,
                        "sample": sample,
                        "first build s": f"{first:.1f}",
                        "rebuild n": str(len(rebuilds)),
                        "rebuild median s": f"{statistics.median(rebuilds):.2f}" if rebuilds else "",
                        "rebuild max s": f"{max(rebuilds):.2f}" if rebuilds else "",
                    }
                )
    notes = (
        "First build: requirements never built here before (pip's download cache warm). Rebuild: a new "
        "version with unchanged requirements. Both include unpacking the archive with every upload check. "
        "The sum sample needs no packages (the local runtime still creates a virtual environment; Docker adds "
        "only the code layer to the base image); qiskit_bell installs qiskit and qiskit-aer."
    )
    write_table("build", "Service builds: first build and unchanged rebuild", rows, notes)
    return 0
