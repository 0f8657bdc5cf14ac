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


def _local_cases(sample: str, tmp_path: Path, rebuilds: int) -> list[dict[str, str]]:
    """uv and pip side by side on the local runtime: empty platform cache, warm cache, unchanged rebuild."""
    from jobs.runtime_factory import local_config
    from planqk_samples import sample_files
    from planqk_template import zip_bytes
    from runtimes.local import LocalRuntime

    files = sample_files(sample)
    requirements = files.get("requirements.txt", b"").decode()
    archive = zip_bytes({p: c for p, c in files.items() if p.startswith("src/") or p == "requirements.txt"})
    rows = []
    for installer in ("uv", "pip"):
        data_dir = tmp_path / f"data-{installer}"
        runtime = LocalRuntime(replace(local_config(), data_dir=data_dir, installer=installer))
        print(f"local {installer} {sample}: empty cache…", flush=True)
        cold, _ = _build_once(runtime, archive, requirements, tmp_path / "work")
        # Warm: the platform's wheel cache holds everything, the environment itself is new.
        shutil.rmtree(data_dir / "envs")
        print(f"local {installer} {sample}: warm cache…", flush=True)
        warm, _ = _build_once(runtime, archive, requirements, tmp_path / "work")
        again = [_build_once(runtime, archive, requirements, tmp_path / "work")[0] for _ in range(rebuilds)]
        rows.append(
            {
                "runtime": "local",
                "installer": installer,
                "sample": sample,
                "first build, empty cache s": f"{cold:.1f}",
                "first build, warm cache s": f"{warm:.1f}",
                "rebuild n": str(len(again)),
                "rebuild median s": f"{statistics.median(again):.2f}" if again else "",
                "rebuild max s": f"{max(again):.2f}" if again else "",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench build")
    parser.add_argument("--samples", default="sum,qiskit_bell")
    parser.add_argument("--rebuilds", type=int, default=3, help="unchanged rebuilds per sample and installer")
    args = parser.parse_args(argv or [])
    _setup_django()
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        for sample in args.samples.split(","):
            rows += _local_cases(sample, Path(tmp) / sample, args.rebuilds)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    notes = (
        "Local runtime, uv and pip measured side by side in one run, each with its own data folder. Every build "
        "fetches outside the sandbox (pip download --only-binary, no package code) and installs inside bubblewrap "
        "without network, then runs the smoke test's import check only where services.builds calls it (not "
        "here: this measures Runtime.build). Empty cache: the platform's caches (data/wheelhouse, data/uv-cache) "
        "are empty, so every wheel is downloaded (pip's own HTTP cache of the worker may be warm); with uv it "
        "includes unpacking every wheel once into the platform's uv cache and compiling its bytecode there "
        "(compileall, checked-hash). Warm cache: the same requirements in a new environment, every wheel in the "
        "platform's caches, no network used; with uv the new environment is hardlinks to the cache's unpacked, "
        "compiled files (pip unpacks and compiles every wheel again). Rebuild: a new version with unchanged "
        "requirements (the environment is reused, only the code is copied). All include unpacking the archive "
        f"with every upload check. Load average (1, 5, 15 min) when the run ended: {load} (other work on the "
        "machine; the figures are wall-clock times)."
    )
    write_table("build", "Service builds: empty and warm platform cache, unchanged rebuild (uv and pip)", rows, notes)
    return 0
