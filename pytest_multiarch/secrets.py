"""Build secrets and SSH forwarding, and what keeps any secret from leaking.

``--multiarch-secret id=ID[,src=PATH | ,env=VAR]`` and ``--multiarch-ssh default|ID[=PATH,...]``
use buildx's own syntax; buildx reads the values when it builds (``RUN --mount=type=secret`` and
``type=ssh``), so they never reach the image, its history, a command line or a log. The plugin
reads a secret's value only to mask it, in memory. Only ids and sources (a path, a variable's
name) are ever shown or part of the build key.

Digests that cover values (build args in the build key and the early-start record) are HMACs
with a random key of this user's, kept 0600 under the cache directory: a guess cannot be
confirmed by hashing it offline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

from pytest_multiarch.errors import UsageError

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|AUTH|CREDENTIAL|PRIVATE|CERT|_PAT$|^PAT$|_DSN$|^DSN$", re.IGNORECASE)
_CREDENTIALS_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_UNSHOWN = "an entry (its text is not shown: it may hold a secret given the wrong way)"


class SecretInBuildArgWarning(pytest.PytestWarning):
    """A build arg looks like a secret: its value stays in the image's history."""


def looks_secret(name: str, value: str) -> bool:
    """A name like NPM_TOKEN, DB_PASSWORD, GITHUB_PAT, SENTRY_DSN, or a URL with credentials."""
    return bool(_SECRET_NAME.search(name) or _CREDENTIALS_URL.match(value))


@dataclasses.dataclass(frozen=True)
class BuildSecret:
    """One ``--secret`` of buildx: its id and where buildx reads it from (never the value)."""

    id: str
    src: str | None = None  # a file
    env: str | None = None  # an environment variable; neither: the variable named like the id

    def argument(self) -> str:
        """The ``--secret`` value buildx gets: sources only."""
        if self.src is not None:
            return f"id={self.id},src={self.src}"
        return f"id={self.id},env={self.env or self.id}"

    def source(self) -> str:
        return f"file {self.src}" if self.src is not None else f"variable {self.env or self.id}"

    def value(self) -> str | None:
        """Read now, to mask it in logs (kept in memory only); None when missing."""
        try:
            if self.src is not None:
                return Path(self.src).expanduser().read_text(errors="replace").strip("\n")
            return os.environ.get(self.env or self.id)
        except OSError:
            return None

    def check(self, where: str) -> None:
        """A missing file or unset variable is a usage error naming the id and the source."""
        if self.src is not None and not Path(self.src).expanduser().is_file():
            raise UsageError(f"{where}: secret {self.id!r} reads file {self.src}, which does not exist.")
        if self.src is None and (self.env or self.id) not in os.environ:
            raise UsageError(
                f"{where}: secret {self.id!r} reads variable {self.env or self.id}, which is not set. Set it, "
                f"or give the secret a file: id={self.id},src=PATH."
            )


def parse_secret(text: str, where: str) -> BuildSecret:
    """``id=ID[,src=PATH | ,env=VAR]`` (``source=`` as buildx also takes; ``type=file|env``)."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise UsageError(f"{where}: {_UNSHOWN} is not id=ID[,src=PATH | ,env=VAR].")
        fields[{"source": "src", "required": "required"}.get(key.lower(), key.lower())] = value
    unknown = set(fields) - {"id", "src", "env", "type", "required"}
    if "id" not in fields or unknown or not _ID.match(fields["id"]) or ("src" in fields and "env" in fields):
        raise UsageError(f"{where}: {_UNSHOWN} is not id=ID[,src=PATH | ,env=VAR] (one of src and env).")
    if fields.get("type") == "env" and "src" in fields:
        return BuildSecret(fields["id"], env=fields["src"])
    return BuildSecret(fields["id"], src=fields.get("src"), env=fields.get("env"))


def parse_ssh(text: str, where: str) -> str:
    """``default`` or ``ID[=SOCKET_OR_KEY,...]``, checked: an agent socket or key must exist."""
    name, sep, paths = text.strip().partition("=")
    if not _ID.match(name):
        raise UsageError(f"{where}: {_UNSHOWN} is not default|ID[=SOCKET_OR_KEY,...].")
    if not sep:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise UsageError(
                f"{where}: ssh {name!r} forwards your ssh agent, but SSH_AUTH_SOCK is not set: start one "
                f"(`eval $(ssh-agent)` and `ssh-add`), or name a key: {name}=~/.ssh/id_ed25519."
            )
        paths = os.environ["SSH_AUTH_SOCK"]
    for path in paths.split(","):
        if not Path(path).expanduser().exists():
            raise UsageError(f"{where}: ssh {name!r} names {path}, which does not exist.")
    return text.strip()


def secret_masker(
    build_args: Mapping[str, str], environment: Mapping[str, object] | None = None, values: Iterable[str | None] = ()
) -> Callable[[str], str]:
    """Hide secret-looking build args' and environment variables' values, and ``values`` (a
    build secret's), in text the plugin shows: BuildKit prints RUN steps with their values filled
    in. Values of 4 characters or more: shorter ones would mask unrelated text."""
    named = {**build_args, **{k: v for k, v in (environment or {}).items() if isinstance(v, str)}}
    hidden = [v for k, v in named.items() if looks_secret(k, v)] + [v for v in values if v]
    secrets = sorted({v for v in hidden if len(v) >= 4}, key=len, reverse=True)

    def mask(line: str) -> str:
        for value in secrets:
            line = line.replace(value, "***")
        return line

    return mask


def secret_build_arg_warnings(build_args: Mapping[str, str]) -> list[SecretInBuildArgWarning]:
    """A warning per build arg whose name or value looks secret."""
    return [
        SecretInBuildArgWarning(
            f"build arg {name} looks like a secret: its value stays in the image's history for anyone "
            f"who pulls it. Pass it as a build secret instead: --multiarch-secret id={name},env={name} "
            f"and `RUN --mount=type=secret,id={name} ...` in the Dockerfile."
        )
        for name, value in build_args.items()
        if looks_secret(name, value)
    ]


def warn_secret_build_args(build_args: Mapping[str, str]) -> None:
    for warning in secret_build_arg_warnings(build_args):
        warnings.warn(warning, stacklevel=3)


def keyed_digest(data: bytes, cache_dir: Path | None = None) -> str:
    """HMAC-SHA256 of ``data`` with this user's random key (made 0600 on first use)."""
    return hmac.new(_key(cache_dir or _default_cache_dir()), data, hashlib.sha256).hexdigest()


def keyed_hasher(cache_dir: Path | None = None) -> hmac.HMAC:
    """keyed_digest for data that comes in pieces (a file's content): ``update``, then ``hexdigest``."""
    return hmac.new(_key(cache_dir or _default_cache_dir()), digestmod=hashlib.sha256)


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-multiarch"


def _key(cache_dir: Path) -> bytes:
    path = cache_dir / "digest.key"
    try:
        return path.read_bytes()
    except OSError:
        pass
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        descriptor, made = tempfile.mkstemp(dir=cache_dir, prefix=".digest.key-")  # 0600
    except OSError:
        return b"pytest-multiarch: no cache directory"  # still keyed; only this process's digests agree
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(32))
        # Linked whole under its name: another thread or process never reads it half written.
        os.link(made, path)
    except FileExistsError:
        pass  # another thread or process made it meanwhile: theirs is the key
    except OSError:
        return b"pytest-multiarch: no cache directory"
    finally:
        os.unlink(made)
    return path.read_bytes()
