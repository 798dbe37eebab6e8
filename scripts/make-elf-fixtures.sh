#!/usr/bin/env bash
# Make the ELF test fixtures in tests/fixtures/elf/ and their ground truth, manifest.json.
#
# Developer-only: the tests read the committed fixtures and never run this. Re-run it only to
# add a fixture or to refresh them (delete the cache below to take newer Debian packages).
# Needs Debian or Ubuntu, as root the first time (it installs binutils-multiarch,
# gcc-arm-linux-gnueabihf and libc6-dev-armhf-cross when they are missing), and the network.
#
# What it does:
#   1. Downloads real Debian packages of nine architectures with `apt-get download PKG:ARCH`:
#      busybox (dynamic), busybox-static and libc6 for amd64 i386 arm64 armel armhf ppc64el
#      s390x mips64el from bookworm, and riscv64 from trixie (bookworm has no riscv64). apt runs
#      with a private state directory in the cache (its own package lists for these
#      architectures, an empty dpkg status, trixie pinned low as scripts/setup-docker.sh pins
#      it), so the machine's dpkg architectures and apt lists are left alone. The archive is
#      the one in the machine's own apt sources; when they have no trixie entry, one is added
#      to the private copy only, with the same mirror as the machine's bookworm entry.
#   2. Compiles a few ARM programs with Debian's cross compiler: an ARMv6 hard-float one
#      (dynamic, and static), an ARMv7 one, an ARMv7 one with a DT_RUNPATH, and an amd64 one
#      with a DT_RPATH (host gcc). The ARMv6 ones bring their own _start: Debian armhf's crt*.o
#      and libc.a are ARMv7 code, and the linker would merge their Tag_CPU_arch into v7.
#   3. Writes a SPARSE copy of each binary, gzip -9n'd: the full file length, every byte zero
#      except the ranges an ELF header reader needs (ELF header, program header table, section
#      header table, .shstrtab, PT_INTERP, PT_DYNAMIC, the dynamic string table that
#      DT_STRTAB/DT_STRSZ map to through PT_LOAD, .ARM.attributes and the SHT_NOTE sections).
#   4. Writes manifest.json from `readelf -h -l -d` (and -A for ARM) run on the ORIGINAL
#      binaries, then runs the same readelf on each gunzipped sparse copy and fails if its
#      output is not identical to the original's (stdout; warnings on stderr are shown).
#
# Idempotent: .debs are downloaded once into the cache, the sparse copies and the manifest
# are byte-for-byte the same on every run (gzip -n stores no name or time).
#
# Environment: MULTIARCH_CACHE_DIR (default ~/.cache/pytest-multiarch; this script uses its
# elf-fixtures/ subdirectory).
set -euo pipefail
shopt -s inherit_errexit nullglob

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/tests/fixtures/elf
CACHE=${MULTIARCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-multiarch}/elf-fixtures
ARCHES="amd64 i386 arm64 armel armhf ppc64el s390x mips64el riscv64"
LIBC_ARCHES="amd64 arm64 armhf s390x"
export LC_ALL=C

log() { printf '[make-elf-fixtures] %s\n' "$*" >&2; }
die() { printf '[make-elf-fixtures] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------
# Tools

ensure_tools() {
  local missing=() t
  dpkg -s binutils-multiarch >/dev/null 2>&1 || missing+=(binutils-multiarch)
  have arm-linux-gnueabihf-gcc || missing+=(gcc-arm-linux-gnueabihf)
  [ -e /usr/arm-linux-gnueabihf/lib/crt1.o ] || missing+=(libc6-dev-armhf-cross)
  have gcc || missing+=(gcc libc6-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (install them, or run as root)"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
  for t in apt-get dpkg-deb readelf gzip python3; do have "$t" || die "$t not found"; done
}

# ---------------------------------------------------------------------------------------------
# A private apt: the machine's sources, our own lists, every architecture, nothing installed

APT_DIR=$CACHE/apt
APT_OPTS=(
  -o "Dir::State=$APT_DIR/state"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::State::status=$APT_DIR/status"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
  -o "Dir::Etc::Preferences=$APT_DIR/preferences"
  -o "Dir::Etc::PreferencesParts=$APT_DIR/preferences.d"
  -o "APT::Architectures=$(tr ' ' , <<<"$ARCHES")"
  -o "APT::Sandbox::User=root"
  -o "Acquire::Languages=none"
)

# First URI of a deb source of the machine whose suites include bookworm (not -security).
machine_bookworm_uri() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    awk '
      function flush() { if (uri != "" && deb && suites ~ /(^| )bookworm( |$)/) { print uri; exit } uri = ""; suites = ""; deb = 0 }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
      END { flush() }
    ' "$f"
  done
  local lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  sed -e 's/\[[^]]*\]//' "${lists[@]}" 2>/dev/null | awk '$1 == "deb" && $3 == "bookworm" { print $2 }' || true
}

setup_private_apt() {
  mkdir -p "$APT_DIR"/{state,lists/partial,cache/archives/partial,sources.list.d,preferences.d}
  : >"$APT_DIR/status"
  rm -f "$APT_DIR"/sources.list.d/*
  local f
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    ln -s "$f" "$APT_DIR/sources.list.d/"
  done
  local sources=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  if ! grep -qsE '^[[:space:]]*Suites:.*[[:space:]]trixie([[:space:]]|$)|^[[:space:]]*deb[[:space:]].*[[:space:]]trixie[[:space:]]' \
    "${sources[@]}"; then
    local uri
    uri=$(machine_bookworm_uri | sed -n 1p)
    [ -n "$uri" ] || die "no Debian bookworm apt source on this machine to take the mirror from"
    log "the machine has no trixie apt source; using $uri for trixie (riscv64) in the private apt only"
    printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" >"$APT_DIR/sources.list.d/trixie.sources"
  fi
  # As in scripts/setup-docker.sh: trixie only where bookworm has nothing (riscv64).
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >"$APT_DIR/preferences"
}

APT_UPDATED=0
private_apt_update() {
  [ "$APT_UPDATED" = 1 ] && return
  log "apt-get update (private lists in $APT_DIR, architectures: $ARCHES)"
  # A mirror in mid-sync can fail one index (seen for bookworm-security armhf, i386, ppc64el);
  # the package is then taken from the suite whose index did load.
  if ! apt-get -q "${APT_OPTS[@]}" update >"$APT_DIR/update.log" 2>&1; then
    log "apt-get update reported errors; continuing:"
    grep -E '^(E|W):' "$APT_DIR/update.log" | sed 's/^/    /' >&2 || true
  fi
  APT_UPDATED=1
}

# Every PKG:ARCH the fixtures come from.
wanted_debs() {
  local a
  for a in $ARCHES; do echo "busybox:$a busybox-static:$a"; done
  for a in $LIBC_ARCHES; do echo "libc6:$a"; done
}

cached() { # PKG ARCH: the cached .debs of PKG:ARCH, one per line
  local f
  for f in "$CACHE/debs/${1}_"*"_$2.deb"; do echo "$f"; done
}

fetch_debs() { # downloads, in one go, every wanted .deb not yet in the cache
  local want=() pa
  mkdir -p "$CACHE/debs"
  for pa in $(wanted_debs); do
    [ -n "$(cached "${pa%%:*}" "${pa#*:}")" ] || want+=("$pa")
  done
  [ ${#want[@]} -gt 0 ] || { log "all .debs already in $CACHE/debs"; return; }
  private_apt_update
  log "apt-get download ${want[*]}"
  (cd "$CACHE/debs" && apt-get -q "${APT_OPTS[@]}" download "${want[@]}" >"$APT_DIR/download.log" 2>&1) || {
    sed 's/^/    /' "$APT_DIR/download.log" >&2
    die "apt-get download failed"
  }
}

cached_deb() { # PKG ARCH: the path of the one cached .deb of PKG:ARCH
  local found
  mapfile -t found < <(cached "$1" "$2")
  [ ${#found[@]} -gt 0 ] || die "no $1:$2 in $CACHE/debs"
  [ ${#found[@]} -eq 1 ] || die "more than one cached $1:$2: ${found[*]} (delete the stale ones)"
  echo "${found[0]}"
}

# ---------------------------------------------------------------------------------------------
# Plan: one line per fixture, NAME<TAB>FILE<TAB>PACKAGE<TAB>PATH<TAB>BUILT

WORK=
cleanup() { [ -z "$WORK" ] || rm -rf "$WORK"; }
trap cleanup EXIT

extract() { # DEB NAME PATTERN...: extracts the .deb, prints "FILE<TAB>PATH" of the first match
  local debf=$1 name=$2 p f
  shift 2
  mkdir -p "$WORK/x/$name"
  dpkg-deb -x "$debf" "$WORK/x/$name"
  for p in "$@"; do
    for f in "$WORK/x/$name"/$p; do
      [ -f "$f" ] && [ ! -L "$f" ] && { printf '%s\t/%s\n' "$f" "${f#"$WORK/x/$name/"}"; return; }
    done
  done
  die "none of $* in $debf"
}

plan_package() { # NAME PKG ARCH PATTERN...
  local name=$1 pkg=$2 arch=$3 debf fp
  shift 3
  debf=$(cached_deb "$pkg" "$arch")
  fp=$(extract "$debf" "$name" "$@")
  printf '%s\t%s\t%s\t%s\t\n' "$name" "${fp%%$'\t'*}" "$(basename "$debf")" "${fp#*$'\t'}" >>"$WORK/plan"
}

plan_built() { # NAME COMPILER SOURCE FLAGS...: compiles $WORK/src/SOURCE into $WORK/bin/NAME
  local name=$1 cc=$2 src=$3
  shift 3
  mkdir -p "$WORK/bin"
  # Compile from inside the source directory so no absolute path of ours is recorded.
  (cd "$WORK/src" && "$cc" "$src" -o "$WORK/bin/$name" "$@")
  printf '%s\t%s\t\t\t%s\n' "$name" "$WORK/bin/$name" "$cc $* $src" >>"$WORK/plan"
}

write_sources() {
  mkdir -p "$WORK/src"
  cat >"$WORK/src/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
EOF
  # Dynamic, against libc.so.6, with our own _start (no ARMv7 crt*.o).
  cat >"$WORK/src/hello-v6.c" <<'EOF'
#include <unistd.h>
static const char msg[] = "hello from ARMv6\n";
__attribute__((noreturn)) void _start(void) { write(1, msg, sizeof msg - 1); _exit(0); }
EOF
  # Static without libc (Debian armhf's libc.a is ARMv7): the two system calls by hand.
  cat >"$WORK/src/hello-v6-static.c" <<'EOF'
static const char msg[] = "hello from ARMv6\n";
__attribute__((noreturn)) void _start(void) {
  register long r0 __asm__("r0") = 1;
  register const char *r1 __asm__("r1") = msg;
  register long r2 __asm__("r2") = sizeof msg - 1;
  register long r7 __asm__("r7") = 4; /* write */
  __asm__ volatile("svc #0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory");
  r0 = 0;
  r7 = 1; /* exit */
  __asm__ volatile("svc #0" : : "r"(r0), "r"(r7));
  for (;;) {}
}
EOF
}

make_plan() {
  local a
  for a in $ARCHES; do
    plan_package "busybox-$a.gz" busybox "$a" bin/busybox usr/bin/busybox
    plan_package "busybox-static-$a.gz" busybox-static "$a" bin/busybox usr/bin/busybox
  done
  for a in $LIBC_ARCHES; do
    plan_package "libc-$a.so.6.gz" libc6 "$a" 'lib/*/libc.so.6' 'usr/lib/*/libc.so.6'
  done
  write_sources
  local v6=(-O2 -march=armv6 -marm -mfpu=vfp -mfloat-abi=hard)
  plan_built arm-v6-hello.gz arm-linux-gnueabihf-gcc hello-v6.c "${v6[@]}" -nostartfiles
  plan_built arm-v6-hello-static.gz arm-linux-gnueabihf-gcc hello-v6-static.c "${v6[@]}" \
    -static -nostdlib -ffreestanding -fno-stack-protector
  plan_built arm-v7-hello.gz arm-linux-gnueabihf-gcc hello.c -O2 -march=armv7-a+fp
  plan_built arm-v7-runpath.gz arm-linux-gnueabihf-gcc hello.c -O2 -march=armv7-a+fp \
    "-Wl,-rpath,\$ORIGIN/../lib" -Wl,--enable-new-dtags
  plan_built amd64-rpath.gz gcc hello.c -O2 "-Wl,-rpath,/opt/example/lib:\$ORIGIN" \
    -Wl,--disable-new-dtags
}

# ---------------------------------------------------------------------------------------------
# Sparse copies, manifest, verification

write_fixtures() {
  python3 - "$WORK/plan" "$OUT" "$WORK/tmp" <<'PYEOF'
import json, os, re, struct, subprocess, sys

plan_path, out_dir, tmp = sys.argv[1:4]
os.makedirs(tmp, exist_ok=True)

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
SHT_NOBITS, SHT_NOTE, SHT_ARM_ATTRIBUTES = 8, 7, 0x70000003
DT_NULL, DT_STRTAB, DT_STRSZ = 0, 5, 10


def kept_ranges(data):
    """The (start, end) file ranges an ELF header reader needs; struct only."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not ELF")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ValueError(f"bad EI_CLASS {cls} or EI_DATA {enc}")
    e = "<" if enc == 1 else ">"
    if cls == 1:
        (_t, _m, _v, _entry, phoff, shoff, _f, ehsize, phentsize, phnum, shentsize, shnum,
         shstrndx) = struct.unpack_from(e + "HHIIIIIHHHHHH", data, 16)
        ph_fmt, sh_fmt, dyn_fmt = e + "IIIIIIII", e + "IIIIIIIIII", e + "iI"
    else:
        (_t, _m, _v, _entry, phoff, shoff, _f, ehsize, phentsize, phnum, shentsize, shnum,
         shstrndx) = struct.unpack_from(e + "HHIQQQIHHHHHH", data, 16)
        ph_fmt, sh_fmt, dyn_fmt = e + "IIQQQQQQ", e + "IIQQQQIIQQ", e + "qQ"

    def section(i):
        name, typ, _fl, addr, off, size, link, info, _al, _es = struct.unpack_from(
            sh_fmt, data, shoff + i * shentsize)
        return dict(name=name, type=typ, offset=off, size=size, link=link, info=info)

    ranges = [(0, ehsize)]
    sections = []
    if shoff:
        # Extended numbering: section 0 holds the real counts.
        s0 = section(0)
        if shnum == 0:
            shnum = s0["size"]
        if shstrndx == 0xFFFF:
            shstrndx = s0["link"]
        if phnum == 0xFFFF:
            phnum = s0["info"]
        ranges.append((shoff, shoff + shnum * shentsize))
        sections = [section(i) for i in range(shnum)]
    segs = []
    for i in range(phnum):
        f = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
        if cls == 1:
            typ, off, vaddr, _pa, filesz, _memsz, _fl, _al = f
        else:
            typ, _fl, off, vaddr, _pa, filesz, _memsz, _al = f
        segs.append(dict(type=typ, offset=off, vaddr=vaddr, filesz=filesz))
    ranges.append((phoff, phoff + phnum * phentsize))

    def keep_section(s):
        if s["type"] != SHT_NOBITS:
            ranges.append((s["offset"], s["offset"] + s["size"]))

    if sections and 0 < shstrndx < len(sections):
        shstr = sections[shstrndx]
        keep_section(shstr)
        for s in sections:
            end = data.index(b"\0", shstr["offset"] + s["name"])
            name = data[shstr["offset"] + s["name"]:end].decode("ascii", "replace")
            if s["type"] == SHT_ARM_ATTRIBUTES or name == ".ARM.attributes":
                keep_section(s)
            elif s["type"] == SHT_NOTE or name.startswith(".note"):
                keep_section(s)
    for p in segs:
        if p["type"] in (PT_INTERP, PT_DYNAMIC):
            ranges.append((p["offset"], p["offset"] + p["filesz"]))
        if p["type"] != PT_DYNAMIC:
            continue
        strtab = strsz = None
        size = struct.calcsize(dyn_fmt)
        for off in range(p["offset"], p["offset"] + p["filesz"] - size + 1, size):
            tag, val = struct.unpack_from(dyn_fmt, data, off)
            if tag == DT_NULL:
                break
            if tag == DT_STRTAB:
                strtab = val
            elif tag == DT_STRSZ:
                strsz = val
        if strtab is None or strsz is None:
            continue
        for s in segs:
            if s["type"] == PT_LOAD and s["vaddr"] <= strtab < s["vaddr"] + s["filesz"]:
                start = strtab - s["vaddr"] + s["offset"]
                ranges.append((start, start + strsz))
                break
        else:
            raise ValueError(f"DT_STRTAB {strtab:#x} is in no PT_LOAD segment")
    for a, b in ranges:
        if not 0 <= a <= b <= len(data):
            raise ValueError(f"range {a:#x}-{b:#x} outside the file ({len(data)} bytes)")
    return ranges


def sparse(data):
    out = bytearray(len(data))
    ranges = kept_ranges(data)
    for a, b in ranges:
        out[a:b] = data[a:b]
    return bytes(out), ranges


def readelf(path, arm):
    opts = ["-h", "-l", "-d"] + (["-A"] if arm else [])
    r = subprocess.run(["readelf", "-W", *opts, path], capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C"))
    if r.returncode != 0:
        raise RuntimeError(f"readelf {path}: {r.stderr}")
    return r.stdout, r.stderr


MACHINES = {  # readelf's "Machine:" text -> e_machine, to check the number read from the bytes
    "Intel 80386": 3, "MIPS R3000": 8, "PowerPC64": 21, "IBM S/390": 22, "ARM": 40,
    "Advanced Micro Devices X86-64": 62, "AArch64": 183, "RISC-V": 243,
}


def facts(text, e_machine):
    def one(pattern, default=None):
        found = re.findall(pattern, text, re.M)
        if len(found) > 1:
            raise ValueError(f"{pattern!r} more than once")
        return found[0] if found else default

    machine_name = one(r"^\s*Machine:\s*(.*?)\s*$")
    if MACHINES.get(machine_name) != e_machine:
        raise ValueError(f"e_machine {e_machine} in the bytes, readelf says {machine_name!r}")
    flags_line = one(r"^\s*Flags:\s*(.*?)\s*$")
    float_abi = ("hard" if "hard-float ABI" in flags_line
                 else "soft" if "soft-float ABI" in flags_line else None)
    return {
        "class": {"ELF32": 32, "ELF64": 64}[one(r"^\s*Class:\s*(\S+)")],
        "data": one(r"^\s*Data:\s*2's complement, (little|big) endian"),
        "machine": e_machine,
        "machine_name": machine_name,
        "type": one(r"^\s*Type:\s*(\S+)"),
        # readelf's whole text: DYN is a PIE ("Position-Independent Executable file", from
        # DF_1_PIE in DT_FLAGS_1) or a library ("Shared object file"; libc.so.6 has a PT_INTERP).
        "type_text": one(r"^\s*Type:\s*(.*?)\s*$"),
        "flags": int(flags_line.split(",")[0], 16),
        "interp": one(r"\[Requesting program interpreter: (.*)\]"),
        "needed": re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", text),
        "soname": one(r"\(SONAME\)\s+Library soname: \[(.*)\]"),
        "runpath": one(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]"),
        "rpath": one(r"\(RPATH\)\s+Library rpath: \[(.*)\]"),
        "arm_cpu_arch": one(r"^\s*Tag_CPU_arch: (.*?)\s*$") if e_machine == 40 else None,
        "float_abi": float_abi,
    }


manifest, sizes, problems = {}, [], []
with open(plan_path) as f:
    plan = [line.rstrip("\n").split("\t") for line in f if line.strip()]
for name, path, package, pkg_path, built in plan:
    with open(path, "rb") as f:
        data = f.read()
    e = "<" if data[5] == 1 else ">"
    e_machine = struct.unpack_from(e + "H", data, 18)[0]
    arm = e_machine == 40
    text, _ = readelf(path, arm)
    entry = {"package": package.replace("%3a", ":") or None, "path": pkg_path or None}
    if built:
        entry["built"] = built
    entry.update(facts(text, e_machine))
    manifest[name] = entry

    sp, ranges = sparse(data)
    raw = os.path.join(tmp, name[:-3])
    with open(raw, "wb") as f:
        f.write(sp)
    gz = subprocess.run(["gzip", "-9n", "-c", raw], capture_output=True, check=True).stdout
    dest = os.path.join(out_dir, name)
    old = open(dest, "rb").read() if os.path.exists(dest) else None
    if gz != old:
        with open(dest + ".tmp", "wb") as f:
            f.write(gz)
        os.replace(dest + ".tmp", dest)

    # Verify: readelf on the gunzipped fixture, not on our buffer.
    check = os.path.join(tmp, "check-" + name[:-3])
    with open(check, "wb") as f:
        f.write(subprocess.run(["gzip", "-dc", dest], capture_output=True, check=True).stdout)
    stext, serr = readelf(check, arm)
    sfacts = facts(stext, e_machine)
    want = {k: v for k, v in entry.items() if k not in ("package", "path", "built")}
    if sfacts != want:
        problems.append(f"{name}: the sparse copy reads differently: "
                        + ", ".join(f"{k}: {want[k]!r} != {sfacts[k]!r}"
                                    for k in want if want[k] != sfacts[k]))
    elif stext.replace(check, path) != text:
        problems.append(f"{name}: same fields, but readelf's whole output differs")
    warn = f"; readelf warns: {serr.strip().splitlines()[0]}" if serr.strip() else ""
    kept = sum(b - a for a, b in ranges)
    sizes.append((name, len(gz), len(data), kept, warn))

with open(os.path.join(out_dir, "manifest.json.tmp"), "w") as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(os.path.join(out_dir, "manifest.json.tmp"), os.path.join(out_dir, "manifest.json"))

total = 0
print(f"{'fixture':32} {'bytes':>7} {'original':>9} {'kept':>7}")
for name, n, orig, kept, warn in sorted(sizes):
    total += n
    print(f"{name:32} {n:7} {orig:9} {kept:7}{warn}")
mf = os.path.getsize(os.path.join(out_dir, "manifest.json"))
print(f"{'manifest.json':32} {mf:7}")
print(f"{'total':32} {total + mf:7}")
if total + mf > 300 * 1024:
    problems.append(f"fixtures total {total + mf} bytes, over 300 KB")
for p in problems:
    print("PROBLEM:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
}

main() {
  local start=$SECONDS
  ensure_tools
  setup_private_apt
  WORK=$(mktemp -d)
  : >"$WORK/plan"
  mkdir -p "$OUT"
  fetch_debs
  make_plan
  write_fixtures
  log "done in $((SECONDS - start)) s: $OUT"
}

main "$@"
