"""The REST API answers JSON for every path under /api/v1/ and refuses filters it cannot read."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_paths_under_the_api_are_json_404_also_in_development_mode(api_client, debug):
    with override_settings(DEBUG=debug):
        for path in ("/api/v1/services/not-a-uuid/", "/api/v1/no-such-thing", "/api/v1/jobs/1/2/3/"):
            response = api_client.get(path)
            assert response.status_code == 404, path
            assert response["Content-Type"] == "application/json", path
            assert set(response.json()) == {"code", "detail"}
        # A known path without its slash still finds its way.
        assert api_client.get("/api/v1/services").status_code == 301


def test_a_data_source_filter_that_is_not_a_uuid_is_400(api_client):
    pool = api_client.post("/api/v1/datapools/", {"name": "p"}, format="json").json()
    for bad in ("not-a-uuid", ""):
        response = api_client.get(f"/api/v1/datapools/{pool['id']}/files/", {"data_source": bad})
        assert response.status_code == 400, bad
        assert set(response.json()) >= {"code", "detail"}
    ok = api_client.get(f"/api/v1/datapools/{pool['id']}/files/", {"data_source": pool["default_data_source_id"]})
    assert ok.status_code == 200
