"""The allauth account adapter: failed-login limits per account *and address*.

allauth counts failed logins per account (its "key") and per address. Counted per account alone,
five wrong passwords from anywhere lock the real owner out: anyone who knows an e-mail address can
keep a person out of their account. Here the per-account counter is kept per account and address,
so an attacker's failures slow only the attacker's own attempts (with growing delays, see
``ACCOUNT_RATE_LIMITS`` in settings), and the owner logging in from anywhere else is not affected.
Per-address limits (counted by allauth across accounts) slow one machine trying many accounts.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        account_key = super()._get_login_attempts_cache_key(request, **credentials)
        return f"{account_key}@{self.get_client_ip(request)}"

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        # A password reset clears the counter of the address it was completed from (allauth's own
        # behaviour, applied to our key).
        super()._delete_login_attempts_cached_email(request, **credentials)
