"""Settings of the ingest service (HOTLEAD_* environment variables), built once in main."""

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr

from services.common.errors import ConfigurationError
from services.common.kafka_settings import KafkaSettings
from services.ingest.errors import MintError
from services.ingest.tokens import Keyring

DEV_TOKEN_KEYS = "dev:hotlead-development-only-token-key"  # noqa: S105 (refused in production)
DEV_API_KEYS = "dev:hotlead-development-only-api-key"  # (refused in production)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _items(spec: str) -> list[str]:
    return [item.strip() for item in spec.split(",") if item.strip()]


class IngestSettings(KafkaSettings):
    """The ingest service: HTTP, tokens, API keys, webhooks, limits."""

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses to start with the built-in development keys.",
    )
    ingest_host: str = Field(
        default="127.0.0.1", description="Address `hotlead ingest` listens on."
    )
    ingest_port: int = Field(
        default=8000, ge=1, le=65535, description="Port `hotlead ingest` listens on."
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of this service as email recipients reach it (for minted URLs).",
    )
    ingest_http: Literal["auto", "h11", "httptools"] = Field(
        default="auto",
        description="uvicorn's HTTP parser (`auto`: httptools when installed).",
    )
    ingest_log_level: str = Field(default="INFO", description="Log level of the JSON logs.")
    token_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Pixel/click signing keys, `kid:secret,kid:secret` (secrets >= 16 bytes). "
        "Empty in development: a built-in key.",
    )
    token_active_key: str = Field(
        default="", description="Key id new tokens are minted with; default: the first key."
    )
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="API keys per source, `source:key,source:key`, sent as "
        "`Authorization: Bearer <key>`. Empty in development: source `dev`, a built-in key.",
    )
    sendgrid_public_key: SecretStr = Field(
        default=SecretStr(""),
        description="SendGrid's signed event webhook verification key (base64 DER). "
        "Empty: /webhooks/sendgrid refuses every request.",
    )
    webhook_secrets: SecretStr = Field(
        default=SecretStr(""),
        description="Standard Webhooks secrets for /webhooks/generic, `whsec_...` "
        "comma-separated (several while rotating). Empty: the route refuses every request.",
    )
    webhook_tolerance_s: int = Field(
        default=300, ge=1, description="Max age (and clock skew) of a signed webhook, seconds."
    )
    beacon_origins: str = Field(
        default="",
        description="Site origins allowed to send the browser beacon, comma-separated "
        "(`https://www.example.com`); `*` allows any.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest body of the API and webhook routes."
    )
    max_batch_events: int = Field(
        default=1000, ge=1, description="Most events in one POST /v1/events batch."
    )
    max_beacon_bytes: int = Field(default=16_384, ge=256, description="Largest beacon body.")
    client_rate_per_s: float = Field(
        default=20.0, gt=0, description="Sustained requests/s per client address on public routes."
    )
    client_burst: int = Field(default=100, ge=1, description="Burst per client address.")
    source_rate_per_s: float = Field(
        default=500.0, gt=0, description="Sustained requests/s per API key source."
    )
    source_burst: int = Field(default=1000, ge=1, description="Burst per API key source.")
    publish_timeout_s: float = Field(
        default=5.0, gt=0, description="How long a route waits for Kafka before answering 503."
    )
    retry_after_s: int = Field(
        default=5, ge=1, description="Retry-After sent with 503 when Kafka is unavailable."
    )
    dedupe_capacity: int = Field(
        default=200_000, ge=0, description="Event ids remembered per process for idempotence."
    )

    def keyring(self) -> Keyring:
        spec = self.token_keys.get_secret_value() or self._dev(DEV_TOKEN_KEYS, "TOKEN_KEYS")
        try:
            return Keyring.parse(spec, self.token_active_key or None)
        except MintError as exc:
            raise ConfigurationError(f"HOTLEAD_TOKEN_KEYS: {exc}") from None

    def api_key_sources(self) -> dict[str, str]:
        """API key -> source name."""
        spec = self.api_keys.get_secret_value() or self._dev(DEV_API_KEYS, "API_KEYS")
        sources: dict[str, str] = {}
        for item in _items(spec):
            source, sep, key = item.partition(":")
            if not sep or not source or len(key) < 16:
                raise ConfigurationError(
                    "HOTLEAD_API_KEYS: write `source:key` pairs, keys of at least 16 characters"
                )
            sources[key] = source
        return sources

    def origins(self) -> list[str]:
        return [origin.rstrip("/") for origin in _items(self.beacon_origins)]

    def proxy_networks(self) -> list[Network]:
        try:
            return [
                ipaddress.ip_network(item, strict=False) for item in _items(self.trusted_proxies)
            ]
        except ValueError as exc:
            raise ConfigurationError(f"HOTLEAD_TRUSTED_PROXIES: {exc}") from None

    def _dev(self, default: str, name: str) -> str:
        if self.environment == "production":
            raise ConfigurationError(f"HOTLEAD_{name} must be set in production")
        return default
