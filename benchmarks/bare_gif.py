"""The baseline for the pixel benchmark: a bare ASGI app that answers every
request with the same 1x1 GIF and headers as GET /o/{token}.gif, doing nothing else."""

from starlette.types import Receive, Scope, Send

from services.ingest.routes.tracking import GIF, NO_STORE

HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    *((name.lower().encode(), value.encode()) for name, value in NO_STORE.items()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": GIF})


def main() -> None:
    """Serve `app` as `hotlead ingest` serves the ingest (the same uvicorn
    options and HTTP protocol), on 127.0.0.1:PORT."""
    import argparse
    import asyncio

    import uvicorn

    from services.ingest.main import server_config

    parser = argparse.ArgumentParser(description="the bare GIF app, served like the ingest")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http", default="auto", help="uvicorn's HTTP protocol (as the ingest's)")
    args = parser.parse_args()
    config = server_config(app, host="127.0.0.1", port=args.port, http=args.http)
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
