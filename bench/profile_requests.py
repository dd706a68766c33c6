"""
Where a request's CPU goes, in ours and in the bare view (`python -m bench.profile_requests` under
`python -m config.devstack exec --`).

Each WSGI application (ours, `config.wsgi:application`; the bare anchor, `bench.bare_wsgi:application`)
is loaded in a process of its own with the environment the benchmark's gunicorn gets (production
settings, DEBUG off, the bench database) and called directly with WSGI environs of the benchmark's
requests: no server, no sockets, so what is counted is the application alone. Per path it prints the
Python function calls per request under cProfile (independent of the machine's load), the process
CPU per request without the profiler, and the top functions by own time and by cumulative time.

PROFILE_N (200) requests are measured after 50 warm-up ones; PROFILE_TOP (25) rows per table;
PROFILE_PATHS (create,retrieve,list,webhook) picks the paths; PROFILE_APPS (ours,bare) the apps;
PROFILE_DUMP (a directory) keeps each profile as `<app>-<path>.prof`.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time

N = int(os.environ.get("PROFILE_N", "200"))
TOP = int(os.environ.get("PROFILE_TOP", "25"))
PATHS = os.environ.get("PROFILE_PATHS", "create,retrieve,list,webhook").split(",")
APPS = {"ours": "config.wsgi", "bare": "bench.bare_wsgi"}


def _environ(method: str, path: str, body: bytes, headers: dict[str, str], query: str = "") -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def _requests(app_name: str, path_name: str, api_key: str):
    """An endless iterator of (environ, expected status) for one path."""
    from bench import writes
    from bench.webhook_intake import Deliveries, _signed

    auth = {"Authorization": f"Bearer {api_key}"} if app_name == "ours" else {}
    counter = itertools.count()
    run = f"profile-{time.time_ns()}"
    if path_name == "create":
        for n in counter:
            headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": f"{run}-{n}"}
            yield _environ("POST", writes.CREATE_PATH, writes.BODY_BYTES, headers), 202
    if path_name in ("retrieve", "list"):
        environ = _environ(
            "POST",
            writes.CREATE_PATH,
            writes.BODY_BYTES,
            {**auth, "Content-Type": "application/json", "Idempotency-Key": f"{run}-r"},
        )
        _, body = _call(environ)
        public_id = json.loads(body)["id"]
        for _ in counter:
            if path_name == "retrieve":
                yield _environ("GET", f"{writes.CREATE_PATH}/{public_id}", b"", auth), 200
            else:
                yield _environ("GET", writes.CREATE_PATH, b"", auth, query="limit=10"), 200
    if path_name == "webhook":
        import bench.webhook_intake

        bench.webhook_intake.WEBHOOK_SECRET = os.environ["STRIPE_WEBHOOK_SECRET"]  # the server's, not this import's
        deliveries = Deliveries("profile")
        for n in counter:
            body = deliveries.body_of(deliveries.next_mark(n))
            yield _environ("POST", writes.WEBHOOK_PATH, body.encode(), _signed(body)), 200


_application = None


def _call(environ: dict) -> tuple[int, bytes]:
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    chunks = _application(environ, start_response)
    body = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return answer["status"], body


def child(app_name: str, api_key: str) -> None:
    """Load one application and profile each path against it; print a JSON line per path, then the tables."""
    global _application
    import importlib

    # Log lines go to a sink that is discarded: their formatting is counted, not a terminal's.
    report = sys.stdout
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process
    _application = importlib.import_module(APPS[app_name]).application
    for path_name in PATHS:
        requests = _requests(app_name, path_name, api_key)
        for _ in range(50):
            environ, expected = next(requests)
            status, body = _call(environ)
            assert status == expected, (app_name, path_name, status, body[:300])
        batch = [next(requests) for _ in range(N)]
        started = time.process_time()
        for environ, _ in batch:
            _call(environ)
        cpu_ms = (time.process_time() - started) * 1000 / N
        batch = [next(requests) for _ in range(N)]
        profiler = cProfile.Profile(time.process_time)  # CPU time: waits on PostgreSQL or a busy machine do not count
        profiler.enable()
        for environ, _ in batch:
            _call(environ)
        profiler.disable()
        stats = pstats.Stats(profiler)
        if os.environ.get("PROFILE_DUMP"):  # a directory: one .prof per app and path, for pstats or snakeviz
            stats.dump_stats(os.path.join(os.environ["PROFILE_DUMP"], f"{app_name}-{path_name}.prof"))
        calls = stats.total_calls / N
        print(
            json.dumps({"app": app_name, "path": path_name, "calls": round(calls), "cpu_ms": round(cpu_ms, 3)}),
            file=report,
        )
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(TOP)
            text = out.getvalue()
            print(f"--- {app_name} {path_name} by {order} (totals for {N} requests)", file=report)
            print(text[text.find("   ncalls") :], file=report)
    report.flush()


def main() -> int:
    from bench import servers

    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        report = sys.stdout
        try:
            child(sys.argv[2], os.environ["PROFILE_API_KEY"])
        except BaseException:
            import traceback

            traceback.print_exc(file=report)
            return 1
        return 0
    servers.configure_environment()
    import django

    django.setup()
    servers.setup_database()
    client_id, api_key = servers.api_key()
    with tempfile.TemporaryDirectory(prefix="profile-metrics-") as metrics_dir:
        env = {**servers.server_environment(client_id=client_id, metrics_dir=metrics_dir), "PROFILE_API_KEY": api_key}
        for app_name in os.environ.get("PROFILE_APPS", "ours,bare").split(","):
            subprocess.run(
                [sys.executable, "-m", "bench.profile_requests", "--child", app_name],
                env=env,
                check=True,
                cwd=servers.ROOT,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
