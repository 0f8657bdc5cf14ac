"""`planqk implementations` and `planqk run --implementation` against the portal (real worker, real build)."""

from __future__ import annotations

import json

import pytest

from payments.testing import add_test_card
from services.models import Service
from tests.algorithms.conftest import make_algorithm, make_implementation
from tests.cli.conftest import Cli
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_media")]


def _cli(tmp_path, live_server, user) -> Cli:
    from accounts.services import personal_access_token_create

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    cli = Cli(home=home, cwd=work, endpoint=live_server.url)
    token = personal_access_token_create(user=user, name="cli", scopes=["api"], expires_days=1).secret
    assert cli("login", "-t", token).returncode == 0
    return cli


def test_list_and_run_an_implementation(tmp_path, live_server, celery_worker):
    author = make_user("author@example.com")
    algorithm = make_algorithm(author)
    public = make_implementation(author, algorithm, name="sum for all", visibility="PUBLIC")
    private = make_implementation(author, algorithm, name="author only", visibility="PRIVATE")
    runner = make_user("runner@example.com")
    add_test_card(runner)
    cli = _cli(tmp_path, live_server, runner)

    listed = cli("implementations")
    assert listed.returncode == 0, listed
    assert "sum for all" in listed.stdout
    assert "author only" not in listed.stdout
    as_json = cli("implementations", "--json")
    assert [item["id"] for item in as_json.json()] == [str(public.pk)]

    ran = cli("run", "--implementation", str(public.pk), "-d", '{"values": [1, 2, 3.5]}', "-p", '{"round_off": false}')
    assert ran.returncode == 0, ran
    assert json.loads(ran.stdout) == {"sum": 6.5}
    service = Service.objects.get(owner=runner)
    assert service.origin.implementation == public
    # A second run uses the same service.
    again = cli("run", "--implementation", str(public.pk), "-d", '{"values": [1]}', "-p", "{}")
    assert again.returncode == 0, again
    assert Service.objects.filter(owner=runner).count() == 1

    hidden = cli("run", "--implementation", str(private.pk), "-d", "{}")
    assert hidden.returncode != 0
    assert "No such implementation" in hidden.stderr or "no implementation" in hidden.stderr.lower()
    assert Service.objects.filter(owner=runner).count() == 1
