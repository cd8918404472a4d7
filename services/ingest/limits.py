"""Rate limits and the client's address (pure: the clock is passed in)."""

import ipaddress
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class RateLimiter:
    """A token bucket per key: `rate_per_s` sustained, `burst` at once.

    Memory is bounded: at most `max_keys` buckets, the least recently used
    forgotten first (a forgotten key starts again with a full bucket).
    """

    rate_per_s: float
    burst: int
    max_keys: int = 100_000
    _buckets: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)
    """Per key: [tokens, time of the last update] (updated in place)."""

    def acquire(self, key: str, now_s: float) -> float:
        """0 when allowed; else the seconds to wait before the next request may pass."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = [float(self.burst), now_s]
            while len(buckets) > self.max_keys:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)  # the most recently used
        tokens = bucket[0]
        if now_s > bucket[1]:
            tokens = min(float(self.burst), tokens + (now_s - bucket[1]) * self.rate_per_s)
        if tokens >= 1.0:
            wait = 0.0
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate_per_s
        bucket[0], bucket[1] = tokens, now_s
        return wait


def retry_after(wait_s: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(wait_s))


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy; then the
    right-most address of X-Forwarded-For that is not itself a trusted proxy."""
    if not trusted or not forwarded_for or not peer:
        return peer
    peer_ip = _parse(peer)
    if peer_ip is None:
        return peer
    if not any(peer_ip in network for network in trusted):
        return peer
    hops = [hop for hop in (h.strip() for h in forwarded_for.split(",")) if hop]
    chosen = peer
    for hop in reversed(hops):
        hop_ip = _parse(hop)
        if hop_ip is None:
            break
        chosen = str(hop_ip)
        if not any(hop_ip in network for network in trusted):
            break
    return chosen
