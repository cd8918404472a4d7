"""The pipeline bench's CPU table: per process, CPU seconds per 1,000 answered events."""

from benchmarks.bench_pipeline import _table, budget
from benchmarks.pipeline_bench import CPU_NAMES, Measurement


def measurement(chain: str, cpu_s: dict[str, float]) -> Measurement:
    return Measurement(
        chain=chain, rate=1000.0, duration_s=10.0, probe_every=20, sent=10_000, ok=10_000,
        failed=0, late=0, max_lag_ms=1.0, probes=500, delivered=500, duplicates=0,
        latencies_ms=[10.0] * 500, from_schedule_ms=[12.0] * 500, response_ms=[2.0] * 10_000,
        cpu_s=cpu_s, window_s=12.5,
    )  # fmt: skip


def test_each_process_gets_its_cpu_per_thousand_events_and_the_machine_its_cores() -> None:
    used = {"ingest": 9.0, "scorer": 3.5, "handoff": 1.5, "broker": 2.0, "generators": 2.5,
            "receiver": 0.05, "machine": 20.0}  # fmt: skip
    row = measurement("hotlead", used).cpu_row(CPU_NAMES["hotlead"])
    assert (
        row == "| hotlead | 1,000 | 12.5 | 0.90 | 0.35 | 0.15 | 0.20 | 0.25 | 0.01 | 2.00 | 1.60 |"
    )


def test_the_table_has_one_cpu_section_per_chain_measured() -> None:
    lines = _table([measurement("hotlead", {"ingest": 1.0, "machine": 2.0})])
    assert "CPU seconds per 1,000 events, hotlead (per process tree, /proc):" in lines
    assert not any("baseline (per process" in line for line in lines)
    header = lines[
        lines.index("CPU seconds per 1,000 events, hotlead (per process tree, /proc):") + 2
    ]
    assert header.startswith("| chain | offered events/s | window s | ingest | scorer | handoff |")


def test_the_budget_says_what_two_cores_allow() -> None:
    used = {"ingest": 9.0, "scorer": 3.5, "handoff": 1.5, "broker": 2.0, "generators": 2.5,
            "receiver": 0.5, "machine": 20.0}  # fmt: skip
    line = budget(measurement("hotlead", used))
    # chain: 16 s over 10,000 events = 1.6 ms each -> 2 cores / 1.6 ms = 1,250 events/s;
    # with 0.3 ms of harness per event: 2 / 1.9 ms = 1,053 events/s
    assert "used 1.60 CPU s per 1,000 events" in line
    assert "full at ~1,250 events/s" in line
    assert "~1,053 events/s" in line
