"""Start and stop the baseline chain's three processes (see baseline_chain.py)."""

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator

import httpx

from benchmarks.pipeline_bench import Target
from services.common.topics import TopicSpec, delete_topics, ensure_topics


@contextlib.asynccontextmanager
async def baseline_chain(
    bootstrap: str, receiver_url: str, *, port: int, partitions: int = 12
) -> AsyncIterator[Target]:
    run = uuid.uuid4().hex[:6]
    topic_a, topic_b = f"bench-{run}.a", f"bench-{run}.b"
    await ensure_topics(
        bootstrap, [TopicSpec(topic_a, partitions, 1), TopicSpec(topic_b, partitions, 1)]
    )
    module = [sys.executable, "-m", "benchmarks.baseline_chain"]
    roles = [
        ["ingest", bootstrap, topic_a, str(port)],
        ["relay", bootstrap, topic_a, topic_b, f"bench-{run}-relay"],
        ["notify", bootstrap, topic_b, f"bench-{run}-notify", receiver_url],
    ]
    processes = [
        await asyncio.create_subprocess_exec(*module, *role, start_new_session=True)
        for role in roles
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/healthz")).is_success:
                        break
                await asyncio.sleep(0.1)
            # the consumers start at the latest offset: let them join before measuring
            await asyncio.sleep(5)
        sessions = tuple((role[0], p.pid) for role, p in zip(roles, processes, strict=True))
        yield Target("baseline", "127.0.0.1", port, "/e", "", bootstrap, sessions=sessions)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            await process.wait()
        await delete_topics(bootstrap, [topic_a, topic_b])
