"""Fixtures for applications, subscriptions and the gateway: services built for real, OAuth2 clients."""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import make_user


@dataclass
class Callable_:
    """A service with a READY version and a plan, the way a provider leaves it after publishing."""

    service: object
    version: object
    plan: object

    @property
    def path(self) -> str:
        return f"/gateway/{self.service.owner.uuid}/{self.service.name}/{self.version.version}/"


def build_version(version, sample: str = "sum") -> None:
    """Build ``version`` from a planqk_samples sample with the configured runtime (a real build)."""
    from jobs.runtime_factory import get_runtime
    from planqk_samples import sample_files
    from runtimes import BuildSpec
    from services.models import BuildStatus

    files = sample_files(sample)
    requirements = files.get("requirements.txt", b"").decode()
    runtime = get_runtime()
    # The build copies the code into its own folder, so the source folder can go right after.
    with tempfile.TemporaryDirectory(prefix="gw-sample-") as tmp:
        folder = Path(tmp)
        for relative, content in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(content)
        handle = runtime.build(
            BuildSpec(version_id=str(version.id), source_dir=folder, requirements=requirements),
            log=lambda line: None,
        ).handle
    version.build_handle = handle
    version.runtime = runtime.name
    version.requirements = requirements
    version.status = BuildStatus.READY
    version.save()


def make_service(
    owner,
    *,
    name: str = "sum",
    lifecycle: str = "PUBLISHED",
    sample: str | None = "sum",
    external_url: str = "",
    plan_kind: str = "FREE",
    price_cents: int = 0,
    requests_per_minute: int = 120,
    max_concurrent: int = 5,
) -> Callable_:
    """A service owned by ``owner`` with version 1.0.0 (built when ``sample`` is given) and one plan."""
    from planqk_samples import sample_files
    from services.models import BuildStatus, PricingPlan, Service, ServiceVersion, SourceType

    service = Service.objects.create(
        owner=owner,
        name=name,
        title=name.title(),
        lifecycle=lifecycle,
        source=SourceType.URL if external_url else SourceType.FILE,
        external_url=external_url,
    )
    spec = sample_files(sample).get("openapi-spec.yml", b"").decode() if sample and not external_url else ""
    version = ServiceVersion.objects.create(service=service, version="1.0.0", created_by=owner, api_spec=spec)
    if sample and not external_url:
        build_version(version, sample)
    else:
        if external_url:
            # As services.services records a URL-imported version: the URL is its build.
            version.runtime = "external"
            version.build_handle = {"runtime": "external", "external_url": external_url}
        version.status = BuildStatus.READY
        version.save()
    service.published_version = version
    service.save()
    plan = PricingPlan.objects.create(
        service=service,
        name="Free" if plan_kind == "FREE" else "Standard",
        kind=plan_kind,
        price_cents=price_cents,
        requests_per_minute=requests_per_minute,
        max_concurrent=max_concurrent,
    )
    return Callable_(service=service, version=version, plan=plan)


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


@pytest.fixture
def sum_service(provider):
    return make_service(provider)


@dataclass
class App:
    application: object
    key: str
    secret: str

    @property
    def basic(self) -> str:
        return base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()


def make_app(owner, name: str = "my app") -> App:
    from applications.services import application_create

    issued = application_create(owner=owner, name=name)
    return App(application=issued.application, key=issued.consumer_key, secret=issued.secret)


def subscribe(app: App, target: Callable_):
    from applications.services import subscription_create

    return subscription_create(application=app.application, service=target.service, plan=target.plan)


def fetch_token(client: Client, app: App) -> str:
    response = client.post(
        "/gateway/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {app.basic}"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def app(user) -> App:
    return make_app(user)


@pytest.fixture
def subscribed(app, sum_service):
    """``(app, service, token)``: an application subscribed to the sum service, with an access token."""
    subscribe(app, sum_service)
    return app, sum_service, fetch_token(Client(), app)
