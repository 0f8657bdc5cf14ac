"""A provider's OpenAPI spec cannot send a subscriber's credentials or calls anywhere but to us."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from applications.services import application_create
from marketplace.rendering import spec_make_safe
from tests.conftest import login, make_user
from tests.payments.helpers import make_plan, make_service, make_subscription


class Listener:
    """The provider's own server on another loopback port: records every request it receives."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                listener.requests.append((self.command, self.path, body + str(self.headers).encode()))
                self.send_response(200)
                # As permissive as a phishing listener would be, so a browser would read its answers.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.send_header("Access-Control-Allow-Methods", "*")
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"access_token": "stolen", "token_type": "Bearer", "expires_in": 3600}')

            do_GET = do_POST = do_PUT = do_OPTIONS = do_DELETE = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


def hostile_spec(evil: str) -> dict:
    """Every place of an OpenAPI document that can name another host."""
    creds = {"tokenUrl": f"{evil}/token", "refreshUrl": f"{evil}/refresh", "scopes": {"default": "all"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Hostile",
            "version": "1.0",
            "description": f"Sign in first. ![pixel]({evil}/pixel.png)",
            "x-logo": {"url": f"{evil}/logo.png"},
            "contact": {"url": "javascript:alert(1)"},
        },
        "externalDocs": {"url": f"{evil}/docs"},
        "servers": [{"url": f"{evil}/top"}],
        "security": [{"oauth": ["default"]}, {"oidc": []}, {"bearer": []}],
        "paths": {
            "/": {
                "servers": [{"url": f"{evil}/path"}],
                "post": {
                    "summary": "Start an execution",
                    "servers": [{"url": f"{evil}/operation"}],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"{evil}/schema.json"},
                                "examples": {"one": {"externalValue": f"{evil}/example.json"}},
                                "example": {"data": {"servers": ["kept: this is the provider's data"]}},
                            }
                        }
                    },
                    "responses": {
                        "201": {
                            "description": "The job",
                            "links": {"status": {"operationRef": f"{evil}/spec#/paths/~1", "server": {"url": evil}}},
                        }
                    },
                    "callbacks": {"done": {"{$request.body#/url}": {"post": {"servers": [{"url": evil}]}}}},
                },
            }
        },
        "components": {
            "schemas": {"Input": {"type": "object", "properties": {"servers": {"type": "string"}}}},
            "securitySchemes": {
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": creds,
                        "password": creds,
                        "authorizationCode": {**creds, "authorizationUrl": f"{evil}/authorize"},
                        "implicit": {"authorizationUrl": f"{evil}/authorize", "scopes": {}},
                    },
                },
                "oidc": {"type": "openIdConnect", "openIdConnectUrl": f"{evil}/.well-known/openid-configuration"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


ENDPOINT = "http://portal.test/gateway/0000/sum/1.0.0/"
TOKEN = "http://portal.test/gateway/token"


def test_no_url_of_a_hostile_spec_survives():
    evil = "http://127.0.0.1:9"
    safe = spec_make_safe(hostile_spec(evil), endpoint_url=ENDPOINT, token_url=TOKEN)
    text = json.dumps(safe)
    # The only traces of the provider's host are links a reader may click: the description's image
    # became a link, and externalDocs stays a link.
    assert text.count(evil) == 2, text
    assert safe["info"]["description"] == f"Sign in first. [pixel]({evil}/pixel.png)"
    assert safe["externalDocs"] == {"url": f"{evil}/docs"}
    gateway = [{"url": ENDPOINT.rstrip("/"), "description": "This platform's gateway"}]
    assert safe["servers"] == gateway
    assert safe["paths"]["/"]["servers"] == gateway
    assert safe["paths"]["/"]["post"]["servers"] == gateway
    schemes = safe["components"]["securitySchemes"]
    assert schemes["oauth"]["flows"] == {"clientCredentials": {"tokenUrl": TOKEN, "scopes": {"default": "all"}}}
    assert schemes["oidc"] == {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": TOKEN, "scopes": {}}}}
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    assert "$ref" not in safe["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "x-logo" not in safe["info"]
    assert "url" not in safe["info"]["contact"]
    # What the provider named, and the provider's example data, are left alone.
    assert safe["components"]["schemas"]["Input"]["properties"] == {"servers": {"type": "string"}}


def test_a_swagger_2_spec_gets_our_host_and_token_endpoint():
    spec = {
        "swagger": "2.0",
        "info": {"title": "Old", "version": "1"},
        "host": "127.0.0.1:9",
        "basePath": "/steal",
        "schemes": ["http"],
        "securityDefinitions": {
            "oauth": {
                "type": "oauth2",
                "flow": "accessCode",
                "authorizationUrl": "http://127.0.0.1:9/a",
                "tokenUrl": "http://127.0.0.1:9/t",
                "scopes": {},
            },
        },
        "paths": {},
    }
    safe = spec_make_safe(spec, endpoint_url=ENDPOINT, token_url=TOKEN)
    assert (safe["host"], safe["basePath"], safe["schemes"]) == ("portal.test", "/gateway/0000/sum/1.0.0", ["http"])
    assert safe["securityDefinitions"]["oauth"] == {
        "type": "oauth2",
        "flow": "application",
        "tokenUrl": TOKEN,
        "scopes": {},
    }
    assert "127.0.0.1:9" not in json.dumps(safe)


@pytest.mark.django_db
def test_the_page_serves_the_safe_spec(client, listener):
    import yaml

    provider = make_user("provider@example.com")
    service = make_service(provider, "sum", api_spec=yaml.safe_dump(hostile_spec(listener.url)))
    body = client.get(f"/marketplace/{service.pk}/openapi.json").json()
    schemes = body["components"]["securitySchemes"]
    assert schemes["oauth"]["flows"]["clientCredentials"]["tokenUrl"] == "http://testserver/gateway/token"
    assert body["paths"]["/"]["post"]["servers"][0]["url"] == f"http://testserver/gateway/{provider.uuid}/sum/1.0.0"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_authorize_and_try_it_out_send_nothing_to_the_provider(browser_page, live_server, listener):
    import yaml

    provider = make_user("provider@example.com")
    service = make_service(provider, "sum", api_spec=yaml.safe_dump(hostile_spec(listener.url)))
    plan = make_plan(service)
    subscriber = make_user("subscriber@example.com")
    issued = application_create(owner=subscriber, name="lab")
    make_subscription(issued.application, service, plan)
    page = browser_page
    login(page, live_server, subscriber)

    page.goto(f"{live_server.url}/marketplace/{service.pk}/")
    page.wait_for_selector("#swagger-ui .opblock-summary-path")
    page.click("#swagger-ui button.authorize")
    oauth = page.locator(".dialog-ux .modal-ux .auth-container", has_text="oauth (OAuth2, clientCredentials)")
    oauth.locator("input[id^=client_id]").fill(issued.consumer_key)
    oauth.locator("input[id^=client_secret]").fill(issued.secret)
    with page.expect_response(lambda r: r.url.endswith("/gateway/token")) as token_answer:
        oauth.locator("button.authorize").click()
    assert token_answer.value.status == 200  # the token came from the platform's own endpoint
    page.locator(".dialog-ux .modal-ux button.btn-done").first.click()

    page.click("#swagger-ui .opblock-post .opblock-summary")
    page.click("#swagger-ui .opblock-post button.try-out__btn")
    page.locator("#swagger-ui .opblock-post textarea.body-param__text").fill('{"data": {}, "params": {}}')
    with page.expect_response(lambda r: "/gateway/" in r.url and r.request.method == "POST") as call:
        page.click("#swagger-ui .opblock-post button.execute")
    assert call.value.url.startswith(f"{live_server.url}/gateway/{provider.uuid}/sum/1.0.0")
    assert call.value.request.headers["authorization"].startswith("Bearer ")
    page.wait_for_timeout(500)  # anything still in flight to the listener would land now
    assert listener.requests == []
