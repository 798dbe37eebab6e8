"""The architecture check's rules on made-up filesystems (no Docker): which foreign files fail a
platform, which are warnings, and how the loader's search is followed."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from pytest_multiarch.archcheck import ArchReport, analyse, loader_dirs
from pytest_multiarch.elf import ElfInfo
from pytest_multiarch.platforms import Platform
from pytest_multiarch.rootfs import Entry, RootFS, from_layer_dirs, from_tar

ARM64 = Platform.parse("linux/arm64")
AMD64 = Platform.parse("linux/amd64")


def elf(
    machine: str, *, interp: str | None = None, needed: tuple[str, ...] = (), runpath: tuple[str, ...] = ()
) -> Entry:
    e_machine, bits = {"x86_64": (62, 64), "aarch64": (183, 64), "arm": (40, 32), "i386": (3, 32)}[machine]
    info = ElfInfo(
        bits=bits, byte_order="little", e_machine=e_machine, type=3, interpreter=interp, needed=needed, runpath=runpath
    )
    return Entry("file", elf=info)


def fs(files: dict[str, Entry], texts: dict[str, str] | None = None) -> RootFS:
    entries: dict[str, Entry] = {}
    for path, entry in files.items():
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/" + "/".join(parts[:i]), Entry("dir"))
        entries[path] = entry
    for path in texts or {}:
        entries.setdefault(path, Entry("file"))
    return RootFS(entries, texts)  # adds the folders


def check(
    root: RootFS,
    entrypoint: list[str] = (),
    cmd: list[str] = (),
    env: dict[str, str] | None = None,
    platform: Platform = ARM64,
) -> ArchReport:  # type: ignore[assignment]
    return analyse(root, platform, entrypoint, cmd, env or {}, "/app")


def lines(report: ArchReport, mode: str = "commands") -> list[str]:
    return [f.line() for f in report.failures(mode)]


def test_a_foreign_entrypoint_found_through_path_and_a_symlink_fails():
    root = fs({"/usr/bin/app": Entry("link", link="../lib/app/bin/app"), "/usr/lib/app/bin/app": elf("x86_64")})
    report = check(root, cmd=["app", "--serve"])
    assert lines(report) == ["/usr/lib/app/bin/app: ELF 64-bit x86-64, but linux/arm64 needs aarch64 (the entrypoint)"]
    assert report.cell() == "1/1"
    assert check(root, cmd=["app"], platform=AMD64).findings == ()


def test_a_relative_entrypoint_is_found_from_the_workdir():
    root = fs({"/app/server": elf("x86_64")})
    assert lines(check(root, entrypoint=["./server"])) == [
        "/app/server: ELF 64-bit x86-64, but linux/arm64 needs aarch64 (the entrypoint)"
    ]


def test_the_first_word_of_a_shell_form_command_is_checked():
    root = fs({"/bin/sh": elf("aarch64"), "/usr/local/bin/server": elf("x86_64")})
    report = check(root, cmd=["/bin/sh", "-c", "PORT=80 exec server --port $PORT"])
    assert lines(report) == [
        "/usr/local/bin/server: ELF 64-bit x86-64, but linux/arm64 needs aarch64 (the command of /bin/sh -c)"
    ]


def test_a_script_is_checked_through_its_interpreter_also_behind_env():
    root = fs(
        {
            "/usr/bin/env": elf("aarch64"),
            "/usr/local/bin/python3": elf("x86_64"),
            "/app/run.py": Entry("file", shebang=("/usr/bin/env", "-S", "python3", "-u")),
        }
    )
    assert lines(check(root, entrypoint=["/app/run.py"])) == [
        "/usr/local/bin/python3: ELF 64-bit x86-64, but linux/arm64 needs aarch64 (the interpreter of /app/run.py)"
    ]


def test_a_missing_interpreter_or_loader_fails():
    script = fs({"/app/run": Entry("file", shebang=("/opt/bin/tool",))})
    assert [f.path for f in check(script, entrypoint=["/app/run"]).failures("commands")] == ["/opt/bin/tool"]
    binary = fs({"/app/server": elf("aarch64", interp="/lib/ld-linux-aarch64.so.1")})
    (finding,) = check(binary, entrypoint=["/app/server"]).failures("commands")
    assert finding.path == "/lib/ld-linux-aarch64.so.1" and "not in the image" in finding.problem
    assert finding.role == "the loader of /app/server" and not finding.foreign


def test_libraries_are_searched_as_the_loader_does_skipping_foreign_candidates():
    loader = "/lib/ld-linux-aarch64.so.1"
    root = fs(
        {
            "/app/server": elf("aarch64", interp=loader, needed=("libfoo.so.1", "libbar.so", "libgone.so")),
            loader: elf("aarch64"),
            "/usr/local/lib/libfoo.so.1": elf("x86_64"),  # searched first, skipped: wrong machine
            "/usr/lib/aarch64-linux-gnu/libfoo.so.1": elf("aarch64", needed=("libdeep.so",)),
            "/usr/lib/aarch64-linux-gnu/libdeep.so": elf("x86_64"),
            "/app/lib/libbar.so": elf("aarch64"),
        },
        texts={"/etc/ld.so.conf": "/usr/local/lib\ninclude /etc/ld.so.conf.d/*.conf\n"},
    )
    root.entries["/app/server"] = elf(
        "aarch64", interp=loader, needed=("libfoo.so.1", "libbar.so", "libgone.so"), runpath=("$ORIGIN/lib",)
    )
    report = check(root, entrypoint=["/app/server"])
    assert lines(report) == [
        "/usr/lib/aarch64-linux-gnu/libdeep.so: ELF 64-bit x86-64, but linux/arm64 needs aarch64 "
        "(library libdeep.so of /usr/lib/aarch64-linux-gnu/libfoo.so.1)",
        # /usr/local/lib is a loader directory (ld.so.conf): a foreign library there fails too.
        "/usr/local/lib/libfoo.so.1: ELF 64-bit x86-64, but linux/arm64 needs aarch64 "
        "(in the loader directory /usr/local/lib)",
    ]
    warned = [f.line() for f in report.warnings("commands")]
    assert "libgone.so: not found in the loader's directories (library libgone.so of /app/server)" in warned


def test_loader_directories_follow_ld_so_conf_and_leave_other_platforms_multiarch_dirs_out():
    root = fs(
        {"/usr/lib/i386-linux-gnu/libc.so.6": elf("i386"), "/opt/lib/libx.so": elf("aarch64")},
        texts={
            "/etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n",
            "/etc/ld.so.conf.d/i386.conf": "/usr/lib/i386-linux-gnu\n",
            "/etc/ld.so.conf.d/opt.conf": "# the vendor's\n/opt/lib\n",
        },
    )
    dirs = loader_dirs(root, AMD64)
    assert "/opt/lib" in dirs and "/usr/lib/x86_64-linux-gnu" in dirs
    assert "/usr/lib/i386-linux-gnu" not in dirs
    report = check(root, platform=AMD64)
    assert [f.line() for f in report.failures("commands")] == [
        "/opt/lib/libx.so: ELF 64-bit aarch64, but linux/amd64 needs x86-64 (in the loader directory /opt/lib)"
    ]
    assert report.warnings("commands") == []  # i386 libraries on amd64 are multilib, not foreign


def test_path_programs_fail_and_other_files_are_warnings_until_all():
    root = fs(
        {
            "/usr/local/bin/helper": elf("x86_64"),
            "/usr/bin/ok": elf("aarch64"),
            "/app/node_modules/x/prebuilds/linux-x64/x.node": elf("x86_64"),
            "/usr/lib/libc.so": elf("aarch64"),
        }
    )
    report = check(root, env={"PATH": "/usr/local/bin:/usr/bin"})
    assert [f.path for f in report.failures("commands")] == ["/usr/local/bin/helper"]
    assert [f.path for f in report.warnings("commands")] == ["/app/node_modules/x/prebuilds/linux-x64/x.node"]
    assert len(report.failures("all")) == 2 and report.warnings("all") == []
    assert report.failures("commands", ["/usr/local/bin/*"]) == []
    assert report.failures("all", ["app/node_modules/*/prebuilds/*", "/usr/local/bin/helper"]) == []
    assert report.cell() == "4/2" and report.cell(["/usr/local/*"]) == "4/1"


def test_a_32_bit_arm_entrypoint_fails_on_arm64_though_its_libraries_would_pass():
    root = fs({"/usr/bin/tool": elf("arm"), "/usr/lib/libarm.so": elf("arm")})
    report = check(root, entrypoint=["tool"])
    assert [f.path for f in report.failures("commands")] == ["/usr/bin/tool"]


def test_the_report_survives_its_cache_form():
    root = fs({"/usr/local/bin/helper": elf("x86_64")})
    report = check(root)
    assert ArchReport.from_json(report.to_json()) == report


# -- the readers -----------------------------------------------------------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = ""
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_the_tar_reader_reads_long_names_links_and_elf_headers(fmt):
    binary = Path("/bin/true").read_bytes() if Path("/bin/true").exists() else b""
    deep = "opt/" + "/".join(["d" * 30] * 4) + "/tool" if fmt != tarfile.USTAR_FORMAT else "opt/tool"
    members = [
        _member("usr/", tarfile.DIRTYPE),
        _member("usr/bin/", tarfile.DIRTYPE),
        _member("usr/bin/true", data=binary),
        _member("usr/bin/alias", tarfile.LNKTYPE, link="usr/bin/true"),
        _member("bin", tarfile.SYMTYPE, link="usr/bin"),
        _member("run.sh", data=b"#!/bin/sh -e\necho hi\n" + b"x" * 1000),
        _member(deep, data=b"plain"),
        _member("etc/ld.so.conf", data=b"/opt/lib\n"),
    ]
    root = from_tar([_tar(members, fmt)[i : i + 700] for i in range(0, len(_tar(members, fmt)), 700)])
    assert root.entries["/run.sh"].shebang == ("/bin/sh", "-e")
    assert root.entries["/" + deep].kind == "file"
    assert root.resolve("/bin/true") == "/usr/bin/true"
    assert root.read_text("/etc/ld.so.conf") == "/opt/lib\n"
    if binary:
        assert root.entries["/usr/bin/true"].elf is not None
        assert root.entries["/usr/bin/alias"].elf == root.entries["/usr/bin/true"].elf


def test_resolve_follows_relative_and_absolute_links_and_stops_on_loops():
    root = fs({"/usr/lib/x/app": elf("aarch64")})
    root.entries["/lib"] = Entry("link", link="usr/lib")
    root.entries["/usr/lib/current"] = Entry("link", link="/lib/x")
    root.entries["/loop"] = Entry("link", link="/loop")
    assert root.resolve("/lib/current/app") == "/usr/lib/x/app"
    assert root.resolve("/usr/lib/x/../x/app") == "/usr/lib/x/app"
    assert root.resolve("/loop") is None and root.resolve("/lib/missing") is None
    assert root.resolve("/usr/lib/x/app/more") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices: making one needs root")
def test_the_layer_reader_honours_whiteouts_and_opaque_directories(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for path in ("usr/bin/gone", "usr/bin/kept", "opt/old/file", "etc/replaced/file"):
        (lower / path).parent.mkdir(parents=True, exist_ok=True)
        (lower / path).write_bytes(b"lower")
    (upper / "usr/bin").mkdir(parents=True)
    os.mknod(upper / "usr/bin/gone", 0o600 | 0o020000, os.makedev(0, 0))  # S_IFCHR 0/0: deleted
    (upper / "opt/old").mkdir(parents=True)
    os.setxattr(upper / "opt/old", "trusted.overlay.opaque", b"y")
    (upper / "opt/old/new").write_bytes(b"upper")
    (upper / "etc").mkdir()
    (upper / "etc/replaced").write_bytes(b"now a file")
    root = from_layer_dirs([upper, lower])
    assert "/usr/bin/gone" not in root.entries and "/usr/bin/kept" in root.entries
    assert "/opt/old/file" not in root.entries and "/opt/old/new" in root.entries
    assert root.entries["/etc/replaced"].kind == "file" and "/etc/replaced/file" not in root.entries


def test_object_files_modules_and_bpf_programs_are_not_cpu_programs():
    module = ElfInfo(bits=64, byte_order="little", e_machine=62, type=1)  # ET_REL: a .o or .ko
    bpf = ElfInfo(bits=64, byte_order="little", e_machine=247, type=3)
    root = fs({"/usr/lib/modules/x.ko": Entry("file", elf=module), "/usr/lib/bpf.so": Entry("file", elf=bpf)})
    assert check(root).findings == () and check(root).checked == 0
