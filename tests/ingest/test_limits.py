import ipaddress

import pytest

from services.ingest.limits import RateLimiter, client_address, retry_after

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


def test_a_bucket_allows_its_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.acquire("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a", 0.0) == pytest.approx(0.5)
    assert limiter.acquire("b", 0.0) == 0.0  # another client has its own bucket
    assert limiter.acquire("a", 0.5) == 0.0  # half a second buys one request
    assert limiter.acquire("a", 0.5) > 0


def test_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=5)
    for index in range(50):
        limiter.acquire(str(index), 0.0)
    assert len(limiter._buckets) == 5


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after(0.01) == 1
    assert retry_after(2.2) == 3


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: XFF ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # spoofed left part
        ("10.0.0.2", "10.0.0.5", "10.0.0.5"),
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("10.0.0.2", None, "10.0.0.2"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        (None, "198.51.100.1", None),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str | None, xff: str | None, expected: str | None
) -> None:
    assert client_address(peer, xff, PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("10.0.0.2", "198.51.100.1", []) == "10.0.0.2"
