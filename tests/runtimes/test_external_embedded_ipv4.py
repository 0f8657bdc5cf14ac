"""IPv6 addresses that carry an IPv4 address the network may route to: NAT64 (RFC 6052's
64:ff9b::/96 and RFC 8215's local-use 64:ff9b:1::/48) and the deprecated IPv4-compatible ::/96.
Python's ``is_global`` calls them public, so without a look inside, a provider URL of
``http://[64:ff9b::7f00:1]/`` would reach 127.0.0.1 on a NAT64 network."""

from __future__ import annotations

import pytest

from runtimes.external import ForwardError, check_url


@pytest.mark.parametrize(
    "host",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:1",  # local-use NAT64 prefix: refused whatever it embeds
        "64:ff9b:1::808:808",
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",
    ],
)
def test_embedded_private_ipv4_is_refused(host: str) -> None:
    with pytest.raises(ForwardError) as caught:
        check_url(f"http://[{host}]:8080/", allow_private=False)
    assert caught.value.code == "upstream:private-address"


def test_nat64_of_a_public_address_stays_allowed() -> None:
    target = check_url("http://[64:ff9b::808:808]:8080/", allow_private=False)
    assert target.addresses == ("64:ff9b::808:808",)
