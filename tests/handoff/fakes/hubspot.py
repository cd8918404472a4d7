"""A fake HubSpot CRM API: private-app Bearer token, contacts batch upsert by a unique property,
notes associated with contacts, only under the configured API version path."""

import itertools
from collections import Counter
from typing import Any

from aiohttp import web

from tests.handoff.fakes.base import FakeServer


class FakeHubSpot(FakeServer):
    def __init__(
        self,
        token: str = "pat-na1-test",
        api_version: str = "v3",
        unique: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.token = token
        self.unique_properties = {"email", *unique}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.creates: Counter[str] = Counter()
        self._ids = itertools.count(1001)
        # numbered versions: /crm/v3/objects/...; date-based ones: /crm/objects/2026-03/...
        base = (
            f"/crm/{api_version}/objects"
            if api_version.startswith("v")
            else f"/crm/objects/{api_version}"
        )
        self.app.router.add_post(base + "/contacts/batch/upsert", self._upsert)
        self.app.router.add_post(base + "/notes", self._note)

    def _authorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            return None
        return web.json_response(
            {
                "status": "error",
                "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION",
            },
            status=401,
        )

    async def _upsert(self, request: web.Request) -> web.Response:
        if (denied := self._authorized(request)) is not None:
            return denied
        body = await request.json()
        results = []
        for item in body["inputs"]:
            prop = item["idProperty"]
            if prop not in self.unique_properties:
                return web.json_response(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"{prop} is not a unique property",
                    },
                    status=400,
                )
            key = str(item["id"])
            found = next((cid for cid, c in self.contacts.items() if str(c.get(prop)) == key), None)
            properties = {**item["properties"], prop: key}
            if found is None:
                found = str(next(self._ids))
                self.contacts[found] = properties
                self.creates[key] += 1
                new = True
            else:
                self.contacts[found].update(properties)
                new = False
            results.append({"id": found, "properties": self.contacts[found], "new": new})
        return web.json_response({"status": "COMPLETE", "results": results}, status=200)

    async def _note(self, request: web.Request) -> web.Response:
        if (denied := self._authorized(request)) is not None:
            return denied
        body = await request.json()
        targets = [a["to"]["id"] for a in body.get("associations", [])]
        if not targets or any(t not in self.contacts for t in targets):
            return web.json_response(
                {"status": "error", "category": "VALIDATION_ERROR", "message": "bad association"},
                status=400,
            )
        note_id = str(next(self._ids))
        self.notes[note_id] = body
        return web.json_response({"id": note_id, "properties": body["properties"]}, status=201)
