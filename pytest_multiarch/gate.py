"""Release gate: test a published image (``--multiarch-image REF``) instead of building one.

The index is read with ``docker buildx imagetools inspect`` (no pull). Each configured platform's
manifest is then pulled by its own digest, so the classic image store's one-platform-per-tag
limit can never make a test run another platform's image. A platform the index lacks is an error
of that platform's tests, never a skip. Registry credentials stay with the docker CLI
(``docker login``): the plugin never reads, stores or prints them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.utils import run

from pytest_multiarch.build import BuiltImage, ImageConfig, check_image_platform, exposed_ports
from pytest_multiarch.enginefaults import cli_errors
from pytest_multiarch.errors import MultiarchError, UsageError, docker_said
from pytest_multiarch.names import gate_tag
from pytest_multiarch.platforms import Platform


class GateError(MultiarchError):
    """The published image cannot be read, or lacks a platform."""


@dataclasses.dataclass(frozen=True)
class PublishedIndex:
    """What the registry holds under ``ref``: an index (or one manifest) and its platforms."""

    ref: str
    digest: str
    media_type: str
    manifests: dict[str, str]  # "linux/arm64" -> manifest digest
    is_index: bool

    @property
    def platforms(self) -> list[str]:
        return list(self.manifests)

    def digest_for(self, platform: Platform) -> str:
        digest = self.manifests.get(str(platform))
        if digest is None:
            has = ", ".join(self.manifests) or "no platform"
            kind = "index" if self.is_index else "single-platform manifest"
            wanted = ",".join([*self.manifests, str(platform)])
            raise GateError(
                f"{self.ref} has no {platform} image: its {kind} ({self.digest}) holds {has}. "
                f"Publish {platform} too (e.g. `docker buildx build --platform {wanted} --push`) "
                f"or drop it from --multiarch-platforms."
            )
        return digest


def parse_index(ref: str, manifest: dict[str, Any], image_config: dict[str, Any] | None = None) -> PublishedIndex:
    """Build a PublishedIndex from ``imagetools inspect --format '{{json .Manifest}}'`` output.

    Attestation entries (platform ``unknown/unknown``) are ignored. A single manifest has no
    platform of its own: ``image_config`` (``{{json .Image}}``) supplies it.
    """
    digest = str(manifest.get("digest", ""))
    media_type = str(manifest.get("mediaType", ""))
    entries = manifest.get("manifests")
    found: dict[str, str] = {}
    if entries is None:
        config = image_config or {}
        text = "/".join(p for p in (config.get("os"), config.get("architecture"), config.get("variant")) if p)
        platform = _platform_or_none(text)
        if platform is not None:
            found[str(platform)] = digest
        return PublishedIndex(ref, digest, media_type, found, is_index=False)
    for entry in entries:
        described = entry.get("platform") or {}
        text = "/".join(p for p in (described.get("os"), described.get("architecture"), described.get("variant")) if p)
        platform = _platform_or_none(text)
        if platform is not None and str(platform) not in found:
            found[str(platform)] = str(entry.get("digest", ""))
    return PublishedIndex(ref, digest, media_type, found, is_index=True)


def _platform_or_none(text: str) -> Platform | None:
    try:
        return Platform.parse(text)
    except UsageError:  # unknown/unknown (attestations) and platforms we do not model
        return None


def inspect_published(docker: DockerClient, ref: str) -> PublishedIndex:
    """Read ``ref``'s index from its registry; GateError naming ``ref`` when that fails."""
    try:
        manifest = json.loads(_imagetools(docker, ref, "{{json .Manifest}}"))
        config = None
        if manifest.get("manifests") is None:
            config = json.loads(_imagetools(docker, ref, "{{json .Image}}"))
    except (ValueError, AttributeError) as exc:
        raise GateError(f"could not understand what the registry returned for {ref}: {exc}") from None
    return parse_index(ref, manifest, config)


# Registries answer now and then with a server error or "too many requests" (and a registry
# that rewrites a manifest being pushed again may answer 500 to a read meanwhile): read again.
_TRANSIENT = re.compile(r"\b(429 Too Many Requests|50[0234] [A-Z][A-Za-z ]+)\b")
REGISTRY_RETRY_SECONDS = (0.5, 1.0, 2.0)


def _imagetools(docker: DockerClient, ref: str, fmt: str) -> str:
    """``buildx imagetools inspect``'s answer for ``ref``; a transient registry error is asked
    again (REGISTRY_RETRY_SECONDS), any other one is a GateError at once."""
    cmd = [*docker.client_config.docker_cmd, "buildx", "imagetools", "inspect", ref, "--format", fmt]
    for pause in (*REGISTRY_RETRY_SECONDS, None):
        try:
            return str(run(cmd, capture_stderr=True))
        except cli_errors() as exc:
            said = docker_said(exc)
            if pause is None or not _TRANSIENT.search(said):
                raise GateError(
                    f"cannot read {ref} from its registry: {said}. Check the reference "
                    f"(tag or digest), that the registry is reachable, and for a private registry "
                    f"`docker login <registry>`."
                ) from None
            time.sleep(pause)  # a back-off before asking the registry again, not a wait for a state
    raise AssertionError("unreachable")


def repository_of(ref: str) -> str:
    """``host:5000/app:1.2@sha256:…`` → ``host:5000/app``."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def pull_platform(docker: DockerClient, index: PublishedIndex, platform: Platform) -> BuiltImage:
    """Pull ``platform``'s manifest by digest, tag it locally, check its config's platform."""
    started = time.monotonic()
    digest = index.digest_for(platform)
    source = f"{repository_of(index.ref)}@{digest}"
    try:
        docker.image.pull(source, quiet=True, platform=str(platform))
    except cli_errors() as exc:
        raise GateError(f"cannot pull {platform} of {index.ref} ({source}): {docker_said(exc)}") from None
    local = gate_tag(index.ref, platform)
    docker.image.tag(source, local)
    image = docker.image.inspect(local)
    check_image_platform(f"{index.ref} ({digest})", platform, image.os, image.architecture, image.variant)
    return BuiltImage(
        tag=local,
        id=image.id,
        platform=platform,
        key=digest,
        reused=False,
        pulled=True,
        seconds=time.monotonic() - started,
        exposed_ports=exposed_ports(image.config.exposed_ports if image.config else None),
        config=_config_of(image.config),
    )


def fetch_untagged(docker: DockerClient, ref: str, platform: Platform) -> tuple[str, bool]:
    """``platform``'s manifest of ``ref``, by digest and without a tag, so that no local tag
    changes (a pull of a tag with --platform would move it to that platform): the
    ``repository@digest`` reference to run it by, and whether it was pulled now (the caller then
    removes it). GateError when the registry cannot be read or lacks the platform."""
    source = f"{repository_of(ref)}@{inspect_published(docker, ref).digest_for(platform)}"
    if docker.image.exists(source):
        return source, False
    try:
        docker.image.pull(source, quiet=True, platform=str(platform))
    except cli_errors() as exc:
        raise GateError(f"cannot pull {platform} of {ref} ({source}): {docker_said(exc)}") from None
    return source, True


def _config_of(config: Any) -> ImageConfig:
    """python-on-whales' image config as the ImageConfig docker-py's ``Config`` gives."""
    if config is None:
        return ImageConfig()
    return ImageConfig.of(
        {
            "User": config.user,
            "Entrypoint": config.entrypoint,
            "Cmd": config.cmd,
            "Env": config.env,
            "ExposedPorts": config.exposed_ports,
            "Labels": config.labels,
            "WorkingDir": config.working_dir,
        }
    )
