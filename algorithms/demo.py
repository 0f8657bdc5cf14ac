"""Demo catalogue for ``manage.py seed_demo``: real algorithms with public, working implementations."""

from __future__ import annotations

from typing import Any, TextIO

from planqk_portal.errors import ApplicationError

from . import services
from .catalogue import DEMO_ALGORITHMS, implementation_zip
from .models import Algorithm, Implementation, Visibility


def seed_demo(user: Any, stdout: TextIO) -> None:
    """Create the demo algorithms, each with one public implementation and its file (idempotent)."""
    for demo in DEMO_ALGORITHMS:
        algorithm = Algorithm.objects.filter(name=demo.name).first()
        if algorithm is None:
            algorithm = services.algorithm_create(
                author=user,
                name=demo.name,
                summary=demo.summary,
                description=demo.description,
                problem_class=demo.problem_class,
                tags=demo.tags,
            )
            stdout.write(f"Demo algorithm {demo.name}: created\n")
        spec = demo.implementation
        implementation = Implementation.objects.filter(algorithm=algorithm, owner=user, name=spec.name).first()
        if implementation is None:
            implementation = services.implementation_create(
                algorithm=algorithm,
                owner=user,
                name=spec.name,
                description=spec.description,
                sdk=spec.sdk,
                backend=spec.backend,
                license="Apache-2.0",
                visibility=Visibility.PUBLIC,
            )
        if not implementation.files.exists():
            try:
                services.implementation_file_add(
                    implementation=implementation, user=user, archive=implementation_zip(spec), filename="user_code.zip"
                )
            except ApplicationError as exc:
                stdout.write(f"Demo implementation {spec.name}: file refused ({exc.message})\n")
                continue
            stdout.write(f"Demo implementation {spec.name}: ready for Create Service\n")
