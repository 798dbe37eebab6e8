"""One option value at a time: parsing and checking build args, engines, environment, ports,
ready paths and numbers, each mistake a UsageError naming where the value came from (config.py
reads the options; declare.py checks a declaration's arguments with the same functions)."""

from __future__ import annotations

import math
import re
from typing import Any

from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform, split_list

BUILD_ARG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_BUILD_ARG_ITEM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")


def parse_build_args(raw: str | list[str], source: str = "build args") -> dict[str, str]:
    """``K=V`` items: a list (CLI), or an ini string with one per line or comma/space separated.

    In an ini value that spans several lines each line is one item, so values may hold spaces.
    pytest hands over the one-per-line form holding a single arg (``GREETING=hello world``) as
    one line: a line without commas whose only ``K=`` is at its start is that one arg. Any other
    line is split, so that a mistake in it is refused by position (its text may be a secret),
    never read as part of another arg's value.
    """
    if isinstance(raw, str):
        lines = [line.strip() for line in raw.splitlines() if line.strip()]
        if len(lines) > 1:
            items = lines
        else:  # one line, also from a TOML multi-line string holding one (it ends with a newline)
            pieces = split_list(raw)
            one_arg = "," not in raw and not any(_BUILD_ARG_ITEM.match(piece) for piece in pieces[1:])
            items = lines if one_arg else pieces
    else:
        items = list(raw)
    result: dict[str, str] = {}
    for number, item in enumerate(items, 1):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not BUILD_ARG_KEY.match(key):
            # Its position only: any of its text may be a secret given in the wrong form
            # ("API_KEY: s3cr3t==", or a bare token).
            missing = "it has no '='; " if not sep else ""
            shown = f"number {number} of {source} ({missing}its text is not shown: it may hold a secret)"
            raise UsageError(
                f"malformed build arg {shown}: write KEY=VALUE, for example "
                f"--multiarch-build-arg BASE_IMAGE=python:3.12-slim."
            )
        result[key] = value
    return result


def split_lines(raw: Any) -> list[str]:
    """An ini value of one item per line (a secret's ``src=`` may hold spaces)."""
    return [line.strip() for line in str(raw or "").splitlines() if line.strip()]


_ENDPOINT_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")
_CONTEXT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def parse_engines(raw: str | list[str], source: str) -> dict[Platform, str]:
    """``PLATFORM=ENDPOINT`` items (a list from the CLI, one per line or separated by spaces in the
    ini): which engine builds and runs a platform. ENDPOINT is a docker context name or a
    unix://, tcp:// or ssh:// URL."""
    items = split_list(raw) if isinstance(raw, str) else [i.strip() for i in raw]
    engines: dict[Platform, str] = {}
    for item in items:
        text, sep, endpoint = item.partition("=")
        endpoint = endpoint.strip()
        example = "for example --multiarch-engine linux/arm64=ssh://user@arm-host or linux/arm64=my-context"
        if not sep or not endpoint:
            raise UsageError(f"{source} {item!r} is not PLATFORM=ENDPOINT: {example}.")
        platform = Platform.parse(text.strip())
        if "://" in endpoint:
            if not endpoint.startswith(_ENDPOINT_SCHEMES):
                raise UsageError(
                    f"{source} {item!r}: {endpoint!r} is not a Docker endpoint; use unix://, tcp:// or ssh:// "
                    f"(or a docker context name)."
                )
        elif not _CONTEXT_NAME.match(endpoint):
            raise UsageError(f"{source} {item!r}: {endpoint!r} is neither a URL nor a docker context name.")
        if platform in engines and engines[platform] != endpoint:
            raise UsageError(f"{source} names two engines for {platform}: {engines[platform]!r} and {endpoint!r}.")
        engines[platform] = endpoint
    return engines


def parse_env(raw: str | list[str], source: str) -> dict[str, str]:
    """``K=V`` items for a container's environment: as build args are read (one per ini line,
    values may hold spaces), with the same rule of naming a malformed item by position only."""
    try:
        return parse_build_args(raw, source)
    except UsageError as exc:
        raise UsageError(
            str(exc)
            .replace("malformed build arg", "malformed environment variable")
            .replace(
                "--multiarch-build-arg BASE_IMAGE=python:3.12-slim", "--multiarch-env DATABASE_URL=postgres://db/app"
            )
        ) from None


def parse_port(raw: Any, source: str = "multiarch_port") -> int | None:
    if raw is None or raw == "":
        return None
    try:
        port = int(str(raw).split("/")[0])
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise UsageError(f"{source} {raw!r} is not a port number (1-65535).")
    return port


def parse_ready_path(raw: Any, source: str = "multiarch_ready_path") -> str:
    path = str(raw or "/").strip()
    if "://" in path:
        raise UsageError(
            f"{source} {path!r} is a URL; give the path only, e.g. /health: it is polled on the "
            f"port the container publishes on 127.0.0.1."
        )
    return path if path.startswith("/") else "/" + path


def parse_positive(raw: Any, name: str, default: float) -> float:
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:  # also refuses nan, with which no deadline ever passes
        raise UsageError(f"{name} {raw!r} is not a positive finite number.")
    return value


def parse_count(raw: Any, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{name} {raw!r} is not a whole number of at least 1.")
    return value
