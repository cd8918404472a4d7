"""A webhook receiver that verifies Standard Webhooks signatures (the receiving side's check,
written independently of services/handoff/crm/webhook.py)."""

import base64
import hashlib
import hmac
import time
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from tests.handoff.fakes.base import FakeServer

TOLERANCE_S = 300


class FakeWebhookReceiver(FakeServer):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.deliveries: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.app.router.add_post("/hooks/hotlead", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        msg_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "0")
        body = await request.read()
        if abs(time.time() - int(stamp)) > TOLERANCE_S:
            return web.json_response({"error": "stale timestamp"}, status=400)
        expected = base64.b64encode(
            hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        offered = [
            sig.split(",", 1)[1]
            for sig in request.headers.get("webhook-signature", "").split()
            if sig.startswith("v1,")
        ]
        if not any(hmac.compare_digest(expected, sig) for sig in offered):
            return web.json_response({"error": "bad signature"}, status=401)
        self.deliveries[msg_id] += 1
        self.bodies.append(orjson.loads(body))
        return web.json_response({"record_id": f"ext-{msg_id}"}, status=200)
