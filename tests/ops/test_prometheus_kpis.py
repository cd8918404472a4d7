"""A real Prometheus (the Debian binary) scrapes a running `hotlead ingest` on a real
broker and evaluates the shipped KPI recording rules over a known mix of events."""

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from schemas.codec import decode_event
from schemas.events import HandoffRequested
from schemas.topics import HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import KafkaPublisher
from services.ingest.tokens import Keyring, mint_click_url, mint_open_url
from tests.ops.tools import PROMETHEUS_DIR, require_tool

pytestmark = [pytest.mark.kafka, pytest.mark.tools]

HOTLEAD = str(Path(sys.executable).parent / "hotlead")
KEYS = "ops1:a-secret-for-the-prometheus-kpi-test"
API = {"Authorization": "Bearer hotlead-development-only-api-key"}
HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
APPLE_MPP_UA = "Mozilla/5.0"  # Apple Mail Privacy Protection's pixel fetch: a machine open
SCANNER_UA = "Barracuda Sentinel (EE)"  # a link scanner: a machine click

# The mix: 20 delivered, 8 opens (3 machine), 4 clicks (1 scanner), 2 forms, 4 accepted,
# 1 opportunity. The KPI rules must give exactly these ratios.
EXPECTED = {
    "hotlead:email_open_ratio:1d": 8 / 20,
    "hotlead:email_human_open_ratio:1d": 5 / 20,
    "hotlead:email_click_ratio:1d": 4 / 20,
    "hotlead:email_human_click_ratio:1d": 3 / 20,
    "hotlead:conversion_ratio:1d": 2 / 20,
    "hotlead:accepted_opportunity_ratio:1d": 1 / 4,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.TransportError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr or ""


def service(args: list[str], env: dict[str, str], base: str) -> Iterator[str]:
    process = subprocess.Popen(
        [HOTLEAD, *args], env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"hotlead {args[0]} exited with {process.returncode}")
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200

    try:
        try:
            wait_until(ready, 30, args)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stop(process)[-3000:]}") from None
        yield base
    finally:
        stderr = stop(process)
        assert "Traceback" not in stderr, stderr[-3000:]


def kafka_env(settings: KafkaSettings) -> dict[str, str]:
    return {
        "HOTLEAD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "HOTLEAD_TOPIC_PREFIX": settings.topic_prefix,
        "HOTLEAD_EVENTS_PARTITIONS": str(settings.events_partitions),
        "HOTLEAD_PARTITIONS": str(settings.partitions),
    }


@pytest.fixture
def ingest(kafka_settings: KafkaSettings) -> Iterator[str]:
    port = free_port()
    env = {
        **kafka_env(kafka_settings),
        "HOTLEAD_TOKEN_KEYS": KEYS,
        "HOTLEAD_TOKEN_ACTIVE_KEY": "ops1",
    }
    args = ["ingest", "--host", "127.0.0.1", "--port", str(port)]
    yield from service(args, env, f"http://127.0.0.1:{port}")


@pytest.fixture
def handoff(kafka_settings: KafkaSettings, unique: str) -> Iterator[str]:
    """`hotlead handoff` on its defaults (console notifier, no CRM)."""
    port = free_port()
    env = {
        **kafka_env(kafka_settings),
        "HOTLEAD_HANDOFF_HOST": "127.0.0.1",
        "HOTLEAD_HANDOFF_PORT": str(port),
        "HOTLEAD_HANDOFF_GROUP_ID": f"ops-test-{unique}",
    }
    yield from service(["handoff"], env, f"http://127.0.0.1:{port}")


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start Prometheus with the shipped configuration: 1 s intervals, the given jobs'
    targets moved to the test's ports, the other jobs left out (they do not run here)."""
    binary = require_tool("prometheus", "prometheus")
    processes: list[subprocess.Popen[str]] = []

    def start(targets: dict[str, str]) -> str:
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert set(jobs) == {"hotlead-ingest", "hotlead-scorer", "hotlead-handoff"}
        for job, base in targets.items():
            jobs[job]["static_configs"] = [{"targets": [base.removeprefix("http://")]}]
        config["scrape_configs"] = [jobs[job] for job in targets]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        command = [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        processes.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/-/ready", timeout=2).status_code == 200, 30, "up")
        return base

    yield start
    for process in processes:
        stop(process)


@pytest.fixture
def prometheus(ingest: str, start_prometheus: Any) -> str:
    base: str = start_prometheus({"hotlead-ingest": ingest})
    return base


def query(prometheus: str, expr: str) -> dict[str, float]:
    """{labels as text: value} of an instant query."""
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return {
        ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items()) if k != "__name__"): float(
            r["value"][1]
        )
        for r in answer["data"]["result"]
    }


def send_the_mix(ingest: str) -> None:
    keys = Keyring.parse(KEYS)
    items: list[dict[str, Any]] = [
        {"id": f"dlv-{i}", "type": "email.delivered", "lead_id": f"lead-{i}",
         "data": {"email_id": "mail-1", "campaign_id": "q1"}}
        for i in range(20)
    ]  # fmt: skip
    items += [
        {"id": f"form-{i}", "type": "form.submitted", "lead_id": f"lead-{i}",
         "data": {"form_id": "demo", "form_type": "demo_request"}}
        for i in range(2)
    ]  # fmt: skip
    answer = httpx.post(f"{ingest}/v1/events", json={"events": items}, headers=API, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 22

    for i, agent in enumerate([HUMAN_UA] * 5 + [APPLE_MPP_UA] * 3):
        url = mint_open_url(ingest, keys, f"lead-{i}", email_id="mail-1", campaign_id="q1")
        pixel = httpx.get(url, headers={"User-Agent": agent}, timeout=5)
        assert pixel.headers["content-type"] == "image/gif"
    for i, agent in enumerate([HUMAN_UA] * 3 + [SCANNER_UA]):
        url = mint_click_url(
            ingest, keys, f"lead-{i}", "https://example.com/pricing", email_id="mail-1"
        )
        click = httpx.get(url, headers={"User-Agent": agent}, timeout=5)
        assert click.status_code == 302

    for i, status in enumerate(["accepted"] * 4 + ["opportunity"]):
        feedback = {
            "id": f"crm-{i}",
            "lead_id": f"lead-{i % 4}",
            "status": status,
            "crm": "hubspot",
        }
        answer = httpx.post(f"{ingest}/v1/crm/feedback", json=feedback, headers=API, timeout=10)
        assert answer.status_code == 200, answer.text


def test_kpi_rules_on_a_real_prometheus_scraping_ingest(ingest: str, prometheus: str) -> None:
    # Prometheus has seen the funnel series at 0 before any event (they exist from the start)
    zero = 'hotlead_ingest_events_written_total{job="hotlead-ingest",type="email.delivered"}'
    assert wait_until(lambda: query(prometheus, zero), 30, "the first scrape") == {
        f"instance={ingest.removeprefix('http://')},job=hotlead-ingest,type=email.delivered": 0.0
    }

    send_the_mix(ingest)

    written = "sum by (type) (hotlead_ingest_events_written_total)"
    expected_written = {
        "type=email.delivered": 20.0,
        "type=email.opened": 8.0,
        "type=email.clicked": 4.0,
        "type=form.submitted": 2.0,
        "type=crm.status_changed": 5.0,
    }
    wait_until(lambda: query(prometheus, written) == expected_written, 30, "the written events")
    assert query(prometheus, "sum by (type) (hotlead_ingest_machine_events_written_total)") == {
        "type=email.opened": 3.0,
        "type=email.clicked": 1.0,
    }
    assert query(prometheus, "sum by (reason) (hotlead_ingest_bot_events_total)") == {
        "reason=apple_mpp": 3.0,
        "reason=link_scanner": 1.0,
    }

    def kpis() -> dict[str, float]:
        return {name: query(prometheus, name).get("", math.nan) for name in EXPECTED}

    def settled() -> bool:
        values = kpis()
        return all(math.isclose(values[n], v, rel_tol=1e-9) for n, v in EXPECTED.items())

    # the rules are evaluated every second; the last scrape's values reach them soon
    wait_until(settled, 20, f"the KPI rules to give {EXPECTED}")
    values = kpis()
    for name, value in EXPECTED.items():
        assert math.isclose(values[name], value, rel_tol=1e-9), (name, values[name], value)
    statuses = query(prometheus, "hotlead:ingest_crm_statuses_written:increase1d")
    assert statuses["status=accepted"] > 0
    assert statuses["status=opportunity"] == pytest.approx(statuses["status=accepted"] / 4)
    assert statuses["status=won"] == 0
    # the rules that need the scorer or handoff give no value without them (not zero)
    assert query(prometheus, "hotlead:handoff_opportunity_ratio:1d") == {}


async def test_qualification_to_acceptance_rules_on_a_real_prometheus_scraping_handoff(
    kafka_settings: KafkaSettings, ingest: str, handoff: str, start_prometheus: Any
) -> None:
    """A hand-off qualified at T is delivered by `hotlead handoff`; sales accepts it at
    T + 40 min through ingest's CRM feedback; the rules give 40 min (mean) and 45 min
    (median, interpolated in the 30-60 min bucket)."""
    prometheus = start_prometheus({"hotlead-ingest": ingest, "hotlead-handoff": handoff})
    count = "hotlead_handoff_qualified_to_sales_status_seconds_count"
    first = wait_until(lambda: query(prometheus, f'{count}{{status="accepted"}}'), 30, "a scrape")
    assert list(first.values()) == [0.0]

    example = (Path(__file__).parents[2] / "schemas/examples/handoff.requested.json").read_bytes()
    template = decode_event(example)
    assert isinstance(template, HandoffRequested)
    qualified = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    handoff_id = "ho-ops-lead-1-1"
    event = template.model_copy(
        update={
            "id": handoff_id,
            "subject": "ops-lead-1",
            "time": qualified,
            "data": template.data.model_copy(
                update={
                    "handoff_id": handoff_id,
                    "lead_id": "ops-lead-1",
                    "trigger_event_time": qualified,
                }
            ),
        }
    )
    publisher = KafkaPublisher(kafka_settings.kafka_bootstrap)
    await publisher.start()
    try:
        await publisher.publish(kafka_settings.topic(HANDOFFS), event)
    finally:
        await publisher.stop()
    delivered = 'hotlead_handoff_handoffs_total{result="delivered"} 1.0'
    wait_until(lambda: delivered in httpx.get(f"{handoff}/metrics").text, 30, "the delivery")

    accepted_at = (qualified + timedelta(minutes=40)).isoformat()
    observed = f'{count}{{status="accepted"}} 1.0'
    attempt = 0

    def accepted() -> bool:
        """Send the acceptance (again: the feedback consumer starts at the log's end and
        may not have its partitions yet) until handoff observed it."""
        nonlocal attempt
        attempt += 1
        feedback = {
            "id": f"crm-accept-{attempt}",
            "lead_id": "ops-lead-1",
            "status": "accepted",
            "handoff_id": handoff_id,
            "time": accepted_at,
        }
        answer = httpx.post(f"{ingest}/v1/crm/feedback", json=feedback, headers=API, timeout=10)
        assert answer.status_code == 200, answer.text
        return wait_quietly(lambda: observed in httpx.get(f"{handoff}/metrics").text, 3)

    wait_until(accepted, 40, "handoff to observe the acceptance")

    expected = {
        "hotlead:qualified_to_accepted_seconds:mean_1d": 2400.0,
        "hotlead:qualified_to_accepted_seconds:p50_1d": 2700.0,
        "hotlead:qualified_to_accepted_seconds:p90_1d": 1800.0 + 1800.0 * 0.9,
    }

    def values() -> dict[str, float]:
        return {name: query(prometheus, name).get("", math.nan) for name in expected}

    def settled() -> bool:
        got = values()
        return all(math.isclose(got[n], v, rel_tol=1e-9) for n, v in expected.items())

    wait_until(settled, 20, f"the rules to give {expected}")
    got = values()
    for name, value in expected.items():
        assert math.isclose(got[name], value, rel_tol=1e-9), (name, got[name], value)
    assert query(prometheus, 'hotlead_handoff_handoffs_total{result="dead_lettered"}') != {}


def wait_quietly(check: Any, timeout_s: float) -> bool:
    try:
        wait_until(check, timeout_s, "")
    except AssertionError:
        return False
    return True
