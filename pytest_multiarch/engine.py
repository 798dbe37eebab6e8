"""The one place that talks to Docker: which engine, and the clients bound to it.

An ``Engine`` is one Docker engine as the docker CLI would pick it: ``DOCKER_HOST`` (with
``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else the context named by ``DOCKER_CONTEXT`` or
``currentContext`` in the CLI's config.json, else the local default socket. It hands out a
docker-py client and a python-on-whales client bound to that endpoint (never by changing
``os.environ``), what its builder can build and run (preflight.py, asked once), and the host at
which its published ports are reached. Nothing else in the package creates a Docker client.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_multiarch.errors import DOCTOR_HINT, EngineError
from pytest_multiarch.jobs import Once
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    import docker
    from python_on_whales import DockerClient

    from pytest_multiarch.dialbridge import DialBridge
    from pytest_multiarch.preflight import Capabilities

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# docker-py's default is 60 s; a call to a local engine takes milliseconds.
API_TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where an engine listens, and how the user named it (for messages)."""

    url: str  # unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host
    context: str | None = None  # the docker context it came from; None: a URL or the default
    from_env: bool = False  # DOCKER_HOST set it
    tls_verify: bool = False
    cert_path: str | None = None
    given: bool = False  # named by --multiarch-engine as a URL

    @property
    def bound(self) -> bool:
        """Named by the user (variable, context or option): the CLI must be told which one."""
        return self.from_env or self.given or self.context is not None

    @property
    def is_local(self) -> bool:
        """The engine listens on this machine's socket (or named pipe)."""
        return self.url.startswith(("unix://", "npipe://"))

    @property
    def host_name(self) -> str | None:
        """The host of a ``tcp://`` or ``ssh://`` endpoint; None for a local socket."""
        if self.is_local:
            return None
        return urllib.parse.urlparse(self.url).hostname

    @property
    def key(self) -> tuple[str, str | None]:
        """Equal for two endpoints that reach the same engine the same way."""
        return (self.url, self.context)

    def describe(self) -> str:
        """``DOCKER_HOST=tcp://…``, ``context 'x' (ssh://…)`` or the URL, for messages."""
        if self.from_env:
            return f"DOCKER_HOST={self.url}"
        if self.context:
            return f"context {self.context!r} ({self.url})"
        return self.url


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint the docker CLI would use, read from ``environ`` (default: the process's)."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        verify = env.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
        return Endpoint(env["DOCKER_HOST"], from_env=True, tls_verify=verify, cert_path=env.get("DOCKER_CERT_PATH"))
    name = cli_context_name(env)
    if name in ("", "default"):
        return Endpoint(DEFAULT_SOCKET)
    endpoint = _context_endpoint(name, env)
    if endpoint is None:
        source = "DOCKER_CONTEXT" if env.get("DOCKER_CONTEXT") else "config.json"
        raise EngineError(
            f"the docker CLI uses context {name!r} (from {source}), "
            f"which does not exist or has no Docker endpoint. Pick one with `docker context use NAME` "
            f"(`docker context ls` lists them). {DOCTOR_HINT}"
        )
    return endpoint


def named_endpoint(text: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint ``--multiarch-engine`` names: a unix://, tcp://, ssh:// URL as it is, else a
    docker context (EngineError naming it when there is no such context)."""
    env = os.environ if environ is None else environ
    if "://" in text:
        return Endpoint(text, given=True)
    if text == "default":
        return Endpoint(DEFAULT_SOCKET, given=True)
    endpoint = _context_endpoint(text, env)
    if endpoint is None:
        raise EngineError(
            f"--multiarch-engine names context {text!r}, which does not exist or has no Docker endpoint "
            f"(`docker context ls` lists them; `docker context create {text} --docker host=ssh://user@host` "
            f"makes one). {DOCTOR_HINT}"
        )
    return endpoint


def cli_context_name(environ: Mapping[str, str] | None = None) -> str:
    """The context the docker CLI uses, as it picks it: DOCKER_CONTEXT, else ``currentContext``
    in its config.json; "" when neither is set (the default context)."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"]
    try:
        config = json.loads((docker_config_dir(env) / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    name = config.get("currentContext") if isinstance(config, dict) else None
    return name if isinstance(name, str) else ""


def _context_endpoint(name: str, env: Mapping[str, str]) -> Endpoint | None:
    """The Docker endpoint of context ``name``, read from the CLI's context store
    (``contexts/meta/<sha256 of the name>/meta.json``); None when there is none. Read here, not
    with docker-py's ContextAPI, which looks in ~/.docker whenever DOCKER_CONFIG holds no
    config.json yet."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    try:
        meta = json.loads((docker_config_dir(env) / "contexts" / "meta" / digest / "meta.json").read_text())
        docker_endpoint = meta["Endpoints"]["docker"]
        host = docker_endpoint["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(host, str) or not host:
        return None
    tls_dir = docker_config_dir(env) / "contexts" / "tls" / digest / "docker"
    has_tls = (tls_dir / "ca.pem").is_file()
    return Endpoint(
        host,
        context=name,
        tls_verify=has_tls and not docker_endpoint.get("SkipTLSVerify", False),
        cert_path=str(tls_dir) if has_tls else None,
    )


def docker_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


class Engine:
    """One Docker engine: its endpoint, clients bound to it (made on first use, thread-safe) and
    what its builder can do (asked once). Safe to share between threads."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        container_host: str | None = None,
        builder: str | None = None,
        cache_dir: Path | None = None,
        unusable: EngineError | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.builder = builder  # the buildx builder to use; None: the CLI's current one
        self._unusable = unusable  # why this engine cannot even be named (a broken context)
        self._container_host = container_host
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._sdk: docker.DockerClient | None = None
        self._bridge: DialBridge | None = None
        self._cli: DockerClient | None = None
        self._capabilities: Once[Capabilities] = Once(self._inspect, remember=(EngineError,))

    @classmethod
    def named(cls, text: str, *, builder: str | None = None, cache_dir: Path | None = None) -> Engine:
        """The engine ``--multiarch-engine PLATFORM=TEXT`` names; when it cannot even be named,
        one whose every use raises the EngineError that says so (its platforms' tests report it)."""
        try:
            endpoint = named_endpoint(text)
        except EngineError as exc:
            return cls(Endpoint(text), unusable=exc)
        return cls(endpoint, builder=builder, cache_dir=cache_dir)

    @classmethod
    def default(
        cls, *, container_host: str | None = None, builder: str | None = None, cache_dir: Path | None = None
    ) -> Engine:
        """The engine the docker CLI uses now. When its context is broken, an engine whose every
        use raises the EngineError that says so (tests that need Docker report it)."""
        try:
            endpoint = resolve_endpoint()
        except EngineError as exc:
            return cls(Endpoint("unknown://"), unusable=exc)
        return cls(endpoint, container_host=container_host, builder=builder, cache_dir=cache_dir)

    def __repr__(self) -> str:
        return f"<Engine {self.endpoint.describe()}>"

    @property
    def name(self) -> str:
        """How the user named it: the context, else the endpoint URL."""
        return self.endpoint.context or self.endpoint.url

    @property
    def label(self) -> str:
        """For progress lines and the summary: "" for the docker CLI's own local engine, else
        how the user named it."""
        return "" if self.endpoint.is_local and not self.endpoint.bound else self.name

    @property
    def container_host(self) -> str:
        """Where this engine's published ports are reached from here: the override, else
        127.0.0.1 for a local socket, else the endpoint's host name."""
        if self._container_host:
            return self._container_host
        return self.endpoint.host_name or "127.0.0.1"

    @property
    def publish_ip(self) -> str:
        """The host address ports are published on: loopback for a local engine (nothing else
        on the network reaches the app); the engine's own default otherwise."""
        return "127.0.0.1" if self.endpoint.is_local else ""

    @property
    def sdk(self) -> docker.DockerClient:
        """docker-py, bound to this endpoint: the API calls of every run (milliseconds each). An
        ssh:// engine is reached through a DialBridge (dialbridge.py), not docker-py's own ssh."""
        if self._unusable is not None:
            raise self._unusable
        with self._lock:
            if self._sdk is None:
                import docker

                environment = self._environment()
                if self.endpoint.url.startswith("ssh://"):
                    from pytest_multiarch.dialbridge import DialBridge

                    self._bridge = DialBridge(self.endpoint.url)
                    environment = {"DOCKER_HOST": self._bridge.url}
                self._sdk = docker.from_env(environment=environment, timeout=API_TIMEOUT_SECONDS)
            return self._sdk

    @property
    def cli(self) -> DockerClient:
        """python-on-whales, bound to this endpoint: buildx inspection and imagetools, which only
        the CLI does; it calls the CLI as ``docker_command`` says."""
        if self._unusable is not None:
            raise self._unusable
        with self._lock:
            if self._cli is None:
                from python_on_whales import DockerClient

                self._cli = DockerClient(client_call=self.docker_command())
            return self._cli

    def docker_command(self) -> list[str]:
        """The docker CLI's command line bound to this endpoint: ``--context`` for a docker
        context, ``--host`` (and the TLS flags) for an explicit one, nothing more for the
        default context, which the CLI picks without being told. Builds run it directly: loading
        python-on-whales for them would cost 0.16 s of CPU before the first build."""
        command = ["docker"]
        if self.endpoint.context:
            return [*command, "--context", self.endpoint.context]
        if not self.endpoint.bound:
            return command
        command += ["--host", self.endpoint.url]
        if self.endpoint.tls_verify:
            command += ["--tls", "--tlsverify"]
        for flag, path in self._cli_cert_paths().items():
            command += [f"--{flag}", str(path)]
        return command

    def _environment(self) -> dict[str, str]:
        """The variables docker-py reads, for this endpoint only (os.environ is never changed)."""
        env = {"DOCKER_HOST": self.endpoint.url}
        if self.endpoint.tls_verify:
            env["DOCKER_TLS_VERIFY"] = "1"
        if self.endpoint.cert_path:
            env["DOCKER_CERT_PATH"] = self.endpoint.cert_path
        return env

    def _cli_cert_paths(self) -> dict[str, Any]:
        if not self.endpoint.cert_path:
            return {}
        folder = Path(self.endpoint.cert_path)
        return {"tlscacert": folder / "ca.pem", "tlscert": folder / "cert.pem", "tlskey": folder / "key.pem"}

    # -- what it can do --------------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """What the engine and its builder can build and run, asked once (EngineError when the
        engine or buildx cannot be used; the same error again on every later call)."""
        if self._unusable is not None:
            raise self._unusable
        return self._capabilities.get()

    def _inspect(self) -> Capabilities:
        from pytest_multiarch import preflight

        try:
            found = preflight.cached_capabilities(self, self._cache_dir)
        except EngineError:
            raise
        except Exception as exc:  # a broken install, say: a message, not an INTERNALERROR
            raise EngineError(
                f"inspecting the Docker engine at {self.endpoint.describe()} failed: {type(exc).__name__}: {exc}"
            ) from None
        self._check_builder(found)
        return found

    def _check_builder(self, found: Capabilities) -> None:
        """A builder with the ``docker`` driver builds into the engine of its own context only
        (``default`` follows DOCKER_HOST and -H): refuse one that would load elsewhere."""
        if not self.builder or found.builder_driver != "docker":
            return
        own = {node.split("=", 1)[-1] for node in found.builder_nodes}
        mine = self.endpoint.context or "default"
        if mine not in own:
            raise EngineError(
                f"builder {self.builder!r} uses the docker driver, which builds into the engine of context "
                f"{', '.join(sorted(own)) or '?'} only, not into {self.endpoint.describe()}. Drop "
                f"--multiarch-builder, or use a builder that can load anywhere: "
                f"`docker buildx create --name multiarch --driver docker-container` and --multiarch-builder multiarch."
            )

    @property
    def native(self) -> Platform:
        return self.capabilities().native

    def resolve(self, platform: Platform) -> Platform:
        """``platform`` with ``emulated`` set; EngineError or PlatformUnavailable otherwise."""
        return self.capabilities().resolve(platform)

    def is_native(self, platform: Platform) -> bool:
        return self.capabilities().is_native(platform)

    def answers(self) -> bool:
        """Whether the engine answers now (a ping, within a few seconds)."""
        try:
            return bool(self.sdk.api.ping())
        except Exception:
            return False

    def close(self) -> None:
        """Close the API client's connections (the CLI client holds none)."""
        with self._lock:
            sdk, self._sdk = self._sdk, None
            bridge, self._bridge = self._bridge, None
        if sdk is not None:
            try:
                sdk.close()
            except Exception:
                pass
        if bridge is not None:
            bridge.close()


def route(
    default: Engine, routes: Mapping[Platform, str], *, builder: str | None, cache_dir: Path | None
) -> dict[Platform, Engine]:
    """The engine of each platform ``routes`` (--multiarch-engine) names: one Engine per endpoint,
    the default one where a route names the same endpoint."""
    by_endpoint: dict[tuple[str, str | None], Engine] = {default.endpoint.key: default}
    routed: dict[Platform, Engine] = {}
    for platform, text in routes.items():
        engine = Engine.named(text, builder=builder, cache_dir=cache_dir)
        routed[platform] = by_endpoint.setdefault(engine.endpoint.key, engine)
    return routed
