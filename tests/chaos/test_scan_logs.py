"""The chaos run's log scan: a planted value in any of our logs is a violation naming file and line.

The detector is the test suite's own (tests/pii.py); these tests hold the chaos run's use of it. Their
files are not named *.log: the suite scans every *.log under its temporary folder and would (rightly)
fail on the planted values written here."""

from tests.chaos.verdict import Verdict, scan_logs
from tests.pii import PLANTED


def test_scan_logs_reports_the_file_and_line_of_a_planted_value_and_counts_every_line(tmp_path):
    clean, leaky = tmp_path / "relay.txt", tmp_path / "worker0.txt"
    clean.write_text("started\nbatch published 3\n")
    leaky.write_text(f"ready.\nTask failed: body={{'phone': '{PLANTED['phone']}'}}\n")
    verdict = Verdict()

    scan_logs(verdict, [clean, leaky])

    assert [(v.kind, v.detail) for v in verdict.violations] == [("pii", "worker0.txt:2 holds planted phone")]
    assert verdict.figures["log lines scanned"] == 4


def test_scan_logs_finds_a_card_number_however_it_is_grouped_and_nothing_in_ids_and_amounts(tmp_path):
    log = tmp_path / "web.txt"
    log.write_text(
        '{"event": "provider_call", "payment_id": "pay_01M8A088KX", "amount": 4000056655, "status": 200}\n'
        "card 4000-0566-5566-5556 declined\n"
    )
    verdict = Verdict()

    scan_logs(verdict, [log])

    assert [v.detail for v in verdict.violations] == ["web.txt:2 holds card number"]
