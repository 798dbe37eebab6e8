"""``multiarch_fixtures``: a project declares one more image in its conftest.py.

Every argument is checked here, when the conftest is imported, so that a mistake is one usage
error naming the declaration, before any build.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest

from pytest_multiarch.config import BUILD_ARG_KEY, EnvValue, ImageSpec, parse_port, parse_ready_path
from pytest_multiarch.errors import UsageError
from pytest_multiarch.fixtures import ImageFixtures, make_fixtures, make_run_fixture, state
from pytest_multiarch.secrets import parse_secret, parse_ssh, warn_secret_build_args

P = ParamSpec("P")
R = TypeVar("R")


def _keywords_checked(function: Callable[P, R]) -> Callable[P, R]:
    """A call with a keyword ``function`` does not take (``buildargs=``, say) is a UsageError
    naming it and the nearest one it takes, not Python's bare TypeError."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        known = [name for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY]
        unknown = [key for key in kwargs if key not in signature.parameters]
        if unknown:
            near = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f" (did you mean {near[0]}=?)" if near else ""
            raise UsageError(
                f"{function.__name__}() takes no keyword {unknown[0]}={hint}; it takes {', '.join(known)}."
            )
        return function(*args, **kwargs)

    return checked


@_keywords_checked
def multiarch_fixtures(
    name: str,
    *,
    context: str | Path = ".",
    dockerfile: str | Path = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    port: int | None = None,
    ready_path: str | None = "/",
    environment: Mapping[str, str | Callable[..., str]] | None = None,
    command: Sequence[str] | str | None = None,
    entrypoint: Sequence[str] | str | None = None,
    ports: Sequence[int] | None = None,
    ready_log: str | None = None,
    depends_on: Sequence[str] | None = None,
    secrets: Sequence[str] | None = None,
    ssh: Sequence[str] | None = None,
    structure_tests: Sequence[str] | None = None,
) -> ImageFixtures:
    """Declare one more image; returns fixtures ``<name>_image``, ``<name>_container`` and
    ``<name>_http``, and defines ``<name>_run`` in the calling module. In a conftest.py::

        api_image, api_container, api_http = multiarch_fixtures("api", context="api", port=8000)

    ``context`` is relative to the rootdir and ``dockerfile`` to the context. The configured build
    args (``--multiarch-build-arg``, ini ``multiarch_build_args``) apply on top of ``build_args``.
    ``environment``, ``command``, ``entrypoint`` and ``ports`` configure its container (a value of
    ``environment`` may be a callable: it gets the values of the ``depends_on`` fixtures, which
    are set up before the container starts); ``ready_log`` makes it ready once that text appears
    in its logs, ``ready_path=None`` once it runs (no HTTP probe: a ``command`` that keeps an
    image up for ``exec``, say). On the session's network (``multiarch_network``) it is reachable as ``name``.
    ``secrets`` (``"id=ID,src=PATH"``, ``"id=ID,env=VAR"``) and ``ssh`` (``"default"``) are
    passed to buildx for ``RUN --mount=type=secret`` and ``type=ssh``, on top of the configured ones.
    Tests using them are parametrized over the platforms exactly like ``multiarch_image``.
    ``structure_tests``: container-structure-test files (paths or globs relative to the rootdir)
    to run against this image on every platform (docs/structure-tests.md).
    """
    if not name.isidentifier():
        raise UsageError(f"multiarch_fixtures name {name!r} must be a Python identifier, e.g. 'api'.")
    where = f'multiarch_fixtures("{name}", ...)'
    declared = _declared_build_args(build_args, where)
    warn_secret_build_args(declared)
    declared_secrets = tuple(parse_secret(item, f"secrets= of {where}") for item in secrets or ())
    for secret in declared_secrets:
        secret.check(f"secrets= of {where}")
    declared_ssh = tuple(parse_ssh(item, f"ssh= of {where}") for item in ssh or ())
    port = parse_port(port, f"port= of {where}")
    ready_path = None if ready_path is None else parse_ready_path(ready_path, f"ready_path= of {where}")
    needs = tuple(_names(depends_on, f"depends_on= of {where}"))
    env = _environment(environment, where, bool(needs))
    run_options: dict[str, Any] = {
        "environment": env,
        "command": _argv(command, f"command= of {where}"),
        "entrypoint": _argv(entrypoint, f"entrypoint= of {where}"),
        "ports": tuple(_port(p, f"ports= of {where}") for p in ports or ()),
        "ready_log": _text(ready_log, f"ready_log= of {where}"),
        "depends_on": needs,
    }

    def spec_of(config: pytest.Config) -> ImageSpec:
        settings = state(config).settings
        root = Path(config.rootpath) / context
        return ImageSpec(
            name=name,
            context=root,
            dockerfile=root / dockerfile,
            build_args={**declared, **settings.image.build_args},
            target=target,
            port=port,
            ready_path=ready_path,
            secrets=(*declared_secrets, *settings.image.secrets),
            ssh=(*declared_ssh, *settings.image.ssh),
            **run_options,
        )

    made = make_fixtures(name, spec_of)
    if structure_tests is not None:
        from pytest_multiarch.structure_plugin import STRUCTURE_ATTRIBUTE

        paths = _names_or_paths(structure_tests, f"structure_tests= of {where}")
        setattr(made.image, STRUCTURE_ATTRIBUTE, tuple(paths))
    # <name>_run does not fit the three-name assignment: it is defined where the declaration is.
    caller = inspect.currentframe()
    while caller is not None and caller.f_globals is globals():  # past _keywords_checked's frame
        caller = caller.f_back
    if caller is not None:
        caller.f_globals.setdefault(f"{name}_run", make_run_fixture(name, spec_of))
    return made


def _declared_build_args(build_args: Mapping[str, Any] | None, where: str) -> dict[str, str]:
    """The declaration's build args as strings; numbers are written out, anything else is a
    mistake reported by key (a value may be a secret)."""
    if build_args is None:
        return {}
    if not isinstance(build_args, Mapping):
        raise UsageError(f"build_args= of {where} must be a dict of KEY: value, not a {type(build_args).__name__}.")
    declared = {}
    for key, value in build_args.items():
        if not isinstance(key, str) or not BUILD_ARG_KEY.match(key):
            raise UsageError(f"build_args= of {where}: {key!r} is not a build arg name (letters, digits, _ . -).")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(f"build_args= of {where}: the value of {key} is a {type(value).__name__}; give a string.")
        declared[key] = str(value)
    return declared


def _environment(environment: Mapping[str, Any] | None, where: str, has_dependencies: bool) -> dict[str, EnvValue]:
    """Names and string values (numbers written out), or callables when depends_on gives them
    something to receive; a value is never shown (it may be a secret)."""
    if environment is None:
        return {}
    if not isinstance(environment, Mapping):
        raise UsageError(f"environment= of {where} must be a dict of NAME: value, not a {type(environment).__name__}.")
    checked: dict[str, EnvValue] = {}
    for key, value in environment.items():
        if not isinstance(key, str) or not BUILD_ARG_KEY.match(key):
            raise UsageError(f"environment= of {where}: {key!r} is not a variable name (letters, digits, _ . -).")
        if callable(value):
            if not has_dependencies:
                raise UsageError(
                    f"environment= of {where}: the value of {key} is a callable, which gets the values of the "
                    f"depends_on= fixtures: name them, e.g. depends_on=['postgres']."
                )
            checked[key] = value
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UsageError(f"environment= of {where}: the value of {key} is a {type(value).__name__}; give a string.")
        else:
            checked[key] = str(value)
    return checked


def _argv(value: Sequence[str] | str | None, source: str) -> tuple[str, ...] | None:
    """A command as a list of arguments (a string is split like a shell would, not run by one)."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if not all(isinstance(item, str) for item in value):
        raise UsageError(f"{source} must be a list of strings, e.g. ['sleep', 'infinity'].")
    return tuple(value)


def _port(value: Any, source: str) -> int:
    port = parse_port(value, source)
    if port is None:
        raise UsageError(f"{source} holds an empty port.")
    return port


def _text(value: Any, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{source} must be a non-empty string: text the container prints when it is ready.")
    return value


def _names(values: Sequence[str] | None, source: str) -> list[str]:
    names = list(values or ())
    for value in names:
        if not isinstance(value, str) or not value.isidentifier():
            raise UsageError(f"{source}: {value!r} is not a fixture name.")
    return names


def _names_or_paths(values: Sequence[str], source: str) -> list[str]:
    if isinstance(values, str) or not all(isinstance(value, str) and value for value in values):
        raise UsageError(f"{source} must be a list of paths or globs, e.g. ['structure/api.yaml'].")
    return list(values)
