"""`hotlead ingest` (run the service) and `hotlead token` (mint pixel and click URLs)."""

import argparse
import sys

from services.ingest.errors import MintError
from services.ingest.settings import IngestSettings
from services.ingest.tokens import mint_click_url, mint_open_url


def _mint(args: argparse.Namespace) -> int:
    settings = IngestSettings()
    base_url = args.base_url or settings.public_base_url
    keyring = settings.keyring()
    try:
        if args.kind == "open":
            url = mint_open_url(
                base_url, keyring, args.lead, email_id=args.email_id, campaign_id=args.campaign_id
            )
        else:
            url = mint_click_url(
                base_url,
                keyring,
                args.lead,
                args.target,
                email_id=args.email_id,
                campaign_id=args.campaign_id,
            )
    except MintError as exc:
        print(f"hotlead token: {exc}", file=sys.stderr)
        return 2
    print(url)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from services.ingest.main import serve  # uvicorn is imported only to serve

    return serve(IngestSettings(), host=args.host, port=args.port)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ingest = commands.add_parser("ingest", help="run the ingest HTTP service (default port 8000)")
    ingest.add_argument("--host", help="listen address (default HOTLEAD_INGEST_HOST)")
    ingest.add_argument("--port", type=int, help="listen port (default HOTLEAD_INGEST_PORT)")
    ingest.set_defaults(run=_serve)

    token = commands.add_parser(
        "token", help="mint signed pixel and click URLs (keys from HOTLEAD_TOKEN_KEYS)"
    )
    kinds = token.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, help_text in (("open", "an open pixel URL"), ("click", "a tracked link")):
        parser = kinds.add_parser(kind, help=help_text)
        parser.add_argument("--lead", required=True, help="lead id (never an email address)")
        parser.add_argument("--email-id", help="which email (e.g. your ESP's message id)")
        parser.add_argument("--campaign-id", help="which campaign")
        parser.add_argument("--base-url", help="default HOTLEAD_PUBLIC_BASE_URL")
        if kind == "click":
            parser.add_argument("--target", required=True, help="http(s) URL to redirect to")
        parser.set_defaults(run=_mint)
