"""HubSpot: private-app token, contact upsert by a unique property, a note with the breakdown.

    POST {base}{objects}/contacts/batch/upsert
         {"inputs": [{"idProperty": "email", "id": "<email>", "properties": {...}}]}
    POST {base}{objects}/notes   (associated with the contact)

{objects} is `/crm/v3/objects` for a numbered version (`v3`, the default) and
`/crm/objects/2026-03` for a date-based one: the version is configurable
because HubSpot moves its API paths.
The upsert key is `email` by default, or any property marked unique in the
portal (e.g. a `hotlead_lead_id`), so a retry updates the same contact.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from schemas.data import HandoffRequestedData
from services.handoff.crm.base import CrmRecord, breakdown_text
from services.handoff.crm.http import fail, send
from services.handoff.errors import PermanentDeliveryError

TARGET = "hubspot"
NOTE_TO_CONTACT = 202
"""HubSpot-defined association type id: note -> contact."""


@dataclass(frozen=True, slots=True)
class HubSpotConfig:
    token: str
    base_url: str = "https://api.hubapi.com"
    api_version: str = "v3"
    id_property: str = "email"
    portal_id: str | None = None
    """For links to the record in the HubSpot app; none: no link."""


class HubSpotCrm:
    name = "HubSpot"

    def __init__(self, config: HubSpotConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client

    def _url(self, path: str) -> str:
        return f"{self._config.base_url.rstrip('/')}{objects_path(self._config.api_version)}/{path}"

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._config.token}"}
        return await send(self._client, TARGET, "POST", self._url(path), json=body, headers=headers)

    def _key(self, handoff: HandoffRequestedData) -> str:
        if self._config.id_property == "email":
            if handoff.lead.email is None:
                raise PermanentDeliveryError(
                    TARGET, f"lead {handoff.lead_id} has no email, the upsert key"
                )
            return handoff.lead.email
        return handoff.lead_id

    async def upsert_lead(self, handoff: HandoffRequestedData, owner_id: str | None) -> CrmRecord:
        body = {
            "inputs": [
                {
                    "idProperty": self._config.id_property,
                    "id": self._key(handoff),
                    "properties": contact_properties(handoff, owner_id, self._config.id_property),
                }
            ]
        }
        response = await self._post("contacts/batch/upsert", body)
        if response.status_code not in (200, 201):
            raise fail(TARGET, response)
        result = response.json()["results"][0]
        record_id = str(result["id"])
        return CrmRecord(record_id, bool(result.get("new", False)), self._record_url(record_id))

    def _record_url(self, record_id: str) -> str | None:
        if self._config.portal_id is None:
            return None
        return f"https://app.hubspot.com/contacts/{self._config.portal_id}/record/0-1/{record_id}"

    async def record_breakdown(
        self, handoff: HandoffRequestedData, record: CrmRecord, owner_id: str | None
    ) -> str:
        properties: dict[str, Any] = {
            "hs_timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "hs_note_body": breakdown_text(handoff).replace("\n", "<br>"),
        }
        if owner_id:
            properties["hubspot_owner_id"] = owner_id
        body = {
            "properties": properties,
            "associations": [
                {
                    "to": {"id": record.record_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": NOTE_TO_CONTACT,
                        }
                    ],
                }
            ],
        }
        response = await self._post("notes", body)
        if response.status_code != 201:
            raise fail(TARGET, response)
        return str(response.json()["id"])


def objects_path(api_version: str) -> str:
    """`/crm/v3/objects` for the numbered versions, `/crm/objects/2026-03` for the
    date-based ones HubSpot introduced later."""
    if re.fullmatch(r"v\d+", api_version):
        return f"/crm/{api_version}/objects"
    return f"/crm/objects/{api_version}"


def contact_properties(
    handoff: HandoffRequestedData, owner_id: str | None, id_property: str
) -> dict[str, Any]:
    lead = handoff.lead
    values: dict[str, Any] = {
        "email": lead.email,
        "firstname": lead.first_name,
        "lastname": lead.last_name,
        "company": lead.company,
        "jobtitle": lead.job_title,
        "industry": lead.industry,
        "numemployees": lead.company_size,
        "country": lead.country,
        "hubspot_owner_id": owner_id,
        "hs_lead_status": "NEW",
        "lifecyclestage": "salesqualifiedlead",
    }
    if id_property != "email":
        values[id_property] = handoff.lead_id
    return {key: value for key, value in values.items() if value is not None}
