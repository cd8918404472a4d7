"""What the pipeline bench's load generators cost: CPU seconds per 1,000 requests.

The generators share the machine with the chain they measure, so their own CPU is
taken from the chain. This runs them (`python -m benchmarks.loadgen`, as the
pipeline bench does: `procs` processes on one schedule) against a stand-in server
in its own process (benchmarks/rawhttp.py answering 200 with a small JSON body,
like the ingest's, optionally after `--delay-ms`), and prints per rate: the CPU
each generator reports over its schedule (what bench_pipeline's `generators`
column is) and its whole process' CPU (rusage, incl. interpreter start-up and
opening its connections), per 1,000 answered requests.

Run: .venv/bin/python -m benchmarks.bench_loadgen [--rates 1000,3000] [--seconds 10]
"""

import argparse
import asyncio
import resource
import signal
import sys
import time
from dataclasses import asdict
from typing import Any

import orjson

from benchmarks.loadgen import LoadSpec
from benchmarks.report import free_port

ANSWER = b'{"accepted":1,"duplicates":0,"rejected":0,"results":[{"status":"accepted"}]}'


async def serve_forever(port: int, delay_ms: float) -> None:
    from benchmarks.rawhttp import serve

    async def handle(method: bytes, path: bytes, body: bytes) -> tuple[int, bytes]:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        return 200, ANSWER

    server = await serve(handle, "127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


async def run_generators(
    module: str, port: int, rate: float, seconds: float, procs: int, tick_ms: float
) -> tuple[list[dict[str, Any]], tuple[float, float]]:
    """Each generator's result, and the whole processes' user and system CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_ns = time.time_ns() + 2_000_000_000
    specs = [
        LoadSpec(kind="hotlead", host="127.0.0.1", port=port, path="/v1/events",
                 headers="authorization: Bearer k\r\ncontent-type: application/json\r\n",
                 run="abc123", rate=rate, duration_s=seconds, start_ns=start_ns, procs=procs,
                 proc=p, tick_ms=tick_ms)
        for p in range(procs)
    ]  # fmt: skip
    argv = [[sys.executable, "-m", module, orjson.dumps(asdict(s)).decode()] for s in specs]
    pipe = asyncio.subprocess.PIPE
    processes = [await asyncio.create_subprocess_exec(*a, stdout=pipe) for a in argv]
    outs = await asyncio.gather(*(p.communicate() for p in processes))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return [orjson.loads(out) for out, _ in outs], (user, system)


async def main(
    module: str, rates: list[float], seconds: float, procs: int, delay: float, tick_ms: float
) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bench_loadgen", "--serve", str(port),
        "--delay-ms", str(delay),
    )  # fmt: skip
    await asyncio.sleep(1.5)
    try:
        for rate in rates:
            results, (user, system) = await run_generators(
                module, port, rate, seconds, procs, tick_ms
            )
            ok = sum(int(r["ok"]) for r in results)
            sent = sum(int(r["sent"]) for r in results)
            own = sum(float(r["cpu_s"]) for r in results)
            late = sum(int(r["late"]) for r in results)
            failed = sum(int(r["failed"]) for r in results)
            print(
                f"{module} tick {tick_ms:g} ms, rate {rate:,.0f}/s x {seconds:.0f} s, "
                f"{procs} procs: sent {sent} "
                f"ok {ok} failed {failed} late {late}; CPU s per 1,000 requests: over the "
                f"schedule {own * 1000 / max(ok, 1):.3f}, whole processes "
                f"{(user + system) * 1000 / max(ok, 1):.3f} (user "
                f"{user * 1000 / max(ok, 1):.3f}, system {system * 1000 / max(ok, 1):.3f})",
                flush=True,
            )
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="1000,3000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the server's answer time")
    parser.add_argument("--tick-ms", type=float, default=1.0, help="the generators' tick")
    parser.add_argument("--module", default="benchmarks.loadgen", help="the generator to run")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_forever(args.serve, args.delay_ms))
    else:
        rates = [float(r) for r in args.rates.split(",")]
        asyncio.run(main(args.module, rates, args.seconds, args.procs, args.delay_ms, args.tick_ms))
