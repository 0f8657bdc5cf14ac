"""A local stand-in for Stripe's API: the endpoints the Stripe gateway calls, with Stripe's JSON shapes.

It answers like Stripe test mode for a few of Stripe's documented test PaymentMethods
(``pm_card_visa`` succeeds, ``pm_card_chargeDeclined`` is refused on attach,
``pm_card_chargeCustomerFail`` attaches but every charge is declined), keeps responses by
``Idempotency-Key`` like Stripe does (a repeated key replays the first answer) and records every
request so tests can assert on what stripe-python really sent.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

API_KEY = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc"

# Stripe's test PaymentMethods: (brand, last4, refusal on attach, refusal on charge).
DECLINED = {"code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."}
INSUFFICIENT = {
    "code": "card_declined",
    "decline_code": "insufficient_funds",
    "message": "Your card has insufficient funds.",
}
TEST_PMS: dict[str, tuple[str, str, dict | None, dict | None]] = {
    "pm_card_visa": ("visa", "4242", None, None),
    "pm_card_mastercard": ("mastercard", "4444", None, None),
    "pm_card_chargeDeclined": ("visa", "0002", DECLINED, DECLINED),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", INSUFFICIENT, INSUFFICIENT),
    "pm_card_chargeCustomerFail": ("visa", "0341", None, DECLINED),
}


NOT_ATTACHED = (
    "The provided PaymentMethod was previously used without being attached to a Customer or was detached "
    "from a Customer, and may not be used again."
)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[invoice_id]=…``, ``payment_method_types[0]=card``) as a dict."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if "[" in key:
            head, rest = key.split("[", 1)
            sub = rest.rstrip("]")
            bucket = out.setdefault(head, {})
            bucket[sub] = value
        else:
            out[key] = value
    return out


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class FakeStripe:
    """State of the fake Stripe account."""

    customers: dict[str, dict] = field(default_factory=dict)
    payment_methods: dict[str, dict] = field(default_factory=dict)
    setup_intents: dict[str, dict] = field(default_factory=dict)
    payment_intents: dict[str, dict] = field(default_factory=dict)
    idempotent: dict[str, tuple[int, dict]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # --- what tests look at ----------------------------------------------------------------------

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def confirm_setup_intent_in_browser(self, setup_intent_id: str, test_pm: str) -> dict:
        """What Stripe.js's confirmCardSetup does on Stripe's side."""
        with self.lock:
            intent = self.setup_intents[setup_intent_id]
            on_attach = TEST_PMS[test_pm][2]
            if on_attach:
                intent.update(status="requires_payment_method", last_setup_error={"type": "card_error", **on_attach})
                return intent
            pm = self._new_pm(test_pm)
            pm["customer"] = intent["customer"]
            intent.update(status="succeeded", payment_method=pm["id"])
            return intent

    # --- Stripe's behaviour -----------------------------------------------------------------------

    def _new_pm(self, source: str) -> dict:
        brand, last4, _, _ = TEST_PMS[source]
        pm = {
            "id": _id("pm"),
            "object": "payment_method",
            "type": "card",
            "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": time.gmtime().tm_year + 3,
                     "country": "US", "funding": "credit"},
            "customer": None,
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "created": int(time.time()),
            "livemode": False,
            "metadata": {},
            "_source": source,
        }  # fmt: skip
        self.payment_methods[pm["id"]] = pm
        return pm

    def _pm(self, pm_id: str) -> dict | None:
        if pm_id in TEST_PMS:
            return self._new_pm(pm_id)
        return self.payment_methods.get(pm_id)

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    @staticmethod
    def _error(status: int, type_: str, message: str, **extra: Any) -> tuple[int, dict]:
        return status, {"error": {"type": type_, "message": message, **extra}}

    def handle(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            return self._error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        parts = parts[1:]
        if method == "POST" and parts == ["customers"]:
            customer = {
                "id": _id("cus"),
                "object": "customer",
                "email": params.get("email"),
                "metadata": params.get("metadata", {}),
                "created": int(time.time()),
                "livemode": False,
            }
            self.customers[customer["id"]] = customer
            return 200, customer
        if len(parts) >= 2 and parts[0] == "payment_methods":
            return self._payment_methods(method, parts[1:], params)
        if parts and parts[0] == "setup_intents":
            return self._setup_intents(method, parts[1:], params)
        if method == "POST" and parts == ["payment_intents"]:
            return self._payment_intent_create(params)
        return self._error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _payment_methods(self, method: str, rest: list[str], params: dict[str, Any]) -> tuple[int, dict]:
        pm_id = rest[0]
        if method == "GET" and len(rest) == 1:
            pm = self.payment_methods.get(pm_id)
            if pm is None:
                return self._error(
                    404, "invalid_request_error", f"No such PaymentMethod: '{pm_id}'", code="resource_missing"
                )
            return 200, self._public(pm)
        if method == "POST" and rest[1:] == ["attach"]:
            customer = params.get("customer")
            if customer not in self.customers:
                return self._error(
                    404, "invalid_request_error", f"No such customer: '{customer}'", code="resource_missing"
                )
            pm = self._pm(pm_id)
            if pm is None:
                return self._error(
                    404, "invalid_request_error", f"No such PaymentMethod: '{pm_id}'", code="resource_missing"
                )
            refusal = TEST_PMS[pm["_source"]][2]
            if refusal:
                self.payment_methods.pop(pm["id"], None)
                return self._error(402, "card_error", refusal["message"], code=refusal["code"],
                                   decline_code=refusal["decline_code"], param="")  # fmt: skip
            pm["customer"] = customer
            return 200, self._public(pm)
        if method == "POST" and rest[1:] == ["detach"]:
            pm = self.payment_methods.get(pm_id)
            if pm is None or pm["customer"] is None:
                return self._error(
                    400,
                    "invalid_request_error",
                    "The payment method you provided is not attached to a customer so detachment is impossible.",
                )
            pm["customer"] = None
            return 200, self._public(pm)
        return self._error(404, "invalid_request_error", "Unrecognized request URL.")

    def _setup_intents(self, method: str, rest: list[str], params: dict[str, Any]) -> tuple[int, dict]:
        if method == "GET" and len(rest) == 1:
            intent = self.setup_intents.get(rest[0])
            if intent is None:
                return self._error(
                    404, "invalid_request_error", f"No such setupintent: '{rest[0]}'", code="resource_missing"
                )
            return 200, intent
        if method != "POST" or rest:
            return self._error(404, "invalid_request_error", "Unrecognized request URL.")
        ident = _id("seti")
        intent = {"id": ident, "object": "setup_intent", "client_secret": f"{ident}_secret_{secrets.token_hex(8)}",
                  "customer": params.get("customer"), "payment_method": None, "status": "requires_payment_method",
                  "usage": params.get("usage", "off_session"), "payment_method_types": ["card"],
                  "last_setup_error": None, "livemode": False, "created": int(time.time())}  # fmt: skip
        pm_id = params.get("payment_method")
        if pm_id:
            pm = self.payment_methods.get(pm_id)
            if pm is None:
                return self._error(
                    404, "invalid_request_error", f"No such PaymentMethod: '{pm_id}'", code="resource_missing"
                )
            intent["payment_method"] = pm_id
            if params.get("confirm") == "true":
                refusal = TEST_PMS[pm["_source"]][2]
                if refusal:
                    intent.update(status="requires_payment_method", last_setup_error={"type": "card_error", **refusal})
                    self.setup_intents[ident] = intent
                    return self._error(402, "card_error", refusal["message"], code=refusal["code"],
                                       decline_code=refusal["decline_code"], setup_intent=intent)  # fmt: skip
                intent["status"] = "succeeded"
            else:
                intent["status"] = "requires_confirmation"
        self.setup_intents[ident] = intent
        return 200, intent

    def _payment_intent_create(self, params: dict[str, Any]) -> tuple[int, dict]:
        pm = self.payment_methods.get(params.get("payment_method", ""))
        if pm is None or pm["customer"] != params.get("customer"):
            return self._error(400, "invalid_request_error", NOT_ATTACHED)
        intent = {"id": _id("pi"), "object": "payment_intent", "amount": int(params["amount"]),
                  "currency": params["currency"], "customer": params["customer"], "payment_method": pm["id"],
                  "description": params.get("description"), "metadata": params.get("metadata", {}),
                  "status": "succeeded", "last_payment_error": None, "latest_charge": _id("ch"),
                  "livemode": False, "created": int(time.time())}  # fmt: skip
        refusal = TEST_PMS[pm["_source"]][3]
        self.payment_intents[intent["id"]] = intent
        if refusal:
            intent.update(status="requires_payment_method", latest_charge=None,
                          last_payment_error={"type": "card_error", **refusal})  # fmt: skip
            return self._error(402, "card_error", refusal["message"], code=refusal["code"],
                               decline_code=refusal["decline_code"], payment_intent=intent)  # fmt: skip
        return 200, intent


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parsed = urlparse(self.path)
        params = _nest(parse_qsl(body or parsed.query, keep_blank_values=True))
        headers = dict(self.headers.items())
        with fake.lock:
            fake.requests.append(Recorded(method=method, path=parsed.path, headers=headers, params=params))
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                status, payload = fake._error(401, "invalid_request_error", "Invalid API Key provided: sk_test_****")
            else:
                key = self.headers.get("Idempotency-Key")
                if method == "POST" and key and key in fake.idempotent:
                    status, payload = fake.idempotent[key]  # Stripe replays the first answer
                else:
                    status, payload = fake.handle(method, parsed.path, params)
                    if method == "POST" and key:
                        fake.idempotent[key] = (status, payload)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", _id("req"))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStripe


def start_fake_stripe() -> tuple[FakeStripe, _Server]:
    """Serve a fresh fake Stripe on 127.0.0.1 (a free port) in a background thread."""
    server = _Server(("127.0.0.1", 0), _Handler)
    fake = FakeStripe()
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
