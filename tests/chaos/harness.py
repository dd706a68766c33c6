"""One chaos run: start the stack, drive the checkouts under the fault plan, stop the faults, wait
for the system to settle (bounded), judge it from both sides, and report the figures."""

from __future__ import annotations

import json
import resource
import signal
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.chaos.checkout import Checkout, Client, plan_checkouts, run_checkout
from tests.chaos.faults import FaultPlan, HarnessFault, fault_plan
from tests.chaos.stack import ChaosStack
from tests.chaos.verdict import Verdict, judge, scan_logs, unsettled


def default_concurrency(payments: int) -> int:
    """Checkouts in flight for a run of `payments`. The drive is bound by how long a checkout waits,
    not by CPU: the 10 000 run at 64 used about 0.3 of the 2 cores (2026-12-05, shared machine) and
    took 38 minutes, so a long run keeps twice as many checkouts in flight."""
    return 64 if payments <= 2000 else 128


@dataclass
class Options:
    payments: int = 2000
    seed: int = 1
    short: bool = False
    # Checkouts in flight. A checkout mostly waits (for its payment, for the web or the database to
    # come back): the last quiet 2 000-payment run at 24 used about 0.6 of the 2 cores. 128 swamped the
    # workers on the shared machine (a backlog of thousands of webhook events, customers timing out).
    concurrency: int = 64
    broker_outage_seconds: float = 30.0
    postgres_outage_seconds: float = 1.0  # between the shutdown and the start of a PostgreSQL restart
    converge_timeout: float = 300.0
    # How long a checkout waits for its payment to reach the next step: past a broker outage, so the
    # harness's own faults do not turn into customers walking away (fewer captures and refunds checked).
    wait_seconds: float = 90.0
    keep: bool = False


@dataclass
class Report:
    options: Options
    plan: FaultPlan
    verdict: Verdict
    harness_faults: Counter = field(default_factory=Counter)
    sandbox_faults: Counter = field(default_factory=Counter)
    client: Counter = field(default_factory=Counter)
    unexpected_exits: Counter = field(default_factory=Counter)
    drive_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process during the drive
    converge_seconds: float | None = None
    checkouts: list[Checkout] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.verdict.violations and self.converge_seconds is not None

    def render(self) -> str:
        v, by_kind = self.verdict, self.verdict.by_kind()
        payments = sum(count for name, count in v.figures.items() if name.startswith("status "))
        lines = [
            f"chaos: {self.plan.describe()}",
            f"payments      {payments} ({self.options.payments} checkouts; "
            + ", ".join(
                f"{k.removeprefix('status ').lower()} {n}"
                for k, n in sorted(v.figures.items())
                if k.startswith("status ")
            )
            + f"; flagged {v.figures['flagged']})",
            "refunds       "
            + ", ".join(
                f"{k.removeprefix('refund ').lower()} {n}"
                for k, n in sorted(v.figures.items())
                if k.startswith("refund ")
            ),
            "sandbox faults " + (", ".join(f"{k} {n}" for k, n in sorted(self.sandbox_faults.items())) or "none"),
            "harness faults " + (", ".join(f"{k} {n}" for k, n in sorted(self.harness_faults.items())) or "none"),
            "exits         "
            + (", ".join(f"{k} {n}" for k, n in sorted(self.unexpected_exits.items())) or "none")
            + " (processes that died on their own and were started again)",
            "clients       " + ", ".join(f"{k} {n:.0f}" for k, n in sorted(self.client.items())),
            f"duplicates {by_kind['duplicate']}  lost {by_kind['lost']}  mismatches {by_kind['mismatch']}  "
            f"regressions {by_kind['regression']}  webhooks applied twice {by_kind['webhook_twice']}  "
            f"personal data in logs {by_kind['pii']} (of {v.figures['log lines scanned']} lines)  "
            f"outbox {by_kind['outbox'] + by_kind['webhook_unsettled']} (dead rows {v.figures['outbox dead']}, "
            f"parked webhook events {v.figures['webhook events parked']} of {v.figures['webhook events']})",
            f"drive {self.drive_seconds:.0f}s, converged "
            + (f"in {self.converge_seconds:.0f}s" if self.converge_seconds is not None else "NEVER (timed out)")
            + f", provider POSTs per payment {v.figures['provider POSTs'] / max(payments, 1):.2f}",
            f"cpu in the drive {sum(self.cpu.values()):.0f}s over {self.drive_seconds:.0f}s: "
            + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in sorted(self.cpu.items(), key=lambda i: -i[1])),
        ]
        for checkout in self.checkouts:
            if any(note.startswith("checkout crashed") for note in checkout.notes):
                lines.append(
                    f"checkout {checkout.index} ({checkout.scenario}) {checkout.payment_ids}: {checkout.notes}"
                )
        for violation in self.verdict.violations[:25]:
            lines.append(f"VIOLATION {violation.kind} {violation.payment}: {violation.detail}")
            for entry in self.verdict.timelines.get(violation.payment, []):
                lines.append(f"    {entry}")
        if len(self.verdict.violations) > 25:
            lines.append(f"... and {len(self.verdict.violations) - 25} more")
        lines.append("OK: no violation" if self.ok else "FAILED")
        return "\n".join(lines)


def _figures(verdict: Verdict, prefix: str) -> str:
    named = sorted((name, count) for name, count in verdict.figures.items() if name.startswith(prefix))
    return ", ".join(f"{name.removeprefix(prefix).lower()} {count}" for name, count in named) or "none"


def _say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)  # noqa: T201 - the run's progress line


def _sandbox(stack: ChaosStack, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{stack.sandbox_url}/_sandbox/{path}", data=data, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback sandbox
        return json.loads(response.read())


class Saboteur:
    """Fires the harness's faults as the run reaches them; processes killed are started again."""

    def __init__(
        self, stack: ChaosStack, plan: list[HarnessFault], fired: Counter, *, postgres_outage_seconds: float
    ) -> None:
        self.stack, self.pending, self.fired = stack, list(plan), fired
        self.postgres_outage_seconds = postgres_outage_seconds
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def reached(self, done: int) -> None:
        with self.lock:
            due = [f for f in self.pending if f.at_payment <= done]
            self.pending = [f for f in self.pending if f.at_payment > done]
        for fault in due:
            thread = threading.Thread(target=self._fire, args=(fault,), daemon=True)
            thread.start()
            with self.lock:
                self.threads.append(thread)

    def finish(self) -> None:
        """Wait for faults still under way (a broker outage fired near the end), so the run's own
        restarts never race them."""
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join()

    def _fire(self, fault: HarnessFault) -> None:
        with self.stack.sabotage:
            self._break(fault)
        self.fired[fault.name] += 1

    def _break(self, fault: HarnessFault) -> None:
        stack = self.stack
        _say(f"harness fault: {fault.name}")
        if fault.kind == "kill_worker":
            worker = stack.workers[fault.target % len(stack.workers)]
            stack.kill_tree(worker)
            time.sleep(1)
            worker.start()
        elif fault.kind == "kill_relay":
            stack.relay.kill()
            time.sleep(1)
            stack.relay.start()
        elif fault.kind == "kill_web_worker":
            children = stack.gunicorn_workers()
            if children:
                children[fault.target % len(children)].send_signal(signal.SIGKILL)  # gunicorn starts another
        elif fault.kind == "kill_web_master":
            # The master and its workers go at once, as a lost container would take them; requests in
            # flight are cut off and their checkouts retry with their keys until the web is back.
            stack.kill_tree(stack.web)
            stack.web.start()
        elif fault.kind == "stop_broker":
            stack.broker.stop()
            time.sleep(fault.seconds)
            stack.broker.start()
        elif fault.kind == "restart_postgres":
            # Same data directory and socket: every process must find its way back on its own.
            stack.stop_postgres(mode=fault.mode)
            time.sleep(self.postgres_outage_seconds)
            stack.postgres.start()

    def supervise(self, exits: Counter) -> None:
        """Start again what died on its own, as a supervisor would, and count it: such an exit is a finding."""
        if self.stack.sabotage.acquire(blocking=False):
            try:
                for name in self.stack.restart_dead():
                    _say(f"{name} exited on its own; started again")
                    exits[name] += 1
            finally:
                self.stack.sabotage.release()


def chaos_run(options: Options) -> Report:
    plan = fault_plan(
        seed=options.seed,
        payments=options.payments,
        short=options.short,
        broker_outage_seconds=options.broker_outage_seconds,
    )
    checkouts = plan_checkouts(seed=options.seed, payments=options.payments)
    stack = ChaosStack(seed=options.seed, keep=options.keep)
    report = Report(options=options, plan=plan, verdict=Verdict(), checkouts=checkouts)
    _say(f"{plan.describe()}; data and logs in {stack.data_dir}")
    try:
        started_at = time.monotonic()
        stack.start()
        _say(f"stack up in {time.monotonic() - started_at:.0f}s: web {stack.web_url}, sandbox {stack.sandbox_url}")
        _sandbox(stack, "POST", "faults", {"faults": plan.sandbox, "seed": options.seed})
        cpu_before = _cpu(stack)
        report.drive_seconds = _drive(stack, options, plan, checkouts, report)
        report.cpu = {
            name: used - (cpu_before[name][1] if cpu_before.get(name, (0, 0.0))[0] == pid else 0.0)
            for name, (pid, used) in _cpu(stack).items()
        }  # a process started again during the drive counts from its start
        fired = _sandbox(stack, "GET", "faults")
        report.sandbox_faults.update({f["kind"]: f.get("fired", 0) for f in fired.get("faults", [])})
        _sandbox(stack, "DELETE", "faults")
        for name in stack.restart_dead():
            _say(f"{name} exited on its own; started again")
            report.unexpected_exits[name] += 1
        report.converge_seconds = _converge(stack, options.converge_timeout)
        report.verdict = judge(database_url=stack.database_url, sandbox_url=stack.sandbox_url, checkouts=checkouts)
        stack.stop_processes()  # what they log on the way out is scanned too
        scan_logs(report.verdict, stack.our_logs)
    finally:
        stack.stop_processes()
        if not options.keep:
            stack.remove()
    return report


def _drive(stack: ChaosStack, options: Options, plan: FaultPlan, checkouts: list[Checkout], report: Report) -> float:
    saboteur = Saboteur(
        stack, plan.harness, report.harness_faults, postgres_outage_seconds=options.postgres_outage_seconds
    )
    local = threading.local()
    progress = Counter()
    lock = threading.Lock()

    def play(checkout: Checkout) -> None:
        if not hasattr(local, "client"):
            local.client = Client(
                base_url=stack.web_url, api_key=stack.api_key, sandbox_url=stack.sandbox_url, stats=report.client
            )
        with lock:
            progress["started"] += 1
        try:
            run_checkout(local.client, checkout, seed=options.seed, wait_seconds=options.wait_seconds)
        except Exception as exc:  # a checkout that crashed is reported, the run goes on
            checkout.notes.append(f"checkout crashed: {exc!r}")
            checkout.customer_left = True  # the client is gone: what it left waiting is not lost
            report.client["checkouts_crashed"] += 1
        with lock:
            progress["done"] += 1
            done = progress["done"]
        saboteur.reached(done)  # by checkouts done, not started: all of the first batch start at once

    began = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=options.concurrency)
    try:
        futures = [pool.submit(play, checkout) for checkout in checkouts]
        while not all(f.done() for f in futures):
            time.sleep(5)
            saboteur.supervise(report.unexpected_exits)
            _say(
                f"{progress['done']}/{len(checkouts)} checkouts done, {progress['started']} started, "
                f"{time.monotonic() - began:.0f}s; faults by the harness: {dict(report.harness_faults)}"
            )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # on Ctrl-C, start no more checkouts
    saboteur.finish()
    return time.monotonic() - began


def _cpu(stack: ChaosStack) -> dict[str, tuple[int, float]]:
    """CPU seconds so far by process (with its pid), the harness's own (its checkout clients) included."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {**stack.cpu_seconds(), "harness": (0, own.ru_utime + own.ru_stime)}


def _converge(stack: ChaosStack, timeout: float) -> float | None:
    """Wait until nothing moves any more: no payment or refund in flight, no due outbox row, no
    unsettled webhook event, twice in a row a few seconds apart. None if that never came."""
    began = time.monotonic()
    quiet = 0
    while time.monotonic() - began < timeout:
        left = unsettled(stack.database_url)
        quiet = quiet + 1 if not any(left.values()) else 0
        if quiet >= 3:
            return time.monotonic() - began
        if quiet == 0:
            _say(f"converging {time.monotonic() - began:.0f}s: still moving {left}")
        time.sleep(2)
    return None
