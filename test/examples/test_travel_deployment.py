"""The travel example's Dockerfile and docker-compose.yml, checked without Docker.

No Docker engine runs here, so the compose file is validated against the
Compose Specification's JSON schema (vendored in ``data/``), and what the
files refer to is checked against the repository: the build context and
Dockerfile, every COPY source, and for each container its command, config
file, healthcheck and dependencies, as they would be laid out in the image.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path, PurePosixPath

import jsonschema
import launch
import pytest
import yaml
from travel import healthcheck

from nameko_like.cli.main import build_parser
from nameko_like.config_loader import load_config

TRAVEL_DIR = Path(__file__).resolve().parents[2] / "examples" / "travel"
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "compose-spec.json"

#: The services that run the example's code (the others are stock images).
TRAVEL_SERVICES = ("airports", "trips", "gateway")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((TRAVEL_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    # The schema names draft 2019-09, in a spelling jsonschema does not map.
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


# --- the Dockerfile, read as Docker reads the instructions we use ---------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, comments dropped, continuations joined."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    return instructions


class Image:
    """Where the Dockerfile puts the files of the build context."""

    def __init__(self, dockerfile: Path, context: Path) -> None:
        self.context = context
        self.files: dict[PurePosixPath, Path] = {}  # path in the image -> source
        self.workdir = PurePosixPath("/")
        self.copy_sources: list[str] = []
        self.cmd: list[str] | None = None
        for keyword, arguments in dockerfile_instructions(dockerfile):
            if keyword == "WORKDIR":
                self.workdir = self.workdir / arguments
            elif keyword == "COPY":
                self._copy(shlex.split(arguments))
            elif keyword == "CMD":
                self.cmd = json.loads(arguments)
        #: Where the containers' commands run.
        self.final_workdir = self.workdir

    def _copy(self, words: list[str]) -> None:
        assert not any(word.startswith("--") for word in words), "COPY flags are not modelled"
        *sources, destination = words
        target = self.workdir / destination
        # A destination ending in "/" (or ".") is a directory; so it is
        # whenever there are several sources.
        into_directory = destination.endswith(("/", ".")) or len(sources) > 1
        for source in sources:
            self.copy_sources.append(source)
            local = self.context / source
            if local.is_dir():
                # A directory's contents are copied, not the directory itself.
                for file in local.rglob("*"):
                    if file.is_file() and "__pycache__" not in file.parts:
                        self.files[target / file.relative_to(local).as_posix()] = file
            elif local.is_file():
                self.files[target / local.name if into_directory else target] = local

    def has_file(self, path: PurePosixPath) -> bool:
        return path in self.files

    def has_module(self, dotted: str, workdir: PurePosixPath) -> bool:
        """Whether ``python -m dotted`` run in ``workdir`` finds a module."""
        base = workdir.joinpath(*dotted.split("."))
        return self.has_file(base.with_suffix(".py")) or self.has_file(base / "__init__.py")


@pytest.fixture(scope="module")
def image(compose) -> Image:
    build = compose["services"]["airports"]["build"]
    context = (TRAVEL_DIR / build["context"]).resolve()
    return Image(context / build["dockerfile"], context)


# --- docker-compose.yml ----------------------------------------------------------


def test_compose_file_is_valid(compose, validator):
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_rejects_mistakes(compose, validator):
    # Proof that the validation above has teeth.
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["depends_on"]["trips"]["condition"] = "service_ready"
    broken["services"]["airports"]["comand"] = "typo"
    broken["services"]["redis"]["healthcheck"]["retries"] = "many"
    assert len(list(validator.iter_errors(broken))) == 3


def test_every_travel_service_is_built_from_the_example_dockerfile(compose):
    for name in TRAVEL_SERVICES:
        build = compose["services"][name]["build"]
        context = (TRAVEL_DIR / build["context"]).resolve()
        assert (context / "setup.cfg").exists(), "the build context is the repository root"
        assert (context / build["dockerfile"]).resolve() == TRAVEL_DIR / "Dockerfile"


def test_commands_are_the_ones_run_real_runs(compose):
    assert set(TRAVEL_SERVICES) == set(launch.REAL)
    for name in TRAVEL_SERVICES:
        assert compose["services"][name]["command"] == ["python", *launch.REAL[name]]


def test_the_image_runs_embedded_by_default(image):
    assert image.cmd == ["python", *launch.EMBEDDED["travel"]]


def test_dockerfile_copy_sources_exist(image):
    assert image.copy_sources, "the Dockerfile copies nothing"
    missing = [source for source in image.copy_sources if not (image.context / source).exists()]
    assert not missing, f"COPY sources missing from the build context: {missing}"


def test_dockerignore_lets_every_copy_source_through(image):
    lines = (TRAVEL_DIR / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "an allowlist: everything is left out, then let back in"
    allowed = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    assert set(image.copy_sources) <= allowed


def parse_run_command(command: list[str]):
    """A container's ``python -m nameko_like run ...``, parsed by the CLI's own parser."""
    assert command[:3] == ["python", "-m", "nameko_like"]
    return build_parser().parse_args(command[3:])


@pytest.mark.parametrize("name", TRAVEL_SERVICES)
def test_command_config_and_modules_exist_in_the_image(compose, image, name):
    args = parse_run_command(compose["services"][name]["command"])
    assert args.command == "run"
    workdir = image.final_workdir
    for config in args.config:
        assert image.has_file(workdir / config), f"{config} is not in the image's {workdir}"
    assert args.services, "the command names no service module"
    for service in args.services:
        module = service.partition(":")[0]
        assert image.has_module(module, workdir), f"{module} is not in the image"
        assert module.split(".")[-1] == name


@pytest.mark.parametrize("name", TRAVEL_SERVICES)
def test_healthchecks_run_the_example_healthcheck(compose, image, name):
    test = compose["services"][name]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-m", "travel.healthcheck"]
    assert image.has_module("travel.healthcheck", image.final_workdir)
    assert test[4:] == [name] and name in healthcheck.SERVICES
    assert image.has_file(image.final_workdir / healthcheck.DEFAULT_CONFIG)


def test_dependencies_exist_and_are_waited_for(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}, name
            assert "test" in services[dependency].get("healthcheck", {}), (
                f"{name} waits for {dependency} to be healthy, but it has no healthcheck")
    for name in TRAVEL_SERVICES:
        assert {"rabbitmq"} <= set(services[name]["depends_on"]), name
    assert {"redis"} <= set(services["airports"]["depends_on"])
    assert {"airports", "trips"} <= set(services["gateway"]["depends_on"])


def test_rabbitmq_has_its_management_ui(compose):
    assert compose["services"]["rabbitmq"]["image"].endswith("-management")


@pytest.mark.parametrize("name", TRAVEL_SERVICES)
def test_config_reads_the_compose_environment(compose, name):
    environment = compose["services"][name]["environment"]
    config = load_config(TRAVEL_DIR / "config.yaml", env=environment)
    assert config["AMQP_URI"] == "amqp://guest:guest@rabbitmq:5672/"
    assert config["REDIS_URI"] == environment["REDIS_URI"] == "redis://redis:6379/0"
    assert config["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"


def test_config_defaults_suit_a_local_run():
    config = load_config(TRAVEL_DIR / "config.yaml", env={})
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["REDIS_URI"] is None  # so SQLite
    assert config["TRAVEL_DB_PATH"] == "travel.sqlite"
    assert config["REDIS_KEY_PREFIX"] == "travel:"


def interpolate(text: str, env: dict) -> str:
    """Compose's ``${NAME:-default}`` substitution (the only form used here)."""
    def value(match: re.Match) -> str:
        return env.get(match.group(1)) or match.group(2)

    resolved = re.sub(r"\$\{(\w+):-([^}]*)\}", value, text)
    assert "$" not in resolved, f"unsupported interpolation in {text!r}"
    return resolved


@pytest.mark.parametrize("service, variable, port", [
    ("gateway", "TRAVEL_HTTP_PORT", 8000),
    ("rabbitmq", "TRAVEL_MANAGEMENT_PORT", 15672),
    ("prometheus", "TRAVEL_PROMETHEUS_PORT", 9090),
    ("grafana", "TRAVEL_GRAFANA_PORT", 3000),
    ("jaeger", "TRAVEL_JAEGER_PORT", 16686),
])
def test_host_ports_are_configurable(compose, service, variable, port):
    # The gateway on 8000, as the tutorial's commands expect; either host
    # port may be taken (15672 by a local RabbitMQ's management UI), so an
    # environment variable moves it.
    (published,) = compose["services"][service]["ports"]
    assert interpolate(published, {}) == f"{port}:{port}"
    assert interpolate(published, {variable: "19999"}) == f"19999:{port}"


def test_only_the_gateway_the_management_ui_and_monitoring_are_published(compose):
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == {"gateway", "rabbitmq", "prometheus", "grafana", "jaeger"}


def test_services_trace_to_the_compose_jaeger(compose):
    jaeger = compose["services"]["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")
    # its OTLP/HTTP receiver listens beyond localhost, on the port the services use
    assert "receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in jaeger["command"]
    names = set()
    for name in TRAVEL_SERVICES:
        environment = compose["services"][name]["environment"]
        assert load_config(TRAVEL_DIR / "config.yaml", env=environment)["TRACING"] is True
        # what travel/telemetry.py reads to set up the OTLP exporter
        assert environment["TRAVEL_TRACES"] == "otlp"
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        names.add(environment["OTEL_SERVICE_NAME"])
    assert names == {f"travel-{name}" for name in TRAVEL_SERVICES}


def test_the_image_installs_what_telemetry_imports():
    telemetry = (TRAVEL_DIR / "travel" / "telemetry.py").read_text()
    assert "from opentelemetry.exporter.otlp.proto.http.trace_exporter import" in telemetry
    (install,) = [arguments for keyword, arguments in
                  dockerfile_instructions(TRAVEL_DIR / "Dockerfile")
                  if keyword == "RUN" and arguments.startswith("pip install")]
    words = shlex.split(install)
    extras = next(word for word in words if word.startswith(".["))
    assert "tracing" in extras[2:-1].split(",")
    assert {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= set(words)


def test_the_image_has_every_file_setup_cfg_reads(image):
    # pip warns (and a stricter build fails) when setup.cfg's "file:"
    # directives name files missing from the build context.
    setup_cfg = (image.context / "setup.cfg").read_text()
    named = re.findall(r"=\s*file:\s*(.+)$", setup_cfg, re.MULTILINE)
    assert "README.md" in "".join(named)
    for files in named:
        for name in files.split(","):
            assert image.has_file(PurePosixPath("/src") / name.strip()), name
