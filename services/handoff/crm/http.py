"""HTTP plumbing shared by the connectors: transport failures and statuses -> DeliveryError."""

from typing import Any

import httpx

from services.handoff.errors import TransientDeliveryError, classify_status


async def send(
    client: httpx.AsyncClient, target: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request; a timeout or a broken connection is a transient DeliveryError."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientDeliveryError(target, f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientDeliveryError(target, f"connection failed ({type(exc).__name__})") from exc


def fail(target: str, response: httpx.Response) -> Exception:
    """The DeliveryError for a response that was not a success."""
    body = response.text[:300].replace("\n", " ")
    return classify_status(
        target,
        response.status_code,
        body or response.reason_phrase,
        response.headers.get("retry-after"),
    )
