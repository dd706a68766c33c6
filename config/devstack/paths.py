"""Where the embedded servers keep their data and listen. Imported by settings: keep it stdlib-only."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR") or BASE_DIR / ".data").resolve()
RUN_DIR = DATA_DIR / "run"
PG_DATA_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"

# PostgreSQL listens on a Unix socket only (no TCP), so the port is just part of the socket's
# file name and can never clash with a system PostgreSQL on 5432.
PG_PORT = 5432
PG_USER = "postgres"
PG_DATABASE = "payments"
# A non-standard default, so a developer's own Redis on 6379 is left alone; the launcher records
# the port it really used in RUN_DIR/redis.port (it moves on if this one is taken).
DEFAULT_REDIS_PORT = 16379
# Unix socket paths are limited to 107 bytes (sun_path); deep checkouts fall back to /tmp.
_SUN_PATH_MAX = 107


def pg_socket_dir() -> Path:
    """Return the directory holding PostgreSQL's socket: under .data/ unless the path is too long."""
    preferred = RUN_DIR / "pg"
    if len(str(preferred / f".s.PGSQL.{PG_PORT}.lock")) <= _SUN_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(DATA_DIR).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"payorch-{digest}"


def local_database_url(database: str = PG_DATABASE) -> str:
    """Return the URL of the embedded PostgreSQL (whether or not it is running now)."""
    return f"postgres://{PG_USER}@/{database}?host={pg_socket_dir()}&port={PG_PORT}"


def redis_port_file() -> Path:
    return RUN_DIR / "redis.port"


def local_redis_port() -> int:
    """Return the port the embedded Redis uses: the one recorded by its launcher, else the default."""
    explicit = os.environ.get("EMBEDDED_REDIS_PORT")
    if explicit:
        return int(explicit)
    try:
        return int(redis_port_file().read_text().strip())
    except (FileNotFoundError, ValueError):
        return DEFAULT_REDIS_PORT


def local_redis_url(db: int = 0) -> str:
    """Return the URL of the embedded Redis (loopback only)."""
    return f"redis://127.0.0.1:{local_redis_port()}/{db}"


def _write_dev_secrets(path: Path, secrets: dict) -> None:
    import json

    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(secrets, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def dev_secret_set(name: str, value: str) -> None:
    """Replace a development secret (e.g. a demo key whose database was reset)."""
    import fcntl
    import json

    path = DATA_DIR / "dev-secrets.json"
    with open(DATA_DIR / ".dev-secrets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        secrets = json.loads(path.read_text()) if path.exists() else {}
        _write_dev_secrets(path, {**secrets, name: value})


def dev_secret(name: str, factory) -> str:
    """Return a development-only secret kept in .data/dev-secrets.json, generating it once.

    Local settings and the launcher use this instead of secret defaults in code; production
    never calls it (its settings require real values from the environment).
    """
    import fcntl
    import json

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "dev-secrets.json"
    with open(DATA_DIR / ".dev-secrets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        secrets = json.loads(path.read_text()) if path.exists() else {}
        if name not in secrets:
            secrets[name] = factory()
            _write_dev_secrets(path, secrets)
        return secrets[name]
