"""The chaos run's log scan: a planted value in any of our logs is a violation naming file and line."""

import json

from tests.chaos.pii import PLANTED, find_pii
from tests.chaos.verdict import Verdict, scan_logs


def test_find_pii_names_each_planted_value_and_the_card_number_however_it_is_grouped():
    line = json.dumps({"metadata": {"customer_email": PLANTED["email"], "card_note": "4000056655665556"}})

    assert sorted(find_pii(line)) == ["card_number", "email"]
    assert find_pii("card 4000-0566-5566-5556 declined") == ["card_number"]
    assert find_pii(f"desc={PLANTED['description'].upper()}") == ["description", "name"]


def test_find_pii_finds_nothing_in_a_line_of_ids_and_amounts():
    line = '{"event": "provider_call", "payment_id": "pay_01M8A088KX", "amount": 4000056655, "status": 200}'

    assert find_pii(line) == []


def test_scan_logs_reports_the_file_and_line_of_a_planted_value_and_counts_every_line(tmp_path):
    clean, leaky = tmp_path / "relay.log", tmp_path / "worker0.log"
    clean.write_text("started\nbatch published 3\n")
    leaky.write_text(f"ready.\nTask failed: body={{'phone': '{PLANTED['phone']}'}}\n")
    verdict = Verdict()

    scan_logs(verdict, [clean, leaky])

    assert [(v.kind, v.detail) for v in verdict.violations] == [("pii", "worker0.log:2 holds phone")]
    assert verdict.figures["log lines scanned"] == 4
