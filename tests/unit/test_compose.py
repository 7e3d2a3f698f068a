"""The deployment files (compose.yaml, infra/Dockerfile, infra/minio-setup.sh, .dockerignore) read as
Docker would read them. No Docker engine runs here, so these parse the files and check what a
`docker compose up` depends on: services, pinned images, health checks, start order, one environment
for the app, and the MinIO wiring to the API."""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
MINIO_SETUP = ROOT / "infra" / "minio-setup.sh"
DOCKERIGNORE = ROOT / ".dockerignore"

SERVICES = {"postgres", "redis", "minio", "minio-setup", "migrate", "api", "worker", "reconciler"}
ONE_SHOT = {"minio-setup", "migrate"}
APP_SERVICES = ("api", "worker", "migrate", "reconciler")

SECRETS = (
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "CHUTE_S3_ACCESS_KEY_ID",
    "CHUTE_S3_SECRET_ACCESS_KEY",
    "CHUTE_EVENTS_TOKEN",
)


def made_secrets() -> dict[str, str]:
    """What `infra/compose-secrets > .env` gives an operator."""
    made = subprocess.run([ROOT / "infra" / "compose-secrets"], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in made.stdout.splitlines())


@cache
def operator_env() -> dict[str, str]:
    return made_secrets()


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; innermost first.
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^${}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """What Compose makes of a value with only `env` set (by default the secrets an operator made with
    infra/compose-secrets, and nothing else)."""
    env = operator_env() if env is None else env

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        current = env.get(name)
        if operator in (":-", ":?") and not current:
            current = None
        if current is not None:
            return current
        if operator in (":-", "-"):
            return argument
        raise AssertionError(f"${{{name}}} has no default: `docker compose up` needs it set")

    value = value.replace("$$", "\0")
    while True:
        replaced = _INTERPOLATION.sub(substitute, value)
        if replaced == value:
            break
        value = replaced
    assert "${" not in value and "$" not in value.replace("\0", ""), f"unresolved: {value!r}"
    return value.replace("\0", "$")


def as_words(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): interpolate(str(value)) for key, value in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def test_every_service_is_defined(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= SERVICES, f"missing: {sorted(SERVICES - set(services))}"


def test_every_variable_resolves_once_the_secrets_are_made() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            interpolate(line)


def test_no_secret_has_a_default() -> None:
    """`${NAME:?message}` makes `docker compose up` stop with the message while NAME is unset or empty;
    `${NAME:-default}` would start with a secret an attacker also knows, `${NAME}` with an empty one."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not used"
        for use in uses:
            assert use.startswith(":?"), f"${{{name}{use}}} starts without a secret of the operator's"
        with pytest.raises(AssertionError, match=name):
            interpolate("${" + name + uses[0] + "}", {})


def test_compose_secrets_makes_every_secret_fresh_and_url_safe() -> None:
    first, second = made_secrets(), made_secrets()
    assert sorted(first) == sorted(SECRETS)
    for name in SECRETS:
        assert re.fullmatch(r"[A-Za-z0-9_-]{8,}", first[name]), name
        assert first[name] != second[name], name


def test_only_the_api_and_the_s3_endpoint_are_published(services: dict[str, dict[str, Any]]) -> None:
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert published == {"api": ["8000:8000"], "minio": ["9000:9000"]}


def test_images_are_pinned_to_a_tag(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" not in service:
            continue
        image = interpolate(service["image"])
        repository, _, tag = image.split("@")[0].rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"


def test_app_services_build_one_image_from_infra_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    images = set()
    for name in APP_SERVICES:
        build = services[name]["build"]
        context = ROOT / build["context"]
        assert context.resolve() == ROOT, f"{name} must build from the repository root"
        assert build["dockerfile"] == "infra/Dockerfile", name
        assert (context / build["dockerfile"]).is_file()
        images.add(interpolate(services[name]["image"]))
    assert len(images) == 1, f"api, worker and migrate should share one image, not {images}"


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        healthcheck = service.get("healthcheck") or {}
        assert not healthcheck.get("disable"), name
        test = healthcheck.get("test")
        assert isinstance(test, list) and len(test) >= 2, f"{name} has no health check command"
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name


def test_one_shot_services_do_not_restart(services: dict[str, dict[str, Any]]) -> None:
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", name
        assert "healthcheck" not in services[name], name


def test_health_checks_probe_the_right_thing(services: dict[str, dict[str, Any]]) -> None:
    api_probe = " ".join(services["api"]["healthcheck"]["test"][1:])
    assert "http://127.0.0.1:8000/health" in api_probe
    assert "curl" not in api_probe and "wget" not in api_probe, "the slim image has neither"
    worker_probe = " ".join(services["worker"]["healthcheck"]["test"][1:])
    assert "celery -A worker.celery_app inspect ping" in worker_probe
    assert "celery@$$HOSTNAME" in worker_probe, "ping this container's node; $$ escapes Compose"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


def test_app_services_start_after_migration_and_healthy_dependencies(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["minio-setup"]["condition"] == "service_completed_successfully", name
        for dependency in ("postgres", "redis"):
            assert depends_on[dependency]["condition"] == "service_healthy", (name, dependency)
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-setup"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_dependency_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: give each dependency a condition"
        for dependency, spec in depends_on.items():
            assert dependency in services, (name, dependency)
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} can never be healthy"
            if spec["condition"] == "service_completed_successfully":
                assert dependency in ONE_SHOT, f"{dependency} never completes"


def test_app_commands(services: dict[str, dict[str, Any]]) -> None:
    api = as_words(services["api"]["command"])
    assert api[:2] == ["uvicorn", "api.main:app"]
    # Inside its container the API must listen beyond loopback, or the published port reaches nothing.
    assert api[api.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert api[api.index("--port") + 1] == "8000"
    worker = as_words(services["worker"]["command"])
    assert worker[:4] == ["celery", "-A", "worker.celery_app", "worker"]
    # Set as a setting, not a flag: the model's threads are the cores shared out among the processes.
    assert not any(word.startswith("--concurrency") for word in worker)
    assert "CHUTE_WORKER_CONCURRENCY" not in services["worker"]["environment"]  # one per core
    assert as_words(services["migrate"]["command"]) == ["chute", "migrate"]
    assert as_words(services["reconciler"]["command"]) == ["python", "-m", "worker.reconciler"]
    assert "8000:8000" in [str(port) for port in services["api"]["ports"]]


def test_redis_is_durable_and_never_evicts(services: dict[str, dict[str, Any]]) -> None:
    command = " ".join(as_words(services["redis"]["command"]))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_worker_runs_two_replicas(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker, "a fixed name forbids replicas"
    assert "ports" not in worker, "replicas cannot share a published port"


def test_worker_stop_is_a_soft_shutdown_that_finishes_before_sigkill(
    services: dict[str, dict[str, Any]],
) -> None:
    from shared.queue import make_celery
    from shared.settings import Settings

    worker = services["worker"]
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    # SIGTERM alone is Celery's warm shutdown, which waits for the task however long it runs.
    assert environment(worker).get("REMAP_SIGTERM") == "SIGQUIT"
    soft_timeout = make_celery(Settings()).conf.worker_soft_shutdown_timeout
    assert soft_timeout > 0, "the worker has no soft shutdown to give time to"
    grace = re.fullmatch(r"(\d+)([sm])", str(worker["stop_grace_period"]))
    assert grace, worker["stop_grace_period"]
    seconds = int(grace[1]) * (60 if grace[2] == "m" else 1)
    assert seconds >= soft_timeout + 15, "SIGKILL would land during the soft shutdown or the requeue"


def test_app_services_share_one_chute_environment(services: dict[str, dict[str, Any]]) -> None:
    chute_envs = [
        {key: value for key, value in environment(services[name]).items() if key.startswith("CHUTE_")}
        for name in APP_SERVICES
    ]
    assert chute_envs[0] == chute_envs[1] == chute_envs[2]
    env = chute_envs[0]
    required = {
        "CHUTE_DATABASE_URL",
        "CHUTE_REDIS_URL",
        "CHUTE_S3_ENDPOINT_URL",
        "CHUTE_S3_PUBLIC_ENDPOINT_URL",
        "CHUTE_S3_BUCKET",
        "CHUTE_S3_REGION",
        "CHUTE_S3_ACCESS_KEY_ID",
        "CHUTE_S3_SECRET_ACCESS_KEY",
        "CHUTE_EVENTS_TOKEN",
    }
    assert required <= set(env), f"missing: {sorted(required - set(env))}"
    assert all(env[key] for key in required), "every setting has a value"

    database = urlsplit(env["CHUTE_DATABASE_URL"])
    postgres = environment(services["postgres"])
    assert database.scheme in ("postgresql", "postgres")
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]

    redis = urlsplit(env["CHUTE_REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)

    s3 = urlsplit(env["CHUTE_S3_ENDPOINT_URL"])
    assert (s3.hostname, s3.port) == ("minio", 9000)
    assert urlsplit(env["CHUTE_S3_PUBLIC_ENDPOINT_URL"]).scheme in ("http", "https")
    assert "9000:9000" in [str(port) for port in services["minio"]["ports"]]


def test_minio_setup_provisions_what_the_app_uses(services: dict[str, dict[str, Any]]) -> None:
    app = environment(services["api"])
    setup = environment(services["minio-setup"])
    minio = environment(services["minio"])
    for key in ("CHUTE_S3_BUCKET", "CHUTE_S3_ACCESS_KEY_ID", "CHUTE_S3_SECRET_ACCESS_KEY"):
        assert setup[key] == app[key], key
    for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert setup[key] == minio[key], key
    assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses shorter root passwords"
    assert len(app["CHUTE_S3_SECRET_ACCESS_KEY"]) >= 8, "MinIO refuses shorter secret keys"
    assert urlsplit(setup["MINIO_URL"]).hostname == "minio"

    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services["minio-setup"]["volumes"]}
    entrypoint = as_words(services["minio-setup"]["entrypoint"])
    script = entrypoint[-1]
    assert (ROOT / mounts[script]).resolve() == MINIO_SETUP


def test_minio_allows_the_browser_origin_and_posts_events_to_the_api(
    services: dict[str, dict[str, Any]],
) -> None:
    minio = environment(services["minio"])
    origins = minio.get("MINIO_API_CORS_ALLOW_ORIGIN", "")
    assert origins and all(urlsplit(origin).scheme for origin in origins.split(","))

    targets = {
        key.removeprefix("MINIO_NOTIFY_WEBHOOK_ENABLE_")
        for key, value in minio.items()
        if key.startswith("MINIO_NOTIFY_WEBHOOK_ENABLE_") and value == "on"
    }
    assert len(targets) == 1, targets
    target = targets.pop()
    endpoint = urlsplit(minio[f"MINIO_NOTIFY_WEBHOOK_ENDPOINT_{target}"])
    assert (endpoint.hostname, endpoint.port, endpoint.path) == ("api", 8000, "/v1/events/s3")
    token = environment(services["api"])["CHUTE_EVENTS_TOKEN"]
    assert minio[f"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_{target}"] == f"Bearer {token}"

    # minio-setup subscribes the bucket to the target MinIO was started with.
    arn = environment(services["minio-setup"])["MINIO_WEBHOOK_ARN"]
    assert arn == f"arn:minio:sqs::{target}:webhook"


def test_volumes_are_named_and_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    for name in ("postgres", "redis", "minio"):
        sources = [str(volume).split(":")[0] for volume in services[name]["volumes"]]
        named = [source for source in sources if not source.startswith((".", "/"))]
        assert named, f"{name} keeps its data in no named volume"
        assert set(named) <= declared, f"{name}: undeclared volume"
    postgres_targets = [str(volume).split(":")[1] for volume in services["postgres"]["volumes"]]
    if "pg18" in services["postgres"]["image"]:
        # Postgres 18 images refuse a volume at /var/lib/postgresql/data.
        assert postgres_targets == ["/var/lib/postgresql"]


def test_dockerfile_installs_cpu_torch_before_the_project(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    runs = [arguments for keyword, arguments in dockerfile_instructions if keyword == "RUN"]
    torch = [i for i, run in enumerate(runs) if "torch==2.13.0" in run]
    assert torch, "torch is not pinned to 2.13.0"
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch[0]]
    project = [i for i, run in enumerate(runs) if re.search(r"pip install (-r \S+|.*\s\.)(\s|$)", run)]
    assert project, "the project is never installed"
    assert torch[0] < min(project), "torch must come from the CPU index before the project's deps"


def test_dockerfile_runtime_is_slim_non_root_and_quiet(
    dockerfile_instructions: list[tuple[str, str]],
) -> None:
    stages = [i for i, (keyword, _) in enumerate(dockerfile_instructions) if keyword == "FROM"]
    assert stages
    runtime = dockerfile_instructions[stages[-1] :]
    args = {
        name: default
        for keyword, arguments in dockerfile_instructions
        if keyword == "ARG" and "=" in arguments
        for name, default in [arguments.split("=", 1)]
    }
    base = runtime[0][1].split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda match: args[match[1]], base)
    assert base.startswith("python:3.11-slim"), base

    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users, "the runtime stage runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")

    env = " ".join(arguments for keyword, arguments in runtime if keyword == "ENV")
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "DO_NOT_TRACK=1",
        "HF_HUB_OFFLINE=1",
        "ORT_DISABLE_TELEMETRY=1",
        "UNSTRUCTURED_DISABLE_NOTICE=1",
    ):
        assert setting in env.split(), setting


def test_dockerignore_keeps_local_state_out_and_the_project_in() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for pattern in (".venv", ".git", ".chute", "**/__pycache__", "bench/results", ".env"):
        assert pattern in patterns, pattern
    needed = {"pyproject.toml", "README.md", "api", "worker", "shared", "cli", "infra"}
    assert not needed & patterns, f"the build needs {sorted(needed & patterns)}"
    assert not {"*", "**"} & patterns


def test_minio_setup_script_is_idempotent() -> None:
    script = MINIO_SETUP.read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    assert script.startswith("#!/bin/sh")
    assert "set -eu" in lines
    make_bucket = [line for line in lines if line.startswith("mc mb ")]
    assert make_bucket and all(
        "--ignore-existing" in line.split() or "-p" in line.split() for line in make_bucket
    ), "creating the bucket must succeed when it exists"
    add_event = [line for line in lines if "mc event add" in line]
    assert add_event and all("--ignore-existing" in line.split() for line in add_event)
    assert all("--event put" in line for line in add_event)
