from webhooks import views


def test_one_line_per_reason_per_interval_and_the_next_says_how_many_it_stands_for(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(views.time, "monotonic", lambda: now[0])
    log = views._ThrottledLog(10.0)

    first = log("signature_mismatch")
    during = [log("signature_mismatch") for _ in range(5)]
    other_reason = log("signature_missing")
    now[0] += 10.0
    after = log("signature_mismatch")

    assert (first, set(during), other_reason, after) == (0, {None}, 0, 5)
