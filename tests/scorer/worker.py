"""Running `hotlead scorer` as a real process against the test broker."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from schemas.codec import decode_event
from schemas.envelope import CloudEvent
from services.common.kafka_settings import KafkaSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ScorerProcess:
    """One scorer worker; `kill()` sends SIGKILL, `start()` starts it again."""

    def __init__(
        self,
        settings: KafkaSettings,
        app_id: str,
        workdir: Path,
        *,
        store: str = "memory://",
        **env: str,
    ) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{app_id}.log"
        self.env = {
            **os.environ,
            "HOTLEAD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "HOTLEAD_TOPIC_PREFIX": settings.topic_prefix,
            "HOTLEAD_EVENTS_PARTITIONS": str(settings.events_partitions),
            "HOTLEAD_PARTITIONS": str(settings.partitions),
            "HOTLEAD_SCORER_APP_ID": app_id,
            "HOTLEAD_SCORER_STORE": store,
            "HOTLEAD_SCORER_DATADIR": str(workdir / "data"),
            "HOTLEAD_SCORER_WEB_PORT": str(self.port),
            "HOTLEAD_SCORER_SWEEP_INTERVAL_S": "0",
            "HOTLEAD_SCORER_SESSION_TIMEOUT_S": "6",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout_s: float = 60.0) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "scorer"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[2],
            )
        try:
            self.wait_ready(timeout_s)
        except AssertionError:
            self.stop()
            raise

    def _log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        marker = f"===== start {self.starts} ====="
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"scorer exited early:\n{self._log_text()[-3000:]}")
            text = self._log_text()
            if "Worker ready" in text[text.rfind(marker) :]:
                return
            time.sleep(0.2)
        raise AssertionError(f"scorer not ready in {timeout_s}s:\n{self._log_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)


async def read_topic(bootstrap: str, topic: str, *, idle_s: float = 2.0) -> list[CloudEvent]:
    """Every event on `topic`, read from the start until nothing new comes for `idle_s`."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    events: list[CloudEvent] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=5000)
            if not batch:
                return events
            for records in batch.values():
                events.extend(decode_event(r.value) for r in records)
    finally:
        await consumer.stop()


def ids(events: Iterable[CloudEvent]) -> list[str]:
    return [event.id for event in events]
