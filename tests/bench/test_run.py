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
    ("POST /webhooks/stripe, new event", 1),
    ("POST /webhooks/stripe, duplicate", 1),
    ("sandbox create+confirm (raw HTTP)", 8),
    ("sandbox create+confirm (stripe SDK)", 8),
}


def test_bench_run_writes_every_row_with_its_anchors(tmp_path):
    env = {
        **os.environ,
        "BENCH_SECONDS": "0.1",
        "BENCH_WARMUP_SECONDS": "0.02",
        "BENCH_ROUNDS": "1",
        "BENCH_OUTBOX_ROWS": "300",
        "BENCH_WEBHOOK_N": "10",
        "BENCH_RESULTS_DIR": str(tmp_path),
        "BENCH_DATABASE": "bench_smoke",  # never the database of a real `make bench`
        "BENCH_REDIS_DB": "10",
    }

    completed = subprocess.run(
        [sys.executable, "bench/run.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document = json.loads(next(tmp_path.glob("*.json")).read_text())
    rows = {(row["path"], row["clients"]): row for row in document["rows"]}
    assert set(rows) == EXPECTED
    for (_, clients), row in rows.items():
        assert row["ours"]["rate"] > 0
        if clients != "open loop":
            assert row["anchors"] and set(row["ratios"]) == set(row["anchors"])
            assert all(ratio > 0 for ratio in row["ratios"].values())
    markdown = next(tmp_path.glob("*.md")).read_text()
    assert all(path in markdown for path, _ in EXPECTED)
