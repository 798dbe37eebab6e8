"""ELF headers: which CPU a file is built for, read from its bytes and never by running it.

``read_elf`` reads what the kernel and the dynamic loader look at: the class (32/64-bit), byte
order and machine of the header, the ``PT_INTERP`` loader, the ``DT_NEEDED`` libraries with
``DT_RUNPATH``/``DT_RPATH``, and for 32-bit ARM the float ABI (``e_flags``) and the architecture
version (``Tag_CPU_arch`` of ``.ARM.attributes``), which tells ARMv6 code from ARMv7 code.
``mismatch`` compares that with a platform. A damaged or truncated file gives what could be
read; nothing here raises on bad input.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

from pytest_multiarch.platforms import Platform

Read = Callable[[int, int], bytes]  # (offset, size) -> at most size bytes at offset

MAGIC = b"\x7fELF"
ET_EXEC, ET_DYN = 2, 3
# Code for processors other than the CPU (BPF programs, GPU kernels): never a CPU mismatch.
_NOT_CPU_CODE = frozenset({190, 224, 247})  # EM_CUDA, EM_AMDGPU, EM_BPF
EF_ARM_ABI_FLOAT_SOFT = 0x200
EF_ARM_ABI_FLOAT_HARD = 0x400
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 5, 10, 14, 15, 29
_EM_ARM = 40
_MAX_TABLE = 4096  # entries read at most from a program header, section or dynamic table

# Tag_CPU_arch values of the ARM EABI attributes (ARM IHI 0045).
_ARM_ARCH_NAMES = {
    0: "pre-v4",
    1: "ARMv4",
    2: "ARMv4T",
    3: "ARMv5T",
    4: "ARMv5TE",
    5: "ARMv5TEJ",
    6: "ARMv6",
    7: "ARMv6KZ",
    8: "ARMv6T2",
    9: "ARMv6K",
    10: "ARMv7",
    11: "ARMv6-M",
    12: "ARMv6S-M",
    13: "ARMv7E-M",
    14: "ARMv8",
}
# The Tag_CPU_arch values a CPU of each linux/arm variant runs. ARMv6T2 (8) adds Thumb-2, which
# the ARM1176 of a Raspberry Pi Zero/1 (ARMv6KZ) lacks.
_ARM_ARCH_RUNS = {"v5": frozenset(range(6)), "v6": frozenset({0, 1, 2, 3, 4, 5, 6, 7, 9}), "v7": frozenset(range(14))}


@dataclasses.dataclass(frozen=True)
class Target:
    """What a platform's CPU runs: e_machine, class and byte order."""

    e_machine: int
    bits: int
    byte_order: str


# Docker's arch → what its CPU runs.
TARGETS: dict[str, Target] = {
    "amd64": Target(62, 64, "little"),
    "386": Target(3, 32, "little"),
    "arm64": Target(183, 64, "little"),
    "arm": Target(_EM_ARM, 32, "little"),
    "ppc64le": Target(21, 64, "little"),
    "s390x": Target(22, 64, "big"),
    "riscv64": Target(243, 64, "little"),
    "mips64le": Target(8, 64, "little"),
    "loong64": Target(258, 64, "little"),
}

# A 64-bit platform's kernel also runs its 32-bit companion's code (multilib libraries).
COMPANIONS: dict[str, Target] = {
    "amd64": TARGETS["386"],
    "arm64": TARGETS["arm"],
    "s390x": Target(22, 32, "big"),
}


@dataclasses.dataclass(frozen=True)
class ElfInfo:
    """What an ELF file's headers say. ``machine`` is the name ``uname -m`` uses for that CPU
    (``x86_64``, ``aarch64``, ``arm``, ``ppc64le``, ``s390x``...)."""

    bits: int  # 32 or 64
    byte_order: str  # "little" or "big"
    e_machine: int
    type: int  # e_type: 2 executable, 3 shared object or PIE
    flags: int = 0
    interpreter: str | None = None  # PT_INTERP: the loader the kernel starts
    needed: tuple[str, ...] = ()  # DT_NEEDED
    runpath: tuple[str, ...] = ()  # DT_RUNPATH, split at ":"
    rpath: tuple[str, ...] = ()  # DT_RPATH, split at ":"
    soname: str | None = None
    arm_arch: int | None = None  # Tag_CPU_arch, 32-bit ARM only

    @property
    def machine(self) -> str:
        return machine_name(self.e_machine, self.bits, self.byte_order)

    @property
    def runs_on_cpu(self) -> bool:
        """An executable or shared object for a CPU: not an object file, a kernel module or a
        core dump (e_type 1, 4), nor a BPF program or GPU kernel, which nothing here runs."""
        return self.type in (ET_EXEC, ET_DYN) and self.e_machine not in _NOT_CPU_CODE

    @property
    def dynamic(self) -> bool:
        """Linked against shared libraries through a loader (not a static executable)."""
        return self.interpreter is not None or bool(self.needed)

    @property
    def float_abi(self) -> str | None:
        """ "hard" or "soft" where a 32-bit ARM header states it, else None."""
        if self.e_machine != _EM_ARM:
            return None
        if self.flags & EF_ARM_ABI_FLOAT_HARD:
            return "hard"
        if self.flags & EF_ARM_ABI_FLOAT_SOFT:
            return "soft"
        return None

    def describe(self) -> str:
        """``ELF 64-bit x86-64``, ``ELF 32-bit ARM (ARMv7, hard float)``: for messages."""
        name = {"x86_64": "x86-64"}.get(self.machine, self.machine)
        details = [_ARM_ARCH_NAMES.get(self.arm_arch, f"arch {self.arm_arch}")] if self.arm_arch is not None else []
        if self.float_abi:
            details.append(f"{self.float_abi} float")
        return f"ELF {self.bits}-bit {name}" + (f" ({', '.join(details)})" if details else "")

    def matches(self, platform: Platform) -> bool:
        """Whether a CPU of ``platform`` runs this file (see ``mismatch``)."""
        return mismatch(self, platform) is None


def machine_name(e_machine: int, bits: int, byte_order: str) -> str:
    """The ``uname -m`` style name of an ELF machine."""
    little = byte_order == "little"
    names: dict[int, str] = {
        3: "i386",
        62: "x86_64" if bits == 64 else "x32",
        183: "aarch64" if little else "aarch64_be",
        _EM_ARM: "arm" if little else "armeb",
        20: "ppc" if not little else "ppcle",
        21: "ppc64le" if little else "ppc64",
        22: "s390x" if bits == 64 else "s390",
        243: f"riscv{bits}",
        8: ("mips64" if bits == 64 else "mips") + ("el" if little else ""),
        258: f"loongarch{bits}",
        2: "sparc",
        43: "sparc64",
        50: "ia64",
    }
    return names.get(e_machine, f"machine {e_machine}")


def needs(platform: Platform) -> str:
    """What a file must be built for to run on ``platform``, for messages: ``aarch64``."""
    target = TARGETS.get(platform.arch)
    if target is None:
        return str(platform)
    name = machine_name(target.e_machine, target.bits, target.byte_order)
    if platform.arch == "arm":
        abi = "soft" if platform.variant == "v5" else "hard"
        return f"32-bit ARM, ARM{platform.variant or 'v7'} or older, {abi} float"
    return {"x86_64": "x86-64"}.get(name, name)


def mismatch(info: ElfInfo, platform: Platform, *, companion_ok: bool = False) -> str | None:
    """Why a CPU of ``platform`` cannot run ``info``'s file, or None when it can (or when the
    platform's arch is one this module does not know). ``companion_ok``: a 64-bit platform's
    32-bit companion (i386 on amd64, ARM on arm64) passes, as for multilib libraries."""
    target = TARGETS.get(platform.arch)
    if target is None:
        return None
    found = Target(info.e_machine, info.bits, info.byte_order)
    if found != target and not (companion_ok and COMPANIONS.get(platform.arch) == found):
        return f"{info.describe()}, but {platform} needs {needs(platform)}"
    if platform.arch != "arm" or found != target:
        return None
    variant = platform.variant or "v7"
    if info.arm_arch is not None and info.arm_arch not in _ARM_ARCH_RUNS.get(variant, frozenset()):
        return f"{info.describe()}, but {platform} needs {needs(platform)}"
    wanted_float = "soft" if variant == "v5" else "hard"
    if info.float_abi not in (None, wanted_float) and (info.dynamic or info.type == ET_DYN):
        # The float ABI is a calling convention: it matters where code links with the
        # platform's libraries, not inside a static executable.
        return f"{info.describe()}, but {platform} needs {needs(platform)}"
    return None


def is_elf(head: bytes) -> bool:
    return head[:4] == MAGIC


def read_elf(read: Read) -> ElfInfo | None:
    """The headers of an ELF file, or None when it is not one. ``read(offset, size)`` gives
    bytes of the file (fewer at its end); only headers and the tables they point to are read."""
    try:
        return _Reader(read).info()
    except (struct.error, ValueError, IndexError, OverflowError, MemoryError):
        return None


def read_elf_bytes(data: bytes) -> ElfInfo | None:
    """``read_elf`` of a file held in memory."""
    view = memoryview(data)
    return read_elf(lambda offset, size: bytes(view[offset : offset + size]))


class _Reader:
    def __init__(self, read: Read) -> None:
        self.read = read

    def info(self) -> ElfInfo | None:
        ident = self.read(0, 64)
        if len(ident) < 52 or ident[:4] != MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            return None
        bits = 64 if ident[4] == 2 else 32
        order = "<" if ident[5] == 1 else ">"
        self.bits, self.order = bits, order
        if bits == 64:
            if len(ident) < 64:
                return None
            e_type, e_machine, _, _, phoff, shoff, flags, _, phentsize, phnum, shentsize, shnum, shstrndx = (
                struct.unpack_from(order + "HHIQQQIHHHHHH", ident, 16)
            )
        else:
            e_type, e_machine, _, _, phoff, shoff, flags, _, phentsize, phnum, shentsize, shnum, shstrndx = (
                struct.unpack_from(order + "HHIIIIIHHHHHH", ident, 16)
            )
        info = ElfInfo(
            bits=bits, byte_order="little" if order == "<" else "big", e_machine=e_machine, type=e_type, flags=flags
        )
        segments = self._segments(phoff, phentsize, phnum)
        interpreter = None
        for p_type, offset, _vaddr, filesz in segments:
            if p_type == _PT_INTERP and 0 < filesz < 4096:
                interpreter = self.read(offset, filesz).split(b"\0", 1)[0].decode("utf-8", "replace") or None
        dynamic = self._dynamic(segments)
        arm_arch = self._arm_arch(shoff, shentsize, shnum, shstrndx) if e_machine == _EM_ARM else None
        return dataclasses.replace(info, interpreter=interpreter, arm_arch=arm_arch, **dynamic)

    def _segments(self, phoff: int, entsize: int, count: int) -> list[tuple[int, int, int, int]]:
        """(p_type, p_offset, p_vaddr, p_filesz) of each program header."""
        minimum = 56 if self.bits == 64 else 32
        if not phoff or entsize < minimum or count > _MAX_TABLE:
            return []
        table = self.read(phoff, entsize * count)
        found = []
        for index in range(len(table) // entsize):
            at = index * entsize
            if self.bits == 64:
                p_type, _, offset, vaddr, _, filesz = struct.unpack_from(self.order + "IIQQQQ", table, at)
            else:
                p_type, offset, vaddr, _, filesz = struct.unpack_from(self.order + "IIIII", table, at)
            found.append((p_type, offset, vaddr, filesz))
        return found

    def _dynamic(self, segments: list[tuple[int, int, int, int]]) -> dict[str, Any]:
        """needed, runpath, rpath and soname from PT_DYNAMIC and the string table it names."""
        entry = struct.Struct(self.order + ("qQ" if self.bits == 64 else "iI"))
        tags: list[tuple[int, int]] = []
        for p_type, offset, _, filesz in segments:
            if p_type == _PT_DYNAMIC:
                table = self.read(offset, min(filesz, entry.size * _MAX_TABLE))
                for at in range(0, len(table) - entry.size + 1, entry.size):
                    tag, value = entry.unpack_from(table, at)
                    if tag == 0:
                        break
                    tags.append((tag, value))
        values: dict[int, list[int]] = {}
        for tag, value in tags:
            values.setdefault(tag, []).append(value)
        if not values.get(_DT_STRTAB):
            return {}
        strtab = self._file_offset(segments, values[_DT_STRTAB][0])
        size = (values.get(_DT_STRSZ) or [65536])[0]
        if strtab is None or size <= 0:
            return {}
        strings = self.read(strtab, min(size, 1 << 24))

        def text(at: int) -> str:
            return strings[at : strings.find(b"\0", at) if b"\0" in strings[at:] else None].decode("utf-8", "replace")

        def paths(tag: int) -> tuple[str, ...]:
            return tuple(p for v in values.get(tag, ()) for p in text(v).split(":") if p)

        sonames = values.get(_DT_SONAME)
        return {
            "needed": tuple(text(v) for v in values.get(_DT_NEEDED, ())),
            "runpath": paths(_DT_RUNPATH),
            "rpath": paths(_DT_RPATH),
            "soname": text(sonames[0]) if sonames else None,
        }

    @staticmethod
    def _file_offset(segments: list[tuple[int, int, int, int]], address: int) -> int | None:
        """The file offset a virtual address is loaded from (through the PT_LOAD segments)."""
        for p_type, offset, vaddr, filesz in segments:
            if p_type == _PT_LOAD and vaddr <= address < vaddr + filesz:
                return offset + address - vaddr
        return None

    def _arm_arch(self, shoff: int, entsize: int, count: int, names_index: int) -> int | None:
        """Tag_CPU_arch of the ``.ARM.attributes`` section, when the file has one."""
        minimum = 64 if self.bits == 64 else 40
        if not shoff or entsize < minimum or not 0 < count <= _MAX_TABLE or names_index >= count:
            return None
        table = self.read(shoff, entsize * count)
        layout = self.order + ("IIQQQQ" if self.bits == 64 else "IIIIII")
        sections = [struct.unpack_from(layout, table, i * entsize) for i in range(len(table) // entsize)]
        if names_index >= len(sections):
            return None
        _, _, _, _, names_offset, names_size = sections[names_index]
        names = self.read(names_offset, min(names_size, 1 << 20))
        for name, _, _, _, offset, size in sections:
            if names[name : name + 16] == b".ARM.attributes\0":
                return _cpu_arch(self.read(offset, min(size, 1 << 16)), self.order)
        return None


def _cpu_arch(data: bytes, order: str) -> int | None:
    """Tag_CPU_arch (6) of the "aeabi" file attributes: format-version 'A', then subsections of
    (uint32 length, vendor name, (tag, uint32 size, attributes)...)."""
    if not data or data[0:1] != b"A":
        return None
    at = 1
    while at + 4 < len(data):
        (length,) = struct.unpack_from(order + "I", data, at)
        if length < 5:
            return None
        end = min(at + length, len(data))
        vendor_end = data.find(b"\0", at + 4, end)
        if vendor_end != -1 and data[at + 4 : vendor_end] == b"aeabi":
            inner = vendor_end + 1
            while inner + 5 <= end:
                tag, (size,) = data[inner], struct.unpack_from(order + "I", data, inner + 1)
                if size < 5:
                    return None
                if tag == 1:  # Tag_File: attributes of the whole file
                    return _attribute(data[inner + 5 : min(inner + size, end)], 6)
                inner += size
        at += length
    return None


def _attribute(data: bytes, wanted: int) -> int | None:
    """The integer value of attribute ``wanted`` in a run of (ULEB128 tag, value) pairs, where
    tags 4, 5 and 67, and odd tags above 32, carry a NUL-terminated string, 32 a ULEB128 and a
    string, and all others a ULEB128."""
    at = 0
    while at < len(data):
        tag, at = _uleb128(data, at)
        if tag == wanted:
            return _uleb128(data, at)[0]
        if tag in (4, 5, 67) or (tag > 32 and tag % 2 == 1):
            at = data.find(b"\0", at) + 1 or len(data)
        elif tag == 32:
            _, at = _uleb128(data, at)
            at = data.find(b"\0", at) + 1 or len(data)
        else:
            _, at = _uleb128(data, at)
    return None


def _uleb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data):
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value, at
