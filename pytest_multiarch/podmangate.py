"""The release gate on podman: the published index read with ``podman manifest inspect``, each
platform pulled by its own manifest digest into podman's storage (one local image per tag
whatever its architecture, containers/podman#12682: the digest, then the image id, are what is
tested), tagged per platform, and read through podman's Docker-compatible API.

``podman manifest inspect`` prints the index re-encoded, so its digest cannot be computed from
it: the digest is the registry's ``Docker-Content-Digest`` answer to a ``HEAD`` of the tag
(anonymous, with a bearer token where the registry asks for one), or the one the reference
pins (``app@sha256:...``). A private registry that wants credentials leaves it "unknown" (the
summary says so; pin the digest). Credentials stay with ``podman login``.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from typing import TYPE_CHECKING, Any

from pytest_multiarch.build import BuiltImage, ImageConfig, check_image_platform, exposed_ports
from pytest_multiarch.enginefaults import request_errors
from pytest_multiarch.environ import read_environment_once
from pytest_multiarch.gate import GateError, PublishedIndex, parse_index, repository_of
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    import requests

    from pytest_multiarch.engine import Engine

UNKNOWN_DIGEST = "unknown"
_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _podman(engine: Engine, *args: str, what: str) -> str:
    """stdout of ``podman ARGS``; GateError with podman's own first error line."""
    try:
        done = subprocess.run([*engine.docker_command(), *args], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GateError(f"cannot {what}: {exc}") from None
    if done.returncode != 0:
        said = next((ln.strip() for ln in done.stderr.splitlines() if ln.strip()), "no output")
        raise GateError(f"cannot {what}: {said.removeprefix('Error: ')}")
    return done.stdout


def inspect_published(engine: Engine, ref: str) -> PublishedIndex:
    """Read ``ref``'s index from its registry with podman; GateError naming ``ref``."""
    text = _podman(engine, "manifest", "inspect", ref, what=f"read {ref} from its registry with podman")
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise GateError(f"could not understand what podman returned for {ref}: {exc}") from None
    if not isinstance(manifest, dict):
        raise GateError(f"could not understand what podman returned for {ref}: not a manifest")
    manifest["digest"] = ref.split("@", 1)[1] if "@" in ref else index_digest(ref)
    if manifest.get("manifests") is None:
        return parse_index(ref, manifest, _single_platform(engine, ref, manifest["digest"]))
    return parse_index(ref, manifest)


def _single_platform(engine: Engine, ref: str, digest: str) -> dict[str, str]:
    """The os/architecture/variant of a single-platform image (its manifest names none): pulled
    by its digest, as its tests will use it, and read from its config."""
    if digest == UNKNOWN_DIGEST:
        raise GateError(
            f"{ref} is a single-platform image whose digest its registry does not tell without credentials: "
            f"pin it, --multiarch-image {repository_of(ref)}@sha256:..."
        )
    source = f"{repository_of(ref)}@{digest}"
    pulled = _podman(engine, "pull", "--quiet", source, what=f"pull {ref} ({source})").split()
    text = _podman(engine, "image", "inspect", pulled[-1] if pulled else source, what=f"read {source}")
    try:
        found = json.loads(text)[0]
        return {
            "os": found.get("Os", ""),
            "architecture": found.get("Architecture", ""),
            "variant": found.get("Variant", ""),
        }
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        raise GateError(f"could not understand podman's description of {source}: {exc}") from None


def index_digest(ref: str) -> str:
    """The registry's digest of ``ref``'s tag (HEAD, anonymous); UNKNOWN_DIGEST when it will
    not tell."""
    registry, repository, tag = split_reference(ref)
    loopback = registry.split(":")[0] in ("localhost", "127.0.0.1")
    for scheme in ("http", "https") if loopback else ("https",):
        url = f"{scheme}://{registry}/v2/{repository}/manifests/{tag}"
        try:
            answer = _ask("HEAD", url, headers={"Accept": _ACCEPT})
            if answer.status_code == 401:
                token = _anonymous_token(answer.headers.get("WWW-Authenticate", ""))
                if token:
                    headers = {"Accept": _ACCEPT, "Authorization": f"Bearer {token}"}
                    answer = _ask("HEAD", url, headers=headers)
        except request_errors():
            continue
        digest = answer.headers.get("Docker-Content-Digest", "")
        if answer.ok and digest.startswith("sha256:"):
            return digest
    return UNKNOWN_DIGEST


def _ask(method: str, url: str, **options: Any) -> requests.Response:
    """One request to the registry, with the proxies and CA bundle of the environment read
    once (it runs in a build thread: see environ.py)."""
    import requests

    with requests.Session() as session:
        read_environment_once(session, url)
        return session.request(method, url, timeout=10, **options)


def _anonymous_token(challenge: str) -> str | None:
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in fields:
        return None
    params = {k: v for k, v in fields.items() if k in ("service", "scope")}
    try:
        found = _ask("GET", fields["realm"], params=params).json()
    except request_errors(ValueError):
        return None
    token = found.get("token") or found.get("access_token") if isinstance(found, dict) else None
    return str(token) if token else None


def split_reference(ref: str) -> tuple[str, str, str]:
    """``host:5000/app:1.2`` → (``host:5000``, ``app``, ``1.2``); Docker Hub's names completed."""
    repository = repository_of(ref)
    tag = ref.split("@", 1)[0][len(repository) :].removeprefix(":") or "latest"
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return "registry-1.docker.io", repository if rest else f"library/{repository}", tag


def pull_platform(engine: Engine, index: PublishedIndex, platform: Platform) -> BuiltImage:
    """Pull ``platform``'s manifest by its digest into podman, tag it per platform, check it."""
    started = time.monotonic()
    digest = index.digest_for(platform)
    source = f"{repository_of(index.ref)}@{digest}"
    pulled = _podman(
        engine,
        "pull",
        "--quiet",
        "--platform",
        str(platform),
        source,
        what=f"pull {platform} of {index.ref} ({source})",
    )
    image_id = pulled.strip().splitlines()[-1] if pulled.strip() else source
    local = f"pytest-multiarch/gate-{hashlib.sha256(index.ref.encode()).hexdigest()[:8]}:{platform.slug}"
    _podman(engine, "tag", image_id, local, what=f"tag {source} as {local}")
    with engine.call(f"reading the {platform} image {source}"):
        attrs = engine.sdk.api.inspect_image(image_id)
    check_image_platform(
        f"{index.ref} ({digest})", platform, attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant")
    )
    return BuiltImage(
        tag=local,
        id=str(attrs.get("Id") or image_id),
        platform=platform,
        key=digest,
        reused=False,
        seconds=time.monotonic() - started,
        exposed_ports=exposed_ports((attrs.get("Config") or {}).get("ExposedPorts")),
        config=ImageConfig.of(attrs.get("Config")),
    )
