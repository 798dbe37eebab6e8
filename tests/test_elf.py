"""The ELF header reader on real binaries of every architecture the check covers: Debian's
busybox (dynamic and static) and libc of each architecture, and ARMv6/ARMv7 programs, kept as
sparse copies (tests/fixtures/elf, made by scripts/make-elf-fixtures.sh). The truth each is
compared with is readelf's reading of the original file (manifest.json)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_multiarch.elf import ElfInfo, mismatch, read_elf_bytes
from pytest_multiarch.platforms import Platform

FIXTURES = Path(__file__).parent / "fixtures" / "elf"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())
ARM_ARCHES = {"v5TE": 4, "v6": 6, "v7": 10}

# The Docker platform each Debian architecture's binaries are for.
PLATFORM_OF = {
    "amd64": "linux/amd64",
    "i386": "linux/386",
    "arm64": "linux/arm64",
    "armel": "linux/arm/v5",
    "armhf": "linux/arm/v7",
    "ppc64el": "linux/ppc64le",
    "s390x": "linux/s390x",
    "mips64el": "linux/mips64le",
    "riscv64": "linux/riscv64",
}


def read(name: str) -> ElfInfo:
    info = read_elf_bytes(gzip.decompress((FIXTURES / name).read_bytes()))
    assert info is not None, name
    return info


def platform_of(name: str) -> Platform:
    if name.startswith("arm-v6"):
        return Platform.parse("linux/arm/v6")
    if name.startswith("arm-v7"):
        return Platform.parse("linux/arm/v7")
    arch = name.removesuffix(".gz").removesuffix(".so.6").split("-")[-1]
    return Platform.parse(PLATFORM_OF["amd64" if arch == "rpath" else arch])


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_headers_read_as_readelf_reads_them(name):
    truth = MANIFEST[name]
    info = read(name)
    assert info.bits == truth["class"]
    assert info.byte_order == truth["data"]
    assert info.e_machine == truth["machine"]
    assert info.type == {"EXEC": 2, "DYN": 3}[truth["type"]]
    assert info.flags == truth["flags"]
    assert info.interpreter == truth["interp"]
    assert list(info.needed) == truth["needed"]
    assert info.soname == truth["soname"]
    assert ":".join(info.runpath) == (truth["runpath"] or "")
    assert ":".join(info.rpath) == (truth["rpath"] or "")
    assert info.float_abi == truth["float_abi"]
    assert info.arm_arch == (ARM_ARCHES[truth["arm_cpu_arch"]] if truth["arm_cpu_arch"] else None)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_binary_runs_on_its_own_platform_only(name):
    info = read(name)
    own = platform_of(name)
    assert mismatch(info, own) is None, name
    for other in set(PLATFORM_OF.values()) - {str(own)}:
        if own.arch == "arm" and other.startswith("linux/arm/"):
            continue  # the variants: below
        assert mismatch(info, Platform.parse(other)) is not None, (name, other)


def test_arm_variants_are_told_apart_by_architecture_version_and_float_abi():
    v5, v6, v7 = (Platform.parse(f"linux/arm/{v}") for v in ("v5", "v6", "v7"))
    armv7_dynamic, armv6_dynamic, armel = read("arm-v7-hello.gz"), read("arm-v6-hello.gz"), read("busybox-armel.gz")
    # ARMv7 code dies with "Illegal instruction" on a Raspberry Pi Zero (ARMv6).
    assert mismatch(armv7_dynamic, v6) == (
        "ELF 32-bit arm (ARMv7, hard float), but linux/arm/v6 needs 32-bit ARM, ARMv6 or older, hard float"
    )
    assert mismatch(armv6_dynamic, v6) is None and mismatch(armv6_dynamic, v7) is None
    # A soft-float program linked against the platform's hard-float libraries, and the reverse.
    assert "needs 32-bit ARM, ARMv7 or older, hard float" in str(mismatch(armel, v7))
    assert mismatch(armel, v5) is None
    assert "soft float" in str(mismatch(read("busybox-armhf.gz"), v5))
    # A static program has no calling convention to share: its float ABI does not matter.
    static_v6 = read("arm-v6-hello-static.gz")
    assert not static_v6.dynamic and mismatch(static_v6, v7) is None


def test_the_description_names_what_a_file_is_built_for():
    assert read("busybox-amd64.gz").describe() == "ELF 64-bit x86-64"
    assert read("busybox-s390x.gz").describe() == "ELF 64-bit s390x"
    assert read("busybox-ppc64el.gz").machine == "ppc64le"
    assert read("busybox-mips64el.gz").machine == "mips64el"
    assert read("busybox-armhf.gz").describe() == "ELF 32-bit arm (ARMv7, hard float)"
    assert mismatch(read("busybox-static-amd64.gz"), Platform.parse("linux/arm64")) == (
        "ELF 64-bit x86-64, but linux/arm64 needs aarch64"
    )


def test_the_32_bit_companion_passes_only_where_asked():
    i386 = read("busybox-i386.gz")
    amd64 = Platform.parse("linux/amd64")
    assert mismatch(i386, amd64) is not None
    assert mismatch(i386, amd64, companion_ok=True) is None
    assert mismatch(read("busybox-armhf.gz"), Platform.parse("linux/arm64"), companion_ok=True) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x7fELF", b"#!/bin/sh\n", b"\x7fELF\x02\x01\x01" + b"\xff" * 57, b"\x7fELF\x03" + bytes(60)],
    ids=["empty", "magic only", "script", "garbage header", "bad class"],
)
def test_damaged_files_give_none_or_what_could_be_read(data):
    info = read_elf_bytes(data)
    assert info is None or (info.needed == () and info.interpreter is None)


def test_a_truncated_binary_keeps_its_header():
    whole = gzip.decompress((FIXTURES / "busybox-arm64.gz").read_bytes())
    info = read_elf_bytes(whole[:64])
    assert info is not None and info.machine == "aarch64" and info.interpreter is None
