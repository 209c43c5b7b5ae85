"""The cluster profile's services, real and on loopback, for the rehearsal tests: a Postgres server
(Debian's `postgresql`: initdb + pg_ctl into a temp folder, trust auth) and an S3 API server (moto in
server mode). Started by the test session, stopped after it. `missing()` says what is not installed,
so the tests that need them skip only then (.ci/run installs `postgresql`; moto is in the test extra).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ecom_assets_tests.servers import free_port

DATABASES = ("lake", "mlflow", "dagster")
BUCKET = "ecom-lake"
KEY_ID, SECRET = "rehearsal", "rehearsal-secret"  # moto accepts any keys


def postgres_bin() -> Path | None:
    """The folder of Debian's Postgres server binaries (initdb, pg_ctl), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]), reverse=True)
    return Path(found[0]).parent if found else None


def missing() -> str:
    """What the rehearsal lacks on this machine, or "" when it can run."""
    if postgres_bin() is None:
        return "Postgres server binaries (apt-get install postgresql)"
    if importlib.util.find_spec("moto") is None:
        return "moto (pip install 'moto[server]')"
    return ""


@dataclass(frozen=True)
class ClusterServices:
    pg_port: int
    s3_endpoint: str

    def dsn(self, database: str) -> str:
        """A libpq key/value DSN (the form DuckLake's postgres catalog takes)."""
        return f"dbname={database} host=127.0.0.1 port={self.pg_port} user=postgres"

    def url(self, database: str) -> str:
        # SQLAlchemy 2.1 (Dagster, MLflow) defaults to psycopg 3 for postgresql://: name the driver installed.
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.pg_port}/{database}"

    def env(self, prefix: str) -> dict[str, str]:
        """The cluster profile's variables (docs/configuration.md) for a deployment named `prefix`:
        its own databases' schemas are shared, its own prefix in the bucket."""
        return {
            "ECOM_PROFILE": "cluster",
            "ECOM_LAKE_CATALOG_DSN": self.dsn("lake"),
            "ECOM_LAKE_DATA_URL": f"s3://{BUCKET}/{prefix}/lake",
            "ECOM_S3_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "ECOM_MLFLOW_TRACKING_URI": self.url("mlflow"),
            "ECOM_MLFLOW_ARTIFACTS_URL": f"s3://{BUCKET}/{prefix}/mlartifacts",
            "ECOM_DAGSTER_PG_URL": self.url("dagster"),
            "ECOM_FILES_URL": f"s3://{BUCKET}/{prefix}/files",
        }

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: then run them as `nobody`.
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[int]:
    """A Postgres server on a free loopback port with DATABASES created; yields the port."""
    bin_dir = postgres_bin()
    assert bin_dir is not None, missing()
    # Not under pytest's tmp folder: that one is private to root, and the server runs as nobody.
    root = Path(tempfile.mkdtemp(prefix="ecom-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    data, log, port = root / "data", root / "server.log", free_port()
    run = lambda *args: subprocess.run(_as_postgres_user([str(a) for a in args]), check=True, capture_output=True)  # noqa: E731
    try:
        run(bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        run(bin_dir / "pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "-t", "60", "start")
        try:
            import psycopg2

            db = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
            db.autocommit = True  # CREATE DATABASE runs outside a transaction
            with db.cursor() as cur:
                for name in DATABASES:
                    cur.execute(f"CREATE DATABASE {name}")
            db.close()
            yield port
        finally:
            run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{exc.cmd} failed: {exc.stderr.decode(errors='replace')}\n{server_log}") from exc
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 API server on a free loopback port with the bucket BUCKET; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        services = ClusterServices(0, endpoint)
        for _ in range(50):
            try:
                services.s3().create_bucket(Bucket=BUCKET)
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        yield endpoint
    finally:
        server.stop()


@contextmanager
def cluster_services() -> Iterator[ClusterServices]:
    with postgres_server() as port, s3_server() as endpoint:
        yield ClusterServices(port, endpoint)


def redis_bin() -> str | None:
    """Debian's `redis-server`: the Celery broker and result backend of the distributed executor."""
    return shutil.which("redis-server") or next(iter(glob.glob("/usr/bin/redis-server")), None)


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis server on a free loopback port, in memory only; yields its URL."""
    binary = redis_bin()
    assert binary is not None, "redis-server (apt-get install redis-server)"
    root, port = Path(tempfile.mkdtemp(prefix="ecom-redis-")), free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(root)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class CeleryWorker:
    """One `ecom-assets worker` process with its own empty ECOM_HOME and working directory."""

    name: str
    process: subprocess.Popen
    home: Path
    log: Path

    def child_pids(self) -> list[int]:
        """The pool processes that execute the steps (Celery's prefork children)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []


@contextmanager
def celery_workers(env: dict[str, str], count: int, root: Path) -> Iterator[list[CeleryWorker]]:
    """`count` Celery workers (one step at a time each) that share nothing with the caller but the services
    in `env`: each starts in its own empty folder, which is also its ECOM_HOME. Waits until all of them
    answer a ping."""
    workers: list[CeleryWorker] = []
    try:
        for index in range(1, count + 1):
            home = root / f"worker{index}"
            home.mkdir(parents=True)
            log = root / f"worker{index}.log"
            worker_env = {**os.environ, **env, "ECOM_HOME": str(home / "ecom_home"), "PYTHONPATH": _project_root()}
            worker_env.pop("DAGSTER_HOME", None)
            name = f"worker{index}@rehearsal"
            cmd = [sys.executable, "-m", "ecom_assets.cli", "worker", "--name", name]
            with log.open("w") as out:
                process = subprocess.Popen(cmd, cwd=home, env=worker_env, stdout=out, stderr=subprocess.STDOUT)
            workers.append(CeleryWorker(name, process, home, log))
        _wait_for_workers(env, [w.name for w in workers], workers)
        yield workers
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in workers:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def _project_root() -> str:
    return str(Path(__file__).resolve().parents[1])


def _wait_for_workers(env: dict[str, str], names: list[str], workers: list[CeleryWorker], timeout: float = 90) -> None:
    from celery import Celery

    app = Celery(broker=env["ECOM_CELERY_BROKER_URL"], backend=env["ECOM_CELERY_BROKER_URL"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                tail = worker.log.read_text()[-3000:]
                raise RuntimeError(f"{worker.name} exited {worker.process.returncode}: {tail}")
        answered = {name for reply in app.control.ping(timeout=1.0) or [] for name in reply}
        if set(names) <= answered:
            return
    raise RuntimeError(f"workers {names} did not answer within {timeout:.0f} s")


def isolated_env(services: ClusterServices, name: str) -> dict[str, str]:
    """The cluster profile's variables for a deployment of its own: the databases `<db>_<name>`, created
    here, and the bucket prefix `name` (services.env shares the databases between prefixes)."""
    import psycopg2

    db = psycopg2.connect(host="127.0.0.1", port=services.pg_port, user="postgres", dbname="postgres")
    db.autocommit = True
    with db.cursor() as cur:
        for database in DATABASES:
            cur.execute(f"CREATE DATABASE {database}_{name}")
    db.close()
    env = services.env(name)
    env["ECOM_LAKE_CATALOG_DSN"] = services.dsn(f"lake_{name}")
    env["ECOM_MLFLOW_TRACKING_URI"] = services.url(f"mlflow_{name}")
    env["ECOM_DAGSTER_PG_URL"] = services.url(f"dagster_{name}")
    return env
