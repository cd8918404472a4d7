"""`make bench` (pipeline part): behaviour in -> alert out, under a fixed open-loop load.

hotlead: ingest, scorer and handoff as real processes (the make-run supervisor),
on the real broker, their own topics; each request is one `page.viewed` for a
new lead, which the bench rules qualify at once, so each ends in one Slack
webhook post to the receiver. Latency: from ingest's 2xx to the receiver's
arrival, on the bench process' clock.

Baseline, in the same run: the same hops with bare aiokafka and one HTTP POST
(benchmarks/baseline_chain.py).

Run: .venv/bin/python -m benchmarks.bench_pipeline [--rates 250,500,1000] [--seconds 10]
Writes docs/BENCHMARKS.md (pipeline section) and docs/pipeline-latency.png.
"""

import argparse
import asyncio
import io
import os
import re
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.baseline_runner import baseline_chain
from benchmarks.pipeline_bench import Measurement, RequestFor, measure
from benchmarks.receiver import Receiver
from benchmarks.report import free_port, hardware, write_section
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_specs
from services.ingest.settings import DEV_API_KEYS
from services.stack.supervisor import ProcessSpec, Supervisor

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"
CHART = ROOT / "docs" / "pipeline-latency.png"
BEGIN, END = "<!-- pipeline-bench:begin -->", "<!-- pipeline-bench:end -->"
RULES = Path(__file__).resolve().parent / "pipeline_rules.yaml"
API_KEY = DEV_API_KEYS.split(":", 1)[1]
HANDOFF_ID = re.compile(rb"ho-(b[0-9a-f]{6}-\d+)-1")


def alert_ids(body: bytes) -> list[str]:
    return sorted({match.decode() for match in HANDOFF_ID.findall(body)})


@asynccontextmanager
async def hotlead_pipeline(
    bootstrap: str, receiver: Receiver, partitions: int
) -> AsyncIterator[RequestFor]:
    run = uuid.uuid4().hex[:6]
    kafka = KafkaSettings(
        kafka_bootstrap=bootstrap, topic_prefix=f"bench-{run}.", events_partitions=partitions,
        partitions=partitions,
    )  # fmt: skip
    specs = topic_specs(kafka)
    await ensure_topics(bootstrap, specs)
    ingest_port, scorer_port, handoff_port = free_port(), free_port(), free_port()
    common = {
        "HOTLEAD_KAFKA_BOOTSTRAP": bootstrap,
        "HOTLEAD_TOPIC_PREFIX": kafka.topic_prefix,
        "HOTLEAD_PARTITIONS": str(partitions),
        "HOTLEAD_EVENTS_PARTITIONS": str(partitions),
    }
    hotlead = [sys.executable, "-m", "services.cli"]
    log = io.StringIO()
    with tempfile.TemporaryDirectory() as datadir:
        supervisor = Supervisor(
            [
                ProcessSpec(
                    "ingest", [*hotlead, "ingest", "--port", str(ingest_port)],
                    ready_url=f"http://127.0.0.1:{ingest_port}/readyz",
                    env={**common, "HOTLEAD_INGEST_LOG_LEVEL": "WARNING",
                         "HOTLEAD_SOURCE_RATE_PER_S": "100000", "HOTLEAD_SOURCE_BURST": "100000"},
                ),
                ProcessSpec(
                    "scorer", [*hotlead, "scorer"],
                    ready_url=f"http://127.0.0.1:{scorer_port}/metrics",
                    env={**common, "HOTLEAD_SCORER_APP_ID": f"bench-scorer-{run}",
                         "HOTLEAD_SCORER_WEB_PORT": str(scorer_port),
                         "HOTLEAD_SCORER_DATADIR": datadir, "HOTLEAD_SCORER_RULES_FILE": str(RULES),
                         "HOTLEAD_SCORER_LOG_LEVEL": "WARNING"},
                ),
                ProcessSpec(
                    "handoff", [*hotlead, "handoff"],
                    ready_url=f"http://127.0.0.1:{handoff_port}/readyz",
                    env={**common, "HOTLEAD_HANDOFF_PORT": str(handoff_port),
                         "HOTLEAD_HANDOFF_GROUP_ID": f"bench-handoff-{run}",
                         "HOTLEAD_SLACK_WEBHOOK_URL": f"{receiver.url}/webhook",
                         "HOTLEAD_SLACK_CHANNEL_RATE_PER_S": "1000000",
                         "HOTLEAD_HANDOFF_LOG_LEVEL": "WARNING"},
                ),
            ],
            ready_timeout_s=180,
            out=log,
        )  # fmt: skip
        running = asyncio.ensure_future(supervisor.run())
        ready = asyncio.ensure_future(supervisor.ready.wait())
        await asyncio.wait([running, ready], return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            raise SystemExit(f"bench: the hotlead pipeline did not start:\n{log.getvalue()}")
        await asyncio.sleep(5)  # let the consumer groups settle before measuring

        async def request_for(client: httpx.AsyncClient, ident: str) -> httpx.Response:
            event = {"id": ident, "type": "page.viewed", "lead_id": ident,
                     "data": {"url": "https://www.example.com/bench"}}  # fmt: skip
            return await client.post(
                f"http://127.0.0.1:{ingest_port}/v1/events",
                json={"events": [event]},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )

        try:
            yield request_for
        finally:
            supervisor.request_stop()
            await running
            await delete_topics(bootstrap, [spec.name for spec in specs])


def chart(results: list[Measurement]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for chain, style in (("hotlead", "o-"), ("baseline", "s--")):
        rows = [m for m in results if m.chain == chain and m.delivered]
        for q in (50, 99):
            ax.plot([m.rate for m in rows], [m.p(q) for m in rows], style,
                    label=f"{chain} p{q}")  # fmt: skip
    ax.set_xlabel("offered load (events/s, open loop)")
    ax.set_ylabel("ingest 2xx -> Slack receipt (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Event -> alert latency against load")
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)


def write_doc(results: list[Measurement], seconds: float, partitions: int) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Pipeline: event -> Slack alert",
        "",
        f"Measured {when} by `make bench` (`python -m benchmarks.bench_pipeline`) on "
        f"{hardware()}, with the local single-node Kafka broker, the three services and the "
        "load generator all on this machine.",
        "",
        "| chain | offered events/s | achieved events/s | p50 ms | p99 ms | p99.9 ms | lost | "
        "failed | sustained |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *[m.row() for m in results],
        "",
    ]
    for rate in sorted({m.rate for m in results}):
        pair = {m.chain: m for m in results if m.rate == rate}
        if "hotlead" in pair and "baseline" in pair and pair["baseline"].delivered:
            ratio = pair["hotlead"].p(99) / pair["baseline"].p(99)
            lines.append(f"- at {rate:,.0f} events/s, hotlead's p99 is {ratio:.1f}x the baseline's")
    sustained = [m.rate for m in results if m.chain == "hotlead" and m.sustained and m.p(99) < 250]
    lines += [
        "",
        f"Highest offered rate that hotlead sustained with p99 < 250 ms: "
        f"{max(sustained):,.0f} events/s."
        if sustained
        else "hotlead sustained none of the offered rates with p99 < 250 ms.",
        "",
        "Method: an open-loop generator (requests leave on a fixed schedule, each its own "
        "task, so a slow pipeline cannot slow its own load) sends one event per request for "
        f"{seconds:.0f} s per rate; each event is a new lead that the bench rules "
        "(`benchmarks/pipeline_rules.yaml`) qualify at once. Latency is measured from the "
        "ingest's 2xx (Kafka acknowledged) to the fake Slack webhook receiving the alert, "
        "both on the bench process' clock. `sustained`: every request left on time "
        "(within 100 ms), none failed, every acknowledged event was alerted. "
        f"Topics with {partitions} partitions. The baseline runs the same hops with bare "
        "aiokafka (HTTP -> topic -> relay -> topic -> one HTTP POST), in the same run, so the "
        "ratio holds on a noisy shared machine. Rates go up until a chain is overloaded "
        "(not sustained and p99 over 1 s); higher rates are then not run for that chain.",
        "",
        "![latency against load](pipeline-latency.png)",
    ]
    write_section(BEGIN, END, lines, DOC)


async def main(rates: list[float], seconds: float, partitions: int) -> list[Measurement]:
    bootstrap = os.environ.get("HOTLEAD_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    results: list[Measurement] = []
    for chain in ("baseline", "hotlead"):
        receiver = Receiver(
            alert_ids if chain == "hotlead" else lambda b: [b.decode()], port=free_port()
        )
        await receiver.start()
        try:
            context = (
                hotlead_pipeline(bootstrap, receiver, partitions)
                if chain == "hotlead"
                else baseline_chain(bootstrap, f"{receiver.url}/receive", port=free_port(),
                                    partitions=partitions)
            )  # fmt: skip
            async with context as request_for:
                for rate in rates:
                    m = await measure(chain, request_for, receiver, rate=rate, duration_s=seconds)
                    print(m.row(), flush=True)
                    results.append(m)
                    if not m.sustained and m.p(99) > 1000:
                        break  # overloaded: a backlog would spoil the higher rates
        finally:
            await receiver.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,250,500,1000,2000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    results = asyncio.run(main(rates, args.seconds, args.partitions))
    write_doc(results, args.seconds, args.partitions)
    chart(results)
    print(f"wrote {DOC} and {CHART}")
