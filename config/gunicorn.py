"""
gunicorn's configuration hooks (`gunicorn -c config/gunicorn.py …`); the command line keeps the rest.

Loaded by the gunicorn master, which never serves a request: it imports no Django (the `config`
package brings only the Celery app object, which connects to nothing until used).
"""

from prometheus_client import multiprocess

from config.metrics.multiprocess import multiprocess_dir, process_identifier


def child_exit(server, worker) -> None:
    """Tell prometheus_client a worker died, so gauges that count only live processes drop its file.

    Its counters and histograms stay: what a dead worker counted still happened. Runs in the master.
    https://prometheus.github.io/client_python/multiprocess/
    """
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(process_identifier(worker.pid))
