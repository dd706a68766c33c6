"""
`make bench` end to end with tiny durations: every row is produced, with its anchors and ratios, and
written as JSON and Markdown. Figures are not asserted: this machine is shared and they are noise here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXPECTED = {
    ("POST /api/v1/payments", 1),
    ("POST /api/v1/payments", 4),
    ("POST /api/v1/payments", 16),
    ("POST /api/v1/payments", "open loop"),
    ("GET /api/v1/payments/{id}", 4),
    ("GET /api/v1/payments?limit=10", 4),
    ("outbox relay claim + publish", 1),
    ("outbox commit to publish (relay loop)", "open loop"),
    ("POST /webhooks/stripe, new event", 4),
    ("POST /webhooks/stripe, duplicate", 4),
    ("end to end: POST /api/v1/payments to provider to webhook applied", 8),
    ("sandbox create+confirm (raw HTTP)", 8),
    ("sandbox create+confirm (stripe SDK)", 8),
}
SCALE_PAYMENTS = 2000
# The scale group runs the create, read and relay rows again on a filled database of its own.
SCALED = {
    (f"{path} at {SCALE_PAYMENTS:,} payments", clients)
    for path, clients in EXPECTED
    if path.startswith(("POST /api/v1/payments", "GET /api/v1/payments", "outbox "))
}


def test_bench_run_writes_every_row_with_its_anchors(tmp_path):
    env = {
        **os.environ,
        "BENCH_SECONDS": "0.1",
        "BENCH_WARMUP_SECONDS": "0.02",
        "BENCH_ROUNDS": "1",
        "BENCH_OUTBOX_ROWS": "300",
        "BENCH_E2E_N": "10",
        "BENCH_RESULTS_DIR": str(tmp_path),
        "BENCH_DATABASE": "bench_smoke",  # never the database of a real `make bench`
        "BENCH_REDIS_DB": "10",
        "BENCH_SCALE_PAYMENTS": str(SCALE_PAYMENTS),  # filled once, then reused by the next run
        "BENCH_SCALE_DATABASE": "bench_smoke_scale",
    }

    completed = subprocess.run(
        [sys.executable, "bench/run.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=420, check=False
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document = json.loads(next(tmp_path.glob("*.json")).read_text())
    rows = {(row["path"], row["clients"]): row for row in document["rows"]}
    assert set(rows) == EXPECTED | SCALED
    for (_, clients), row in rows.items():
        assert row["ours"]["rate"] > 0
        if clients != "open loop":
            assert row["anchors"] and set(row["ratios"]) == set(row["anchors"])
            assert all(ratio > 0 for ratio in row["ratios"].values())
    for key in SCALED - {(path, "open loop") for path, _ in SCALED}:
        assert "small tables" in rows[key]["ratios"], rows[key]  # each scale rate beside its small-table one
    markdown = next(tmp_path.glob("*.md")).read_text()
    assert all(path in markdown for path, _ in EXPECTED | SCALED)
