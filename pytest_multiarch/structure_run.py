"""Running one structure test against one platform's image, as CST's docker driver does: each
command test in a container of its own (``setup`` commands run and committed first), files read
from a created, never started container, metadata from the image's config.

Every check returns CST's error messages (an empty list: the test passed). Containers go
through the session's tracker (removed after the test, on an interrupt, or by the next
session's sweep); images committed by ``setup`` are removed after their test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import posixpath
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_multiarch import cleanup
from pytest_multiarch.build import BuiltImage
from pytest_multiarch.errors import EngineRefused
from pytest_multiarch.oneshot import RunCommand, run_once
from pytest_multiarch.run import MultiarchContainer
from pytest_multiarch.structure_checks import check_command_output, check_existence, check_license_text
from pytest_multiarch.structure_go import expand
from pytest_multiarch.structure_schema import (
    CommandTest,
    FileContentTest,
    FileExistenceTest,
    LicenseTest,
    RunOptions,
    StructureConfig,
)

if TYPE_CHECKING:
    from pytest_multiarch.session import MultiarchSession

NOOP = "NOOP_COMMAND_DO_NOT_RUN"  # CST's placeholder command of containers it never starts
DEBIAN_DOCS = "/usr/share/doc"
LICENSE_ALLOWED = ("libgnutls30",)


class StructureRun:
    """One structure file's tests against one platform's image."""

    def __init__(self, session: MultiarchSession, image: BuiltImage, config: StructureConfig, rootdir: Path) -> None:
        self.image = image
        self.config = config
        self.rootdir = rootdir
        self.engine = session.engine_for(image.platform)
        self.tracker = session.containers.tracker
        self.timeout = session.settings.timeout_for(image.platform)
        with self.engine.call(f"looking for containers earlier pytest runs left (before running on {image.platform})"):
            session.containers.sweep_once(self.engine)
        with self.engine.call(f"inspecting {image.tag} ({image.platform})"):
            self.image_config: dict[str, Any] = self.engine.sdk.api.inspect_image(image.id).get("Config") or {}
        env = self.image_config.get("Env") or []
        self.env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        v2 = config.version == "2.0.0"
        # globalEnvVars: CST commits them into the image first (schema 2), expanded from its env.
        self.global_env = {e.key: expand(e.value, self.env) for e in config.global_env} if v2 else {}

    # -- command tests -----------------------------------------------------------------------------

    def command(self, test: CommandTest) -> list[str]:
        current = self.image
        current_env = {**self.env, **self.global_env}
        made: list[str] = []
        try:
            if test.setup:
                vars_ = test.env_vars if self.config.version == "2.0.0" else (*self.config.global_env, *test.env_vars)
                setup_env = {e.key: expand(e.value, current_env) for e in vars_}
                for argv in test.setup:
                    try:
                        current = self._commit(current, argv, {**self.global_env, **setup_env})
                    except EngineRefused as exc:
                        return [f"error in setup: Error creating container: {exc}"]
                    made.append(current.id)
                current_env |= setup_env  # committed: now part of the image's environment
            command = [expand(arg, current_env) for arg in test.command]
            env = {**self.global_env, **{e.key: e.value for e in test.env_vars}, **self._run_env()}
            options = self._create_options(start=True)
            try:
                result = run_once(
                    self.engine,
                    current,
                    RunCommand(command, entrypoint=[""], environment=env),
                    tracker=self.tracker,
                    timeout=self.timeout,
                    create_options=options,
                )
            except EngineRefused as exc:
                return [f"Error creating container: {exc}"]
            return check_command_output(test, result.stdout, result.stderr, result.exit_code)
        finally:
            self._remove_images(made)

    def _commit(self, current: BuiltImage, argv: tuple[str, ...], env: Mapping[str, str]) -> BuiltImage:
        """Run a setup command in a container of ``current`` and commit it (its exit code is
        not looked at, as in CST)."""
        doing = f"running the setup command {' '.join(argv)!r} ({self.image.platform})"
        with self.engine.call(doing):
            inner = self.engine.sdk.containers.create(
                current.id,
                command=list(argv),
                entrypoint=[""],
                environment=dict(env),
                platform=str(self.image.platform),
                labels=cleanup.owner_labels(),
                **self._create_options(start=False),
            )
        handle = MultiarchContainer(inner, current, self.engine, command_timeout=self.timeout)
        self.tracker.track(handle)
        try:
            with self.engine.call(doing):
                inner.start()
                inner.wait(timeout=self.timeout)
                committed = inner.commit()
        finally:
            self.tracker.remove(handle)
        return dataclasses.replace(current, id=str(committed.id))

    def _remove_images(self, ids: list[str]) -> None:
        for image_id in reversed(ids):
            with contextlib.suppress(Exception):
                self.engine.sdk.images.remove(image_id, force=True)

    def _create_options(self, *, start: bool) -> dict[str, Any]:
        options: RunOptions = self.config.run_options
        found: dict[str, Any] = {}
        if options.user:
            found["user"] = options.user
        if options.privileged:
            found["privileged"] = True
        if options.capabilities:
            found["cap_add"] = list(options.capabilities)
        if options.bind_mounts:
            found["volumes"] = list(options.bind_mounts)
        if options.tty and start:
            found["tty"] = True
        return found

    def _run_env(self) -> dict[str, str]:
        """containerRunOptions' envFile and envVars (names of this process's variables)."""
        options = self.config.run_options
        found: dict[str, str] = {}
        if options.env_file:
            found |= read_env_file(self.rootdir / options.env_file)
        for name in options.env_vars:
            if os.environ.get(name):
                found[name] = os.environ[name]
        return found

    # -- files -------------------------------------------------------------------------------------

    def existence(self, test: FileExistenceTest) -> list[str]:
        path = expand(test.path, {**self.env, **self.global_env}) if self.config.version == "2.0.0" else test.path
        member, error = self._member(path, content=False)
        if member is None:
            return [f"Error examining file in container: {error}"] if test.should_exist else []
        return check_existence(test, member)

    def content(self, test: FileContentTest) -> list[str]:
        data, error = self.read(test.path)
        if data is None:
            return [f"Failed to open {test.path}. Error: {error}"]
        text = data.decode(errors="replace")
        from pytest_multiarch.structure_checks import check_regex_list

        return check_regex_list(test.expected, test.excluded, text, "file content string")

    def license(self, test: LicenseTest) -> list[str]:
        failures: list[str] = []
        if test.debian:
            failures += self._debian_licenses()
        for path in test.files:
            failures += self._license_file(path)
        return failures

    def _debian_licenses(self) -> list[str]:
        members, error = self._tree(DEBIAN_DOCS)
        if members is None:
            return [f"Error reading directory: {error}"]
        failures: list[str] = []
        for name in sorted(members):
            parts = name.rstrip("/").split("/")
            if len(parts) != 2 or not members[name].isdir() or parts[1] in LICENSE_ALLOWED:
                continue
            copyright_file = posixpath.join(DEBIAN_DOCS, parts[1], "copyright")
            if f"{parts[0]}/{parts[1]}/copyright" not in members:
                failures.append(f"Error reading license file for {parts[1]}: File {copyright_file} not found in image")
            failures += self._license_file(copyright_file)
        return failures

    def _license_file(self, path: str) -> list[str]:
        data, error = self.read(path)
        if data is None:
            return [f"Error reading license file for {path}: {error}"]
        return check_license_text(path, data.decode(errors="replace"))

    # -- reading the image's files -----------------------------------------------------------------

    def read(self, path: str) -> tuple[bytes | None, str]:
        """The bytes of file ``path`` (symlinks followed), or None and CST's reason."""
        for _ in range(40):
            member, error, data = self._entry(path, content=True)
            if member is None:
                return None, error
            if member.isdir():
                return None, f"Cannot read specified path: {path} is a directory, not a file"
            if not member.issym():
                return data, ""
            # A relative target is relative to the link's folder (CST asks for it from /).
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
        return None, f"Too many levels of symbolic links at {path}"

    def _member(self, path: str, *, content: bool) -> tuple[tarfile.TarInfo | None, str]:
        member, error, _ = self._entry(path, content=content)
        return member, error

    def _entry(self, path: str, *, content: bool) -> tuple[tarfile.TarInfo | None, str, bytes]:
        """The tar entry of ``path`` itself and, for a file when ``content``, its bytes."""
        raw, error = self._archive(path, whole=content)
        if raw is None:
            return None, error, b""
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as archive:
            member = archive.next()
            wanted = (tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE)
            if member is None or member.type not in wanted:
                return None, f"File {path} not found in image", b""
            extracted = archive.extractfile(member) if content and member.isfile() else None
            return member, "", extracted.read() if extracted else b""

    def _tree(self, path: str) -> tuple[dict[str, tarfile.TarInfo] | None, str]:
        raw, error = self._archive(path, whole=True)
        if raw is None:
            return None, error
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as archive:
            return {m.name.rstrip("/") + "/" * m.isdir(): m for m in archive}, ""

    def _archive(self, path: str, *, whole: bool) -> tuple[bytes | None, str]:
        """The engine's tar of ``path`` from a created (never started) container of the image."""
        platform = self.image.platform
        with self.engine.call(f"creating a {platform} container of {self.image.tag} to read {path}"):
            inner = self.engine.sdk.containers.create(
                self.image.id,
                command=[NOOP],
                platform=str(platform),
                labels=cleanup.owner_labels(),
                **self._create_options(start=False),
            )
        handle = MultiarchContainer(inner, self.image, self.engine, command_timeout=self.timeout)
        self.tracker.track(handle)
        try:
            with self.engine.call(f"reading {path} ({platform} image)"):
                return _archive_of(self.engine.sdk.api, inner.id, path, whole=whole, platform=str(platform))
        finally:
            self.tracker.remove(handle)


def _archive_of(api: Any, container_id: str, path: str, *, whole: bool, platform: str) -> tuple[bytes | None, str]:
    """The archive API's tar of ``path``; only its first KiB unless ``whole``. The response is
    closed here: one left half-read would hold its connection (and the next call would wait)."""
    url = f"{api.base_url}/v{api.api_version}/containers/{container_id}/archive"
    with api.get(url, params={"path": path}, stream=True) as response:
        if response.status_code == 404:
            return None, f"File {path} not found in the {platform} image"
        response.raise_for_status()
        raw = io.BytesIO()
        for chunk in response.iter_content(chunk_size=65536):
            raw.write(chunk)
            if not whole and raw.tell() >= 1024:
                break
        return raw.getvalue(), ""


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv file as godotenv reads the usual ones (``KEY=value``, ``export``, quotes, ``#``
    comments); entries with an empty key or value are left out, as CST does."""
    found: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return found  # CST warns and goes on
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1].replace("\\n", "\n") if value[0] == '"' else value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if key and value:
            found[key] = value
    return found
