"""Ingest test helpers: settings with known keys, an app on a MemoryPublisher, signing."""

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from services.common.publisher import MemoryPublisher
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.ingest.tokens import Keyring

TOKEN_KEYS = "t1:test-token-secret-0123456789"
API_KEY = "crm-key-0123456789abcdef"
OTHER_API_KEY = "shop-key-0123456789abcdef"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"generic-webhook-secret-01234").decode()
SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
ORIGIN = "http://127.0.0.1:5555"
KEYRING = Keyring.parse(TOKEN_KEYS)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def make_settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "environment": "production",
        "token_keys": TOKEN_KEYS,
        "api_keys": f"crm:{API_KEY},shop:{OTHER_API_KEY}",
        "sendgrid_public_key": SENDGRID_PUBLIC,
        "webhook_secrets": WEBHOOK_SECRET,
        "beacon_origins": ORIGIN,
        "public_base_url": "http://ingest.test",
        "topic_prefix": "unit.",
        "client_rate_per_s": 1000.0,
        "client_burst": 1000,
        **overrides,
    }
    return IngestSettings(**values)


def sendgrid_headers(body: bytes, timestamp: int) -> dict[str, str]:
    signature = SENDGRID_PRIVATE.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
        "Content-Type": "application/json",
    }


def client_for(app: FastAPI, peer: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest.test")


@pytest.fixture
def memory() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
async def app(memory: MemoryPublisher) -> FastAPI:
    return create_app(make_settings(), memory)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http
