"""The architecture check: does every binary a platform's image would run belong to that
platform's CPU? Read from the image's files (rootfs.py), never by running them: a foreign
binary passes any test that runs it when the host or QEMU can run it anyway.

What fails a platform (``--multiarch-arch-check commands``, the default):
- the entrypoint's (or cmd's) executable, found through the image's ``PATH`` and symlinks, and a
  script's ``#!`` interpreter;
- ELF files directly in the ``PATH`` directories;
- what the loader would load for those commands: their ``PT_INTERP`` (also when it is missing:
  what "no such file or directory" at start means) and their ``DT_NEEDED`` libraries, found as
  the loader finds them (RPATH, ``LD_LIBRARY_PATH``, RUNPATH, ``/etc/ld.so.conf``, the default
  and multiarch directories), skipping candidates of another class or machine as it does;
- shared objects directly in the loader's directories (a 64-bit platform's 32-bit companion
  libraries, i386 on amd64 say, are multilib and pass).
Foreign ELF files elsewhere (a prebuilt add-on for another platform, test fixtures) are
warnings, and fail only with ``all``. A needed library found nowhere is a warning: it may come
through ``dlopen`` paths this check does not model.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import posixpath
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_multiarch.elf import ElfInfo, mismatch
from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform
from pytest_multiarch.rootfs import Entry, RootFS

MODES = ("commands", "all", "off")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's, when unset
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "busybox"})
# Debian's multiarch directory names, per platform: the loader's own and every other one.
TRIPLETS: dict[tuple[str, str | None], str] = {
    ("amd64", None): "x86_64-linux-gnu",
    ("386", None): "i386-linux-gnu",
    ("arm64", None): "aarch64-linux-gnu",
    ("arm", "v7"): "arm-linux-gnueabihf",
    ("arm", "v6"): "arm-linux-gnueabihf",
    ("arm", "v5"): "arm-linux-gnueabi",
    ("ppc64le", None): "powerpc64le-linux-gnu",
    ("s390x", None): "s390x-linux-gnu",
    ("riscv64", None): "riscv64-linux-gnu",
    ("mips64le", None): "mips64el-linux-gnuabi64",
    ("loong64", None): "loongarch64-linux-gnu",
}
_DEFAULT_LIB_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One file the check has something to say about. ``severe``: it fails the platform with
    the default ``commands`` check; the others fail only with ``all``."""

    path: str
    problem: str  # "ELF 64-bit x86-64, but linux/arm64 needs aarch64", or why it is missing
    role: str  # "the entrypoint", "on PATH", "the loader of /app", ...
    severe: bool
    foreign: bool = True  # a file of another CPU (False: something missing)

    def line(self) -> str:
        return f"{self.path}: {self.problem} ({self.role})"


@dataclasses.dataclass(frozen=True)
class ArchReport:
    """What the check found in one platform's image: ELF files read, and the findings."""

    platform: str
    checked: int
    findings: tuple[Finding, ...] = ()

    def failures(self, mode: str, ignore: Sequence[str] = ()) -> list[Finding]:
        return [f for f in self.findings if (f.severe or mode == "all") and not ignored(f.path, ignore)]

    def warnings(self, mode: str, ignore: Sequence[str] = ()) -> list[Finding]:
        return [f for f in self.findings if not (f.severe or mode == "all") and not ignored(f.path, ignore)]

    def foreign(self, ignore: Sequence[str] = ()) -> int:
        return len({f.path for f in self.findings if f.foreign and not ignored(f.path, ignore)})

    def cell(self, ignore: Sequence[str] = ()) -> str:
        """The summary's cell: ELF files checked / foreign."""
        return f"{self.checked}/{self.foreign(ignore)}"

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "checked": self.checked, "findings": [vars(f) for f in self.findings]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchReport:
        return cls(str(data["platform"]), int(data["checked"]), tuple(Finding(**f) for f in data["findings"]))


def parse_mode(raw: Any) -> str:
    """--multiarch-arch-check: commands (the default), all or off."""
    value = str(raw or "commands").strip().lower()
    if value not in MODES:
        raise UsageError(
            f"multiarch_arch_check must be commands, all or off, not {str(raw)!r}: 'commands' fails a platform "
            "whose programs are built for another CPU, 'all' also any other such file, 'off' checks nothing."
        )
    return value


def ignored(path: str, patterns: Sequence[str]) -> bool:
    """``path`` matches one of ``multiarch_arch_ignore``'s globs (``*`` also crosses ``/``; a
    pattern without a leading ``/`` is taken from the root)."""
    return any(fnmatch.fnmatchcase(path, p if p.startswith("/") else "/" + p) for p in patterns)


def analyse(
    fs: RootFS, platform: Platform, entrypoint: Sequence[str], cmd: Sequence[str], env: dict[str, str], workdir: str
) -> ArchReport:
    """Every finding for ``platform`` in ``fs``, given the image's config (see the module docstring)."""
    return _Analysis(fs, platform, env, workdir or "/").run(list(entrypoint) + list(cmd) if entrypoint else list(cmd))


class _Analysis:
    def __init__(self, fs: RootFS, platform: Platform, env: dict[str, str], workdir: str) -> None:
        self.fs = fs
        self.platform = platform
        self.workdir = workdir
        self.path_dirs = _resolved_dirs(fs, (env.get("PATH") or DEFAULT_PATH).split(":"))
        self.env_lib_dirs = [d for d in (env.get("LD_LIBRARY_PATH") or "").split(":") if d]
        self.lib_dirs = _resolved_dirs(fs, loader_dirs(fs, platform))
        self.findings: dict[str, Finding] = {}
        self.covered: set[str] = set()  # resolved paths a severe rule already looked at

    def run(self, argv: list[str]) -> ArchReport:
        for role, name in _commands(argv):
            self.command(name, role, depth=0)
        for directory, role in [(d, "on PATH") for d in self.path_dirs] + [
            (d, f"in the loader directory {d}") for d in self.lib_dirs
        ]:
            for path in self.fs.children(directory):
                self.in_directory(path, role, multilib=role != "on PATH")
        for path, info in self.fs.elf_files():
            if path not in self.covered:
                self.note(path, info, "elsewhere", severe=False, multilib=True)
        checked = sum(1 for _ in self.fs.elf_files())
        return ArchReport(str(self.platform), checked, tuple(self.findings.values()))

    def note(self, path: str, info: ElfInfo, role: str, *, severe: bool, multilib: bool = False) -> bool:
        """Record ``path`` when foreign; True when it is not."""
        problem = mismatch(info, self.platform, companion_ok=multilib)
        if problem is not None and path not in self.findings:
            self.findings[path] = Finding(path, problem, role, severe)
        return problem is None

    def missing(self, path: str, problem: str, role: str, *, severe: bool) -> None:
        self.findings.setdefault(path, Finding(path, problem, role, severe, foreign=False))

    def command(self, name: str, role: str, depth: int) -> None:
        found = self.find_command(name)
        if found is None or depth > 4:
            return  # not in the image: starting it fails on every platform, which tests show
        path, entry = found
        self.covered.add(path)
        if entry.elf is not None:
            if self.note(path, entry.elf, role, severe=True):
                self.loaded_by(path, entry.elf)
        elif entry.shebang:
            interpreter = _interpreter(entry.shebang)
            if interpreter is None:
                return
            if self.find_command(interpreter) is None:
                self.missing(
                    interpreter,
                    f"not in the image: {path} starts with #!{' '.join(entry.shebang)}, so running it fails "
                    "with 'no such file or directory'",
                    f"the interpreter of {path}",
                    severe=True,
                )
                return
            self.command(interpreter, f"the interpreter of {path}", depth + 1)

    def find_command(self, name: str) -> tuple[str, Entry] | None:
        if "/" in name:
            found = self.fs.get(name, self.workdir)
            return found if found is not None and found[1].kind == "file" else None
        for directory in self.path_dirs:
            found = self.fs.get(posixpath.join(directory, name))
            if found is not None and found[1].kind == "file":
                return found
        return None

    def loaded_by(self, executable: str, info: ElfInfo) -> None:
        """The loader and every library the loader maps for ``executable``."""
        if info.interpreter:
            loader = self.fs.get(info.interpreter)
            role = f"the loader of {executable}"
            if loader is None:
                self.missing(
                    info.interpreter,
                    f"not in the image: {executable} asks the kernel for this loader, so starting it fails "
                    "with 'no such file or directory' (often a binary built for another libc or CPU)",
                    role,
                    severe=True,
                )
            elif loader[1].elf is not None:
                self.covered.add(loader[0])
                self.note(loader[0], loader[1].elf, role, severe=True)
        pending = [(executable, info)]
        seen = {executable}
        while pending:
            needer, needer_info = pending.pop()
            for name in needer_info.needed:
                found = self.library(name, needer, needer_info, info)
                if found is not None and found[0] not in seen:
                    seen.add(found[0])
                    pending.append(found)

    def library(self, name: str, needer: str, needer_info: ElfInfo, executable: ElfInfo) -> tuple[str, ElfInfo] | None:
        """Where the loader finds ``name`` for ``needer``: the first candidate of the platform's
        class and machine. A foreign candidate found instead is a failure."""
        role = f"library {name} of {needer}"
        foreign: tuple[str, ElfInfo] | None = None
        for candidate in self.candidates(name, needer, needer_info, executable):
            found = self.fs.get(candidate)
            if found is None or found[1].elf is None:
                continue
            if mismatch(found[1].elf, self.platform) is None:
                self.covered.add(found[0])
                return found[0], found[1].elf
            foreign = foreign or (found[0], found[1].elf)
        if foreign is not None:
            self.covered.add(foreign[0])
            self.note(foreign[0], foreign[1], role, severe=True)
        else:
            self.missing(name, "not found in the loader's directories", role, severe=False)
        return None

    def candidates(self, name: str, needer: str, needer_info: ElfInfo, executable: ElfInfo) -> list[str]:
        if "/" in name:
            return [name]
        origin = posixpath.dirname(needer)

        def expand(dirs: Iterable[str]) -> list[str]:
            return [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in dirs]

        rpath = [] if needer_info.runpath else expand((*needer_info.rpath, *executable.rpath))
        dirs = [*rpath, *self.env_lib_dirs, *expand(needer_info.runpath), *self.lib_dirs]
        return [posixpath.join(d, name) for d in dirs]

    def in_directory(self, path: str, role: str, *, multilib: bool) -> None:
        found = self.fs.get(path)
        if found is None or found[1].elf is None or not found[1].elf.runs_on_cpu or found[0] in self.findings:
            return
        self.covered.add(found[0])
        self.note(found[0], found[1].elf, role, severe=True, multilib=multilib)


def _commands(argv: list[str]) -> list[tuple[str, str]]:
    """The executables the image's command starts: its first word, and for ``sh -c "..."`` (a
    shell-form CMD) the first word of the script, when it is one."""
    if not argv:
        return []
    found = [("the entrypoint", argv[0])]
    if posixpath.basename(argv[0]) in _SHELLS and len(argv) > 2 and argv[1] == "-c":
        try:
            words = shlex.split(argv[2])
        except ValueError:
            return found
        words = [w for w in words if w != "exec" and not ("=" in w and "/" not in w.split("=", 1)[0])]
        if words and not any(c in words[0] for c in "$`;|&<>(){}"):
            found.append((f"the command of {argv[0]} -c", words[0]))
    return found


def _interpreter(shebang: Sequence[str]) -> str | None:
    """The program a ``#!`` line starts: ``/usr/bin/env python3`` → ``python3``."""
    if posixpath.basename(shebang[0]) != "env":
        return shebang[0]
    words = [w for w in shebang[1:] if not w.startswith("-") and "=" not in w]
    return words[0] if words else None


def loader_dirs(fs: RootFS, platform: Platform) -> list[str]:
    """The directories the platform's loader searches: /etc/ld.so.conf (glibc), musl's path
    file, the multiarch and the default directories. Another platform's multiarch directories
    are left out: a Debian image with i386 packages lists them for i386 programs."""
    own = TRIPLETS.get((platform.arch, platform.variant))
    others = {t for t in TRIPLETS.values() if t != own}
    dirs = _ld_so_conf(fs, "/etc/ld.so.conf", depth=0)
    for path in fs.entries:
        if path.startswith("/etc/ld-musl-") and path.endswith(".path"):
            dirs += [d for line in (fs.read_text(path) or "").splitlines() for d in line.split(":") if d]
    if own:
        dirs += [f"/lib/{own}", f"/usr/lib/{own}", f"/usr/local/lib/{own}"]
    dirs += _DEFAULT_LIB_DIRS
    return [d for d in dirs if not others & set(d.split("/"))]


def _ld_so_conf(fs: RootFS, path: str, depth: int) -> list[str]:
    text = fs.read_text(path)
    if text is None or depth > 4:
        return []
    dirs: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("include"):
            for pattern in line.split()[1:]:
                pattern = pattern if pattern.startswith("/") else posixpath.join(posixpath.dirname(path), pattern)
                parent = fs.resolve(posixpath.dirname(pattern)) or posixpath.dirname(pattern)
                for child in sorted(fs.children(parent)):
                    if fnmatch.fnmatchcase(posixpath.basename(child), posixpath.basename(pattern)):
                        dirs += _ld_so_conf(fs, child, depth + 1)
        elif line and not line.startswith("hwcap"):
            dirs += [d for d in line.replace(",", " ").replace(":", " ").split() if d.startswith("/")]
    return dirs


def _resolved_dirs(fs: RootFS, dirs: Iterable[str]) -> list[str]:
    """Existing directories, symlinks followed (merged /usr: /lib is /usr/lib), each once."""
    found: list[str] = []
    for directory in dirs:
        resolved = fs.resolve(directory) if directory.startswith("/") else None
        if resolved is not None and fs.entries[resolved].kind == "dir" and resolved not in found:
            found.append(resolved)
    return found
