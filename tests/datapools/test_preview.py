"""The data pool file preview draws a JSON file as the job page draws results."""

from __future__ import annotations

import pytest

from datapools.services import datafile_create_from_json
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_a_saved_result_is_drawn_and_the_raw_json_is_one_click_away(client, user):
    client.force_login(user)
    counts = datafile_create_from_json(user=user, pool=None, name="bell", payload={"result": {"counts": {"00": 3}}})
    page = client.get(f"/datapools/{counts.pool_id}/files/{counts.pk}/").content.decode()
    assert 'data-testid="result-histogram"' in page
    assert 'data-testid="show-raw-file"' in page
    listing = client.get(f"/datapools/{counts.pool_id}/").content.decode()
    assert f'href="/datapools/{counts.pool_id}/files/{counts.pk}/"' in listing

    samples = datafile_create_from_json(
        user=user, pool=counts.pool, name="qubo", payload={"sample": {"0": 1, "1": 0}, "energy": -1.0}
    )
    page = client.get(f"/datapools/{counts.pool_id}/files/{samples.pk}/").content.decode()
    assert 'data-testid="result-table"' in page
    other = datafile_create_from_json(user=user, pool=counts.pool, name="sum", payload={"sum": 3})
    page = client.get(f"/datapools/{counts.pool_id}/files/{other.pk}/").content.decode()
    assert 'data-testid="result-tree"' in page


def test_another_users_file_is_not_previewed(client, user):
    stranger = make_user()
    theirs = datafile_create_from_json(user=stranger, pool=None, name="secret", payload={"counts": {"1": 1}})
    client.force_login(user)
    response = client.get(f"/datapools/{theirs.pool_id}/files/{theirs.pk}/")
    assert response.status_code in (403, 404)
    assert 'data-testid="result-histogram"' not in response.content.decode()
