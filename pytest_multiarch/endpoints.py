"""Endpoints: which Docker engine a name means, found as the docker CLI finds it.

``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else the context named by
``DOCKER_CONTEXT`` or ``currentContext`` in the CLI's config.json (read from its context store),
else the local default socket; ``--multiarch-engine`` names one by URL or context. Nothing here
talks to an engine: engine.py does, through the clients it binds to an ``Endpoint``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from pytest_multiarch.errors import DOCTOR_HINT, EngineError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


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

    def start_advice(self) -> str:
        """What to do when this engine does not answer, fitting how it is reached (a local
        socket, tcp://, ssh://) and how it was chosen (DOCKER_HOST, a context, the option)."""
        parsed = urllib.parse.urlparse(self.url)
        if self.is_local:
            path = parsed.path or parsed.netloc
            if self.url == DEFAULT_SOCKET:
                advice = "Start Docker on this machine (`sudo systemctl start docker`, or Docker Desktop)"
            else:
                advice = (
                    f"Start the engine that listens on {path} (rootless Docker: `systemctl --user start docker`; "
                    "Docker Desktop, colima or podman: start it)"
                )
        elif parsed.scheme == "ssh":
            target = parsed.netloc or parsed.path
            advice = (
                f"Check that `ssh {target} docker info` works: the host is up and reachable, your key or agent is "
                "accepted, and Docker runs there (start it on that host)"
            )
        else:
            port = parsed.port or (2376 if self.tls_verify else 2375)
            advice = (
                f"Check that {parsed.hostname} is reachable from here and that its Docker engine listens on port "
                f"{port} (a dind service must be up; with TLS set DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)"
            )
        if self.from_env:
            advice += ", or unset DOCKER_HOST to use this machine's engine"
        elif self.context:
            advice += f", or pick another context than {self.context!r} (`docker context ls`, `docker context use`)"
        elif self.given:
            advice += ", or route the platform to another engine with --multiarch-engine"
        return advice + "."

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


def url_problem(url: str) -> str | None:
    """What is wrong with an endpoint URL (None: nothing): a unix:// or npipe:// path, a tcp:// or
    ssh:// host with an optional port of 1-65535."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("unix", "npipe"):
        return None if (parsed.netloc + parsed.path).strip("/") else f"{parsed.scheme}:// needs a path"
    if parsed.scheme not in ("tcp", "ssh"):
        return "use unix://, tcp:// or ssh:// (or a docker context name)"
    try:
        port = parsed.port
    except ValueError:
        shown = parsed.netloc.rpartition(":")[2]
        return f"port {shown!r} is not a number from 1 to 65535"
    if not parsed.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 is not a number from 1 to 65535"
    return None
