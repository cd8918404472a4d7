"""Which opens and clicks a machine made, and why (pure: the clock is passed in).

Machine events are flagged with a reason (the CloudEvents `bot` extension),
still answered normally (GIF, redirect), and never dropped: the scorer
decides what they are worth. Reasons:

- `apple_mpp`: Apple Mail Privacy Protection fetched the pixel (Apple's proxy:
  user agent exactly `Mozilla/5.0`, or an address in 17.0.0.0/8)
- `prefetch`: a browser or client prefetched (`Purpose`, `Sec-Purpose`,
  `X-Moz`, `X-Purpose` headers)
- `head_request`: a HEAD request (link checkers, never a person)
- `link_scanner`: a security scanner or bot user agent (Proofpoint, Mimecast,
  Safe Links, curl, ...) or none at all
- `click_burst`: several different links of one email within about a second
- `machine_open`: the email provider says so (SendGrid `sg_machine_open`)

Gmail's and Yahoo's image proxies fetch the pixel when a person opens the
email, so they count as human opens.
"""

import functools
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
HUMAN_PROXIES = re.compile(r"GoogleImageProxy|YahooMailProxy|ggpht\.com", re.IGNORECASE)
SCANNER_AGENTS = re.compile(
    r"barracuda|proofpoint|mimecast|symantec|messagelabs|forcepoint|trendmicro|trend micro"
    r"|fireeye|sophos|zscaler|safelinks|safe links|microsoft office protocol discovery"
    r"|bingpreview|headlesschrome|phantomjs|python-requests|python-urllib|aiohttp|httpx"
    r"|curl/|wget/|go-http-client|java/|okhttp|libwww-perl|apache-httpclient|node-fetch"
    r"|slackbot|facebookexternalhit|twitterbot|linkedinbot|whatsapp|discordbot|telegrambot"
    r"|bot\b|bot/|crawler|spider|scanner",
    re.IGNORECASE,
)
PREFETCH_HEADERS = ("purpose", "sec-purpose", "x-moz", "x-purpose")
PREFETCH_VALUES = re.compile(r"prefetch|prerender|preview", re.IGNORECASE)


class BotReason(StrEnum):
    APPLE_MPP = "apple_mpp"
    PREFETCH = "prefetch"
    HEAD_REQUEST = "head_request"
    LINK_SCANNER = "link_scanner"
    CLICK_BURST = "click_burst"
    MACHINE_OPEN = "machine_open"


class RequestFacts(NamedTuple):
    """What the classifier looks at, taken from one HTTP request (immutable;
    a tuple because the pixel and the click make one per request)."""

    method: str = "GET"
    user_agent: str | None = None
    client_ip: str | None = None
    headers: Mapping[str, str] = MappingProxyType({})
    """Lower-case names; only the prefetch headers matter."""


def _is_prefetch(facts: RequestFacts) -> bool:
    return bool(facts.headers) and any(
        PREFETCH_VALUES.search(facts.headers.get(name, "")) for name in PREFETCH_HEADERS
    )


def _in_apple_network(client_ip: str | None) -> bool:
    if not client_ip or not (client_ip.startswith("17.") or ":" in client_ip):
        return False  # the common case, without parsing
    try:
        return ipaddress.ip_address(client_ip) in APPLE_NETWORK
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def _is_scanner(user_agent: str | None) -> bool:
    # Cached: a handful of user agents make most requests, and the pattern is long.
    agent = (user_agent or "").strip()
    return not agent or bool(SCANNER_AGENTS.search(agent))


@functools.lru_cache(maxsize=4096)
def _is_human_proxy(user_agent: str) -> bool:
    return bool(HUMAN_PROXIES.search(user_agent))


def classify_open(facts: RequestFacts) -> BotReason | None:
    """Why a pixel fetch was made by a machine, or None for a person's open."""
    agent = (facts.user_agent or "").strip()
    if facts.method.upper() == "HEAD":
        return BotReason.HEAD_REQUEST
    if _is_human_proxy(agent):
        return None
    if agent == "Mozilla/5.0" or _in_apple_network(facts.client_ip):
        return BotReason.APPLE_MPP
    if _is_prefetch(facts):
        return BotReason.PREFETCH
    if _is_scanner(agent):
        return BotReason.LINK_SCANNER
    return None


def classify_click(facts: RequestFacts, *, in_burst: bool = False) -> BotReason | None:
    """Why a click was made by a machine, or None for a person's click."""
    if facts.method.upper() == "HEAD":
        return BotReason.HEAD_REQUEST
    if _is_prefetch(facts):
        return BotReason.PREFETCH
    if _is_scanner(facts.user_agent):
        return BotReason.LINK_SCANNER
    if in_burst:
        return BotReason.CLICK_BURST
    return None


@dataclass
class ClickBurstDetector:
    """Remembers recent clicks per (lead, email) to spot a scanner following
    every link of an email at once. People do not click two different links of
    one email within a second; scanners do. The first click of a burst cannot
    be known as such yet and stays unflagged.

    Memory is bounded: at most `max_emails` (lead, email) pairs, oldest first out.
    """

    window_s: float = 1.0
    distinct_targets: int = 2
    max_emails: int = 100_000
    _recent: OrderedDict[tuple[str, str], list[tuple[float, str]]] = field(
        default_factory=OrderedDict
    )

    def observe(self, lead_id: str, email_key: str, target: str, now_s: float) -> bool:
        """Record a click at monotonic time `now_s`; True when it is part of a burst."""
        key = (lead_id, email_key)
        clicks = [c for c in self._recent.pop(key, []) if now_s - c[0] <= self.window_s]
        clicks.append((now_s, target))
        self._recent[key] = clicks[-32:]
        while len(self._recent) > self.max_emails:
            self._recent.popitem(last=False)
        return len({t for _, t in clicks}) >= self.distinct_targets
