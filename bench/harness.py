"""
The measuring half of `make bench`: load generators, the A-B-A protocol, the table and the result files.

Every row compares a path of ours with one or more anchors measured in the same run on the same
PostgreSQL and Redis. A round runs each anchor right before and right after ours (A-B-A, two
anchors nest: raw, bare, ours, bare, raw); a row reports the median of its rounds, the ratio of
ours to the mean of each anchor's two runs, and flags a round whose two anchor runs differ by more
than DRIFT_LIMIT (a noisy, shared machine). Absolute rates vary two-fold between runs here; the
ratios are what we track (issue 11).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))  # one measured run; every run also warms up
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", str(min(0.5, SECONDS / 4))))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
OVERRUN_SECONDS = 30.0  # how long a run may go past its window to count at least one operation
DRIFT_LIMIT = 0.25  # issue 11: an anchor that moved more than this between its two runs marks the round
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", Path(__file__).resolve().parent / "results"))

Step = Callable[[], None]  # one operation (a request, a transaction); raises on a wrong answer


@dataclass
class Sample:
    """One measured run: operations per second and latency percentiles in milliseconds."""

    rate: float
    p50_ms: float
    p99_ms: float
    count: int

    @classmethod
    def of(cls, latencies: list[float], elapsed: float) -> Sample:
        if not latencies:
            raise RuntimeError("a benchmark run completed no operation")
        ordered = sorted(latencies)
        return cls(
            rate=len(ordered) / elapsed,
            p50_ms=ordered[len(ordered) // 2] * 1000,
            p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            count=len(ordered),
        )


@dataclass
class Row:
    """One line of the table: ours and its anchors, each the median of its rounds, and the ratios."""

    group: str
    path: str
    clients: int | str
    unit: str
    ours: Sample
    anchors: dict[str, Sample]
    ratios: dict[str, float]
    rounds: list[dict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    note: str = ""


def closed_loop(make_step: Callable[[int], Step], *, clients: int, seconds: float = SECONDS) -> Sample:
    """Run `clients` threads, each repeating its own step as fast as it is answered, for `seconds`.

    `make_step(index)` runs in its thread before the clock starts (connect there). A warm-up of
    WARMUP_SECONDS is not counted. Operations started inside the window are counted, and the rate is
    over the window stretched to the last one's answer, so a run shorter than one slow (cold)
    request still measures something: it goes on past the window until one operation is counted,
    for at most OVERRUN_SECONDS. Bounded by time, never by an unanswered request (the step's timeout).
    """
    latencies: list[list[float]] = [[] for _ in range(clients)]
    last_end: list[float] = [0.0] * clients
    errors: list[BaseException] = []
    start_at: list[float] = [0.0]
    # The clock starts when the last thread has connected: the barrier's action runs before any is released.
    ready = threading.Barrier(clients + 1, action=lambda: start_at.__setitem__(0, time.perf_counter()))

    def worker(index: int) -> None:
        try:
            step = make_step(index)
        except BaseException as exc:
            errors.append(exc)
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        own = latencies[index]
        measure_from = start_at[0] + WARMUP_SECONDS
        deadline = measure_from + seconds
        try:
            while True:
                started = time.perf_counter()
                if started >= deadline and (any(latencies) or started >= deadline + OVERRUN_SECONDS):
                    return
                step()
                finished = time.perf_counter()
                if started >= measure_from:
                    own.append(finished - started)
                    last_end[index] = finished
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a thread failed to connect: reported below
        ready.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"benchmark step failed: {errors[0]!r}") from errors[0]
    measure_from = start_at[0] + WARMUP_SECONDS
    elapsed = max(max(last_end), measure_from + seconds) - measure_from
    return Sample.of([x for own in latencies for x in own], elapsed)


def open_loop(make_step: Callable[[int], Step], *, rate: float, connections: int, seconds: float = SECONDS) -> Sample:
    """Send `rate` operations per second on a fixed schedule, whatever the answers' speed.

    Latency is counted from each operation's scheduled time, not from when a connection got free, so
    a stall shows in p99 instead of silently lowering the load (no coordinated omission). Operation
    i belongs to connection i % connections; `connections` bounds the requests in flight.
    """
    interval = 1.0 / rate
    total = max(1, int(rate * seconds))
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[BaseException] = []
    steps = [make_step(n) for n in range(connections)]
    begin = time.perf_counter() + 0.05

    def worker(index: int) -> None:
        try:
            for op in range(index, total, connections):
                scheduled = begin + op * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                steps[index]()
                latencies[index].append(time.perf_counter() - scheduled)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"benchmark step failed: {errors[0]!r}") from errors[0]
    elapsed = time.perf_counter() - begin
    return Sample.of([x for own in latencies for x in own], elapsed)


def http_step(port: int, method: str, path: Callable[[], str] | str, *, body=None, headers=None, expect: int):
    """Return a step sending one request on a keep-alive connection of its own (reconnects if dropped).

    `body` and `headers` may be callables, so each request can carry its own Idempotency-Key.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def connect() -> None:
        conn.close()
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    connect()

    def step() -> None:
        target = path() if callable(path) else path
        payload = body() if callable(body) else body
        sent_headers = headers() if callable(headers) else (headers or {})
        for attempt in (1, 2):
            try:
                conn.request(method, target, body=payload, headers=sent_headers)
                response = conn.getresponse()
                content = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 2:  # the server closed an idle keep-alive connection: one retry, fresh
                    raise
                connect()
        if response.status != expect:
            raise RuntimeError(f"{method} {target}: {response.status} {content[:300]!r}")
        if response.getheader("Connection", "").lower() == "close":
            connect()

    return step


def aba(run_ours: Callable[[], Sample], anchors: dict[str, Callable[[], Sample]], *, rounds: int = ROUNDS) -> dict:
    """Measure `rounds` rounds of anchors around ours (A-B-A; two anchors nest as A1 A2 B A2 A1)."""
    names = list(anchors)
    results = []
    for _ in range(rounds):
        before = {name: anchors[name]() for name in names}
        ours = run_ours()
        after = {name: anchors[name]() for name in reversed(names)}
        results.append({"ours": ours, "before": before, "after": after})
    return {"rounds": results}


def summarise(group: str, path: str, clients, unit: str, measured: dict, note: str = "") -> Row:
    """Reduce A-B-A rounds to one row: medians of rounds, ratios to the anchors' mean, drift flags."""
    rounds = measured["rounds"]
    anchor_names = list(rounds[0]["before"])
    flags, per_round = [], []
    ratios_per_anchor: dict[str, list[float]] = {name: [] for name in anchor_names}
    for number, rnd in enumerate(rounds, start=1):
        entry = {"ours": asdict(rnd["ours"]), "anchors": {}}
        for name in anchor_names:
            first, second = rnd["before"][name].rate, rnd["after"][name].rate
            mean = (first + second) / 2
            ratio = rnd["ours"].rate / mean
            ratios_per_anchor[name].append(ratio)
            drift = abs(first - second) / mean
            entry["anchors"][name] = {
                "before": asdict(rnd["before"][name]),
                "after": asdict(rnd["after"][name]),
                "ratio": ratio,
                "drift": drift,
            }
            if drift > DRIFT_LIMIT:
                flags.append(f"round {number}: {name} anchor moved {drift:.0%} between its two runs")
        per_round.append(entry)

    def median_sample(samples: list[Sample]) -> Sample:
        return Sample(
            rate=statistics.median(s.rate for s in samples),
            p50_ms=statistics.median(s.p50_ms for s in samples),
            p99_ms=statistics.median(s.p99_ms for s in samples),
            count=sum(s.count for s in samples),
        )

    anchors = {
        name: median_sample([r[side][name] for r in rounds for side in ("before", "after")]) for name in anchor_names
    }
    return Row(
        group=group,
        path=path,
        clients=clients,
        unit=unit,
        ours=median_sample([r["ours"] for r in rounds]),
        anchors=anchors,
        ratios={name: statistics.median(values) for name, values in ratios_per_anchor.items()},
        rounds=per_round,
        flags=flags,
        note=note,
    )


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _fmt(sample: Sample | None, unit: str) -> str:
    if sample is None:
        return ""
    latency = f", p50 {sample.p50_ms:.1f} ms, p99 {sample.p99_ms:.1f} ms" if sample.p50_ms else ""
    return f"{sample.rate:,.0f} {unit}/s{latency}"


def markdown_table(rows: list[Row]) -> str:
    """The table the README shows: one line per row, every anchor and its ratio."""
    lines = [
        "| path | clients | ours | anchors | ratio to anchor (median of rounds) | flags |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        anchors = "<br>".join(f"{name}: {_fmt(sample, row.unit)}" for name, sample in row.anchors.items())
        ratios = "<br>".join(f"**{ratio:.0%}** of {name}" for name, ratio in row.ratios.items())
        flags = f"{len(row.flags)} drifting" if row.flags else ""
        note = f" ({row.note})" if row.note else ""
        ours = _fmt(row.ours, row.unit)
        lines.append(f"| {row.path}{note} | {row.clients} | {ours} | {anchors} | {ratios} | {flags} |")
    return "\n".join(lines)


def text_table(rows: list[Row]) -> str:
    """The terminal version: one line per (row, anchor)."""
    out = [
        f"{'path':<44} {'clients':>9} {'ours/s':>9} {'p50':>7} {'p99':>7}   {'anchor':<16} {'anchor/s':>9} {'ratio':>6}"
    ]
    for row in rows:
        for index, (name, sample) in enumerate(row.anchors.items()):
            head = (
                f"{row.path[:44]:<44} {row.clients!s:>9} {row.ours.rate:>9,.0f} {row.ours.p50_ms:>6.1f}m"
                f" {row.ours.p99_ms:>6.1f}m"
                if index == 0
                else " " * 80
            )
            flag = " !" if row.flags and index == 0 else ""
            out.append(f"{head}   {name:<16} {sample.rate:>9,.0f} {row.ratios[name]:>6.0%}{flag}")
        if not row.anchors:
            out.append(
                f"{row.path[:44]:<44} {row.clients!s:>9} {row.ours.rate:>9,.0f} {row.ours.p50_ms:>6.1f}m"
                f" {row.ours.p99_ms:>6.1f}m   {row.note}"
            )
    flagged = [f"  {row.path} ({row.clients}): {flag}" for row in rows for flag in row.flags]
    if flagged:
        out.append("! rounds whose two anchor runs differ by more than 25 % (noisy machine):")
        out.extend(flagged)
    return "\n".join(out)


def machine() -> dict:
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def write_results(rows: list[Row], *, started: datetime, settings: dict, host: dict) -> tuple[Path, Path]:
    """Write bench/results/<timestamp>.json (every round) and .md (the table)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": host,
        "settings": settings,
        "rows": [asdict(row) for row in rows],
    }
    json_path = RESULTS_DIR / f"{stamp}.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    flags = [f"- {row.path} ({row.clients}): {flag}" for row in rows for flag in row.flags]
    md = [
        f"# make bench, {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {host['cpus']} CPUs, {host['platform']}, Python {host['python']}, "
        f"load average at start {host['load_average_at_start']}. Settings: {settings}.",
        "",
        markdown_table(rows),
        "",
    ]
    if flags:
        md += ["Rounds whose two anchor runs differ by more than 25 %:", "", *flags, ""]
    md_path = RESULTS_DIR / f"{stamp}.md"
    md_path.write_text("\n".join(md))
    return json_path, md_path


def psycopg_step(dsn: str, work: Callable[[object, int], None], opened: list, *, transactional: bool = True):
    """Return a make_step whose steps run `work(cursor, index)` on a connection of their own, in one
    transaction (or in autocommit, as the product reads).

    Connections are appended to `opened` so the caller closes them after the run.
    """
    import psycopg

    def make_step(index: int) -> Step:
        conn = psycopg.connect(dsn, autocommit=True)
        opened.append(conn)

        def step() -> None:
            if not transactional:
                with conn.cursor() as cursor:
                    work(cursor, index)
                return
            with conn.transaction(), conn.cursor() as cursor:
                work(cursor, index)

        return step

    return make_step


def closing(opened: list, sample_of: Callable[[], Sample]) -> Sample:
    """Run a measurement and close whatever connections it opened."""
    try:
        return sample_of()
    finally:
        for conn in opened:
            conn.close()
        opened.clear()
