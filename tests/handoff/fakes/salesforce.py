"""A fake Salesforce: OAuth 2.0 token endpoint, Lead upsert by external id, SOQL on Tasks, Tasks.

Behaves like the REST API where hotlead depends on it: client-credentials
grant (400 invalid_client on wrong secrets), Bearer sessions that can be
expired (401 INVALID_SESSION_ID), PATCH upsert by external id (201 created,
200 updated with a body, or 204 in `legacy_204` mode), 300 with the list of
matching records when the id is not unique, 400 REQUIRED_FIELD_MISSING.
"""

import itertools
import re
import secrets
from collections import Counter
from typing import Any

from aiohttp import web

from tests.handoff.fakes.base import FakeServer

SUBJECT = re.compile(r"Subject = '((?:[^'\\]|\\.)*)'")
WHO = re.compile(r"WhoId = '((?:[^'\\]|\\.)*)'")


class FakeSalesforce(FakeServer):
    def __init__(
        self,
        client_id: str = "hotlead-client",
        client_secret: str = "s3cret",
        external_id_field: str = "Hotlead_Lead_Id__c",
        api_version: str = "62.0",
    ) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.external_id_field = external_id_field
        self.api_version = api_version
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.leads: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.lead_creates: Counter[str] = Counter()
        self.legacy_204 = False
        self._ids = itertools.count(1)
        base = f"/services/data/v{api_version}"
        self.app.router.add_post("/services/oauth2/token", self._token)
        self.app.router.add_patch(base + "/sobjects/Lead/{field}/{value}", self._upsert)
        self.app.router.add_get(base + "/sobjects/Lead/{field}/{value}", self._get_by_ext)
        self.app.router.add_get(base + "/query", self._query)
        self.app.router.add_post(base + "/sobjects/Task", self._create_task)

    def expire_sessions(self) -> None:
        self.tokens.clear()

    def add_lead(self, external_id: str, **fields: Any) -> str:
        """A Lead made by someone else (e.g. a second one with the same external id)."""
        record_id = f"00Q{next(self._ids):012d}"
        self.leads[record_id] = {self.external_id_field: external_id, **fields}
        return record_id

    def leads_with(self, external_id: str) -> list[str]:
        return [
            rid for rid, f in self.leads.items() if f.get(self.external_id_field) == external_id
        ]

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                status=400,
            )
        token = secrets.token_hex(8)
        self.tokens.add(token)
        return web.json_response(
            {"access_token": token, "instance_url": self.url, "token_type": "Bearer"}
        )

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.json_response(
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            status=401,
        )

    async def _upsert(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        field, value = request.match_info["field"], request.match_info["value"]
        if field != self.external_id_field:
            return web.json_response(
                [
                    {
                        "errorCode": "NOT_FOUND",
                        "message": f"Provided external ID field does not exist: {field}",
                    }
                ],
                status=404,
            )
        body = await request.json()
        if field in body:
            return web.json_response(
                [{"errorCode": "INVALID_FIELD", "message": "external id in the body"}], status=400
            )
        matches = self.leads_with(value)
        if len(matches) > 1:
            urls = [f"/services/data/v{self.api_version}/sobjects/Lead/{rid}" for rid in matches]
            return web.json_response(urls, status=300)
        if matches:
            self.leads[matches[0]].update(body)
            if self.legacy_204:
                return web.Response(status=204)
            return web.json_response(
                {"id": matches[0], "success": True, "errors": [], "created": False}, status=200
            )
        missing = [f for f in ("LastName", "Company") if not body.get(f)]
        if missing:
            return web.json_response(
                [{"errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}], status=400
            )
        record_id = self.add_lead(value, **body)
        self.lead_creates[value] += 1
        return web.json_response(
            {"id": record_id, "success": True, "errors": [], "created": True}, status=201
        )

    async def _get_by_ext(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        matches = self.leads_with(request.match_info["value"])
        if not matches:
            return web.json_response([{"errorCode": "NOT_FOUND"}], status=404)
        return web.json_response({"attributes": {"type": "Lead"}, "Id": matches[0]})

    async def _query(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        soql = request.query.get("q", "")
        subject, who = SUBJECT.search(soql), WHO.search(soql)
        if not soql.startswith("SELECT Id FROM Task") or subject is None or who is None:
            return web.json_response([{"errorCode": "MALFORMED_QUERY"}], status=400)
        want = (who.group(1).replace("\\'", "'"), subject.group(1).replace("\\'", "'"))
        records = [
            {"attributes": {"type": "Task"}, "Id": tid}
            for tid, task in self.tasks.items()
            if (task.get("WhoId"), task.get("Subject")) == want
        ]
        return web.json_response({"totalSize": len(records), "done": True, "records": records})

    async def _create_task(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        if body.get("WhoId") not in self.leads:
            return web.json_response([{"errorCode": "INVALID_CROSS_REFERENCE_KEY"}], status=400)
        task_id = f"00T{next(self._ids):012d}"
        self.tasks[task_id] = body
        return web.json_response({"id": task_id, "success": True, "errors": []}, status=201)
