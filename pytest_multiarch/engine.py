"""The one place that talks to Docker: which engine, and the clients bound to it.

An ``Engine`` is one Docker engine as the docker CLI would pick it (endpoints.py: ``DOCKER_HOST``,
else the CLI's current context, else the local default socket). It hands out a docker-py client
and a python-on-whales client bound to that endpoint (never by changing ``os.environ``), what its
builder can build and run (preflight.py, asked once), and the host at which its published ports
are reached. Nothing else in the package creates a Docker client.

Every engine call a test can trigger runs inside ``Engine.call``: whatever the libraries raise
when the engine goes away (requests, urllib3, http.client, socket errors, docker-py wrapping
them) becomes one ``EngineGone`` naming the engine, and an error the engine answered with one
``EngineRefused`` in its own words (what each library's errors mean is enginefaults.py's).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_multiarch.endpoints import DEFAULT_SOCKET as DEFAULT_SOCKET
from pytest_multiarch.endpoints import Endpoint as Endpoint
from pytest_multiarch.endpoints import cli_context_name as cli_context_name
from pytest_multiarch.endpoints import docker_config_dir as docker_config_dir
from pytest_multiarch.endpoints import named_endpoint, resolve_endpoint
from pytest_multiarch.enginefaults import API_TIMEOUT_SECONDS, lost_connection, refusal
from pytest_multiarch.environ import read_environment_once, retrying
from pytest_multiarch.errors import EngineError, EngineGone, EngineRefused, MultiarchError
from pytest_multiarch.jobs import Once
from pytest_multiarch.platforms import Platform
from pytest_multiarch.podman import PodmanService, inspect_podman, locate, podman_command

if TYPE_CHECKING:
    import docker
    from python_on_whales import DockerClient

    from pytest_multiarch.dialbridge import DialBridge
    from pytest_multiarch.preflight import Capabilities

PING_TIMEOUT_SECONDS = 5  # answers(): is the engine there at all


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
        runtime: str = "docker",
        service: PodmanService | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.runtime = runtime  # "docker", or "podman": its Docker-compatible API (podman.py)
        self._service = service  # the podman service to start on first use, when no socket answers
        self.builder = builder  # the buildx builder to use; None: the CLI's current one
        self._unusable = unusable  # why this engine cannot even be named (a broken context)
        self._container_host = container_host
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._sdk: docker.DockerClient | None = None
        self._bridge: DialBridge | None = None
        self._bridge_lock = threading.Lock()  # not _lock: sdk and cli make the bridge while holding it
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

    @classmethod
    def podman(cls, *, container_host: str | None = None) -> Engine:
        """Podman's (--multiarch-runtime podman), at the socket podman.locate finds or will start."""
        try:
            url, service = locate()
        except EngineError as exc:
            return cls(Endpoint("unknown://"), unusable=exc, runtime="podman")
        return cls(Endpoint(url, given=True), container_host=container_host, runtime="podman", service=service)

    @property
    def noun(self) -> str:  # for messages
        return "podman service" if self.runtime == "podman" else "Docker engine"

    def __repr__(self) -> str:
        return f"<Engine {self.endpoint.describe()}>"

    @property
    def name(self) -> str:
        """How the user named it: the context, else the endpoint URL; podman, at its socket if given."""
        if self.runtime == "podman":
            return "podman" if self._service is not None else f"podman at {self.endpoint.url}"
        return self.endpoint.context or self.endpoint.url

    @property
    def label(self) -> str:
        """For progress lines and the summary: "" for the docker CLI's own local engine, else
        how the user named it."""
        return "" if self.endpoint.is_local and (not self.endpoint.bound or self.runtime == "podman") else self.name

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
                if self._service is not None:
                    self._service.start()  # EngineError when it does not answer
                if self.endpoint.url.startswith("ssh://"):
                    environment = {"DOCKER_HOST": self._dial_bridge().url}
                # Made, and used, in the plugin's threads: see environ.py.
                sdk = retrying(lambda: docker.from_env(environment=environment, timeout=API_TIMEOUT_SECONDS))
                read_environment_once(sdk.api, sdk.api.base_url)
                self._sdk = sdk
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

                self._cli = DockerClient(client_call=self.cli_command())
            return self._cli

    def _dial_bridge(self) -> DialBridge:
        """The ssh:// engine's DialBridge, made on first use; the API client and the CLI share it."""
        with self._bridge_lock:
            if self._bridge is None:
                from pytest_multiarch.dialbridge import DialBridge

                self._bridge = DialBridge(self.endpoint.url)
            return self._bridge

    def cli_command(self) -> list[str]:
        """The docker CLI command line the plugin runs (builds, buildx and imagetools calls):
        ``docker_command``, except that an ssh:// engine named by its URL is reached through its
        DialBridge, so that each call is a channel of one ssh connection, not a new connection
        (see dialbridge.py)."""
        command = self.docker_command()
        if command[1:] == ["--host", self.endpoint.url] and self.endpoint.url.startswith("ssh://"):
            return ["docker", "--host", self._dial_bridge().url]
        return command

    def docker_command(self) -> list[str]:
        """The docker CLI's command line bound to this endpoint, as the user would type it:
        ``--context`` for a docker context, ``--host`` (and the TLS flags) for an explicit one,
        nothing more for the default context, which the CLI picks without being told. What the
        plugin runs is ``cli_command``."""
        if self.runtime == "podman":
            return podman_command(None if self._service is not None else self.endpoint.url)
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

        if self.runtime == "podman":
            found = inspect_podman(self.docker_command(), local=self.endpoint.is_local)
            self.sdk  # noqa: B018 -- its service starts here, in the preflight's background thread
            return found
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

    # -- calls -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def call(self, doing: str) -> Iterator[None]:
        """Run engine calls inside: an engine that goes away is one EngineGone naming it, an
        error it answers with one EngineRefused, whatever the library raised; the plugin's own
        errors pass. ``doing`` says what for the message: "reading /x (linux/arm64 container)"."""
        try:
            yield
        except MultiarchError:
            raise
        except Exception as exc:
            mapped = self.failure(doing, exc)
            if mapped is exc:
                raise
            raise mapped from None

    def failure(self, doing: str, exc: BaseException) -> BaseException:
        """What ``exc``, raised by a call to this engine while ``doing``, means: EngineGone,
        EngineRefused, or ``exc`` itself when it says nothing about the engine."""
        lost = lost_connection(exc)
        if lost is not None:
            return self.gone(doing, lost)
        refused = refusal(exc)
        if refused is not None:
            return EngineRefused(f"the {self.noun} at {self.endpoint.describe()} refused {doing}: {refused}")
        return exc

    def gone(self, doing: str, why: str) -> EngineGone:
        """The one message for this engine going away while ``doing``."""
        check = " ".join([*self.docker_command(), "info"])
        return EngineGone(
            f"the {self.noun} at {self.endpoint.describe()} stopped answering while {doing}: {why}. "
            f"Check it with `{check}`, then run the tests again."
        )

    def answers(self) -> bool:
        """Whether the engine answers now: a ping within PING_TIMEOUT_SECONDS (not the API's
        60 s), so that telling a lost engine from a slow call does not take a minute."""
        try:
            api = self.sdk.api
            return bool(api.get(api._url("/_ping"), timeout=PING_TIMEOUT_SECONDS).ok)
        except Exception:
            return False

    def close(self) -> None:
        """Close the API client's connections (the CLI client holds none); stop its podman service."""
        with self._lock, self._bridge_lock:
            sdk, self._sdk = self._sdk, None
            bridge, self._bridge = self._bridge, None
        if sdk is not None:
            try:
                sdk.close()
            except Exception:
                pass
        if bridge is not None:
            bridge.close()
        if self._service is not None:
            self._service.stop()


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
