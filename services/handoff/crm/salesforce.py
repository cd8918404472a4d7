"""Salesforce: OAuth 2.0 client credentials, Lead upsert by external id, a Task with the breakdown.

    POST {login_url}/services/oauth2/token           grant_type=client_credentials
    PATCH {instance}/services/data/vNN.N/sobjects/Lead/{ExtIdField}/{lead id}
        201 created · 200 (v46+) or 204 updated · 300 several records match the id
    GET   {instance}/services/data/vNN.N/query?q=SELECT Id FROM Task WHERE ...
    POST  {instance}/services/data/vNN.N/sobjects/Task

The token is cached and fetched again once when the API says 401 (expired
session). A 300 is a MultipleMatchError: permanent, so the hand-off goes
to the dead-letter topic at once instead of retrying into the same answer.
Before creating the Task we look for one carrying this hand-off id, so a
retry after a crash does not add a second Task.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from schemas.data import HandoffRequestedData
from services.handoff.crm.base import CrmRecord, breakdown_text
from services.handoff.crm.http import fail, send
from services.handoff.errors import AuthenticationError, MultipleMatchError

TARGET = "salesforce"


@dataclass(frozen=True, slots=True)
class SalesforceConfig:
    login_url: str
    client_id: str
    client_secret: str
    api_version: str = "62.0"
    external_id_field: str = "Hotlead_Lead_Id__c"


class SalesforceCrm:
    name = "Salesforce"

    def __init__(self, config: SalesforceConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client
        self._token: str | None = None
        self._instance_url: str | None = None

    async def _authenticate(self) -> None:
        response = await send(
            self._client,
            TARGET,
            "POST",
            f"{self._config.login_url.rstrip('/')}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
            },
        )
        if response.status_code in (400, 401):
            raise AuthenticationError(
                TARGET,
                f"the token endpoint refused the client credentials ({response.text[:200]}); "
                "check HOTLEAD_SALESFORCE_CLIENT_ID / _CLIENT_SECRET",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise fail(TARGET, response)
        body = response.json()
        self._token = body["access_token"]
        self._instance_url = body["instance_url"].rstrip("/")

    def _api(self, path: str) -> str:
        return f"{self._instance_url}/services/data/v{self._config.api_version}/{path}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An API call with the cached token; one fresh token on 401, then the answer."""
        for fresh in (False, True):
            if self._token is None or fresh:
                await self._authenticate()
            headers = {"Authorization": f"Bearer {self._token}"}
            response = await send(
                self._client, TARGET, method, self._api(path), headers=headers, **kwargs
            )
            if response.status_code != 401:
                return response
        return response

    def record_url(self, record_id: str) -> str:
        return f"{self._instance_url}/{record_id}"

    async def upsert_lead(self, handoff: HandoffRequestedData, owner_id: str | None) -> CrmRecord:
        path = (
            f"sobjects/Lead/{quote(self._config.external_id_field, safe='')}/"
            f"{quote(handoff.lead_id, safe='')}"
        )
        response = await self._call("PATCH", path, json=lead_fields(handoff, owner_id))
        if response.status_code == 300:
            raise MultipleMatchError(
                TARGET,
                f"{len(_as_list(response))} Leads have {self._config.external_id_field} = "
                f"{handoff.lead_id}; merge them in Salesforce, then redrive",
                status=300,
            )
        if response.status_code in (200, 201):
            body = response.json()
            record_id = body["id"]
            created = bool(body.get("created", response.status_code == 201))
        elif response.status_code == 204:  # before API 46.0 an update has no body: look the id up
            record_id = await self._find_lead_id(path)
            created = False
        else:
            raise fail(TARGET, response)
        return CrmRecord(record_id, created, self.record_url(record_id))

    async def _find_lead_id(self, path: str) -> str:
        response = await self._call("GET", path, params={"fields": "Id"})
        if response.status_code != 200:
            raise fail(TARGET, response)
        return str(response.json()["Id"])

    async def record_breakdown(
        self, handoff: HandoffRequestedData, record: CrmRecord, owner_id: str | None
    ) -> str:
        subject = task_subject(handoff)
        # Both values are escaped for SOQL string literals (_soql): not an injection.
        soql = f"SELECT Id FROM Task WHERE WhoId = '{_soql(record.record_id)}' AND Subject = '{_soql(subject)}'"  # noqa: S608, E501
        found = await self._call("GET", "query", params={"q": soql})
        if found.status_code != 200:
            raise fail(TARGET, found)
        records = found.json().get("records", [])
        if records:
            return str(records[0]["Id"])
        task: dict[str, Any] = {
            "WhoId": record.record_id,
            "Subject": subject,
            "Description": breakdown_text(handoff),
            "Status": "Not Started",
            "Priority": "High",
        }
        if owner_id:
            task["OwnerId"] = owner_id
        response = await self._call("POST", "sobjects/Task", json=task)
        if response.status_code != 201:
            raise fail(TARGET, response)
        return str(response.json()["id"])


def task_subject(handoff: HandoffRequestedData) -> str:
    return f"Hot lead: follow up ({handoff.handoff_id})"


def lead_fields(handoff: HandoffRequestedData, owner_id: str | None) -> dict[str, Any]:
    lead = handoff.lead
    fields: dict[str, Any] = {
        "LastName": lead.last_name or lead.email or handoff.lead_id,
        "Company": lead.company or "(unknown)",
        "LeadSource": "hotlead",
        "Rating": "Hot",
        "Description": f"{handoff.reason.detail} (score {handoff.score:g})",
    }
    optional = {
        "FirstName": lead.first_name,
        "Email": lead.email,
        "Title": lead.job_title,
        "Industry": lead.industry,
        "NumberOfEmployees": lead.company_size,
        "CountryCode": lead.country,
        "OwnerId": owner_id,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    return fields


def _soql(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _as_list(response: httpx.Response) -> list[Any]:
    try:
        body = response.json()
    except ValueError:
        return []
    return body if isinstance(body, list) else []
