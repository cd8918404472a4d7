"""The OpenAPI document is the contract: schemathesis generates requests for every
operation and finds no 5xx and no status the document does not list."""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.common.publisher import MemoryPublisher
from services.ingest.app import create_app
from tests.ingest.conftest import API_KEY, ORIGIN, make_settings

APP = create_app(make_settings(), MemoryPublisher())
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_contract(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {API_KEY}", "Origin": ORIGIN}, checks=CHECKS
    )


def test_the_document_lists_every_public_route() -> None:
    paths = set(SCHEMA.raw_schema["paths"])
    assert paths == {
        "/o/{token}.gif", "/c/{token}", "/hotlead.js", "/b", "/v1/events",
        "/v1/leads/{lead_id}", "/v1/crm/feedback", "/webhooks/sendgrid", "/webhooks/generic",
        "/healthz", "/readyz", "/metrics",
    }  # fmt: skip
