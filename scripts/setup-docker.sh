#!/usr/bin/env bash
# Bring up everything pytest-multiarch's own tests and example need, idempotently:
#   1. a Docker Engine that answers, with the buildx plugin;
#   2. QEMU user emulation (binfmt_misc handlers) for every platform in $MULTIARCH_BASE_PLATFORMS;
#   3. an image registry on $MULTIARCH_REGISTRY (default 127.0.0.1:5000);
#   4. multi-arch base images in that registry, made from Debian packages, so that no image is
#      ever pulled from Docker Hub:
#        $MULTIARCH_REGISTRY/multiarch/busybox:1   busybox-static, ~2 MB, for fast test images
#        $MULTIARCH_REGISTRY/multiarch/python:3    Debian bookworm with python3, for the example
#
# Every step first checks whether its result is already there and does nothing if it is, so on
# a machine with Docker Desktop or GitHub Actions' setup-qemu-action it only adds the registry
# and the base images. Installing packages (steps 1 and 2) is done on Debian/Ubuntu as root only;
# elsewhere the script stops and says what to install.
#
# Slow artifacts (root filesystem tarballs, .deb files) are cached in $MULTIARCH_CACHE_DIR
# (default ~/.cache/pytest-multiarch), outside the repository.
set -euo pipefail
shopt -s inherit_errexit

REGISTRY=${MULTIARCH_REGISTRY:-127.0.0.1:5000}
PLATFORMS=${MULTIARCH_BASE_PLATFORMS:-linux/amd64 linux/arm64}
CACHE_DIR=${MULTIARCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-multiarch}
if [ "$(id -u)" = 0 ]; then
  STATE_DIR=${MULTIARCH_STATE_DIR:-/var/lib/pytest-multiarch}
else
  STATE_DIR=${MULTIARCH_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/pytest-multiarch}
fi
SUITE=bookworm
MIRROR=${MULTIARCH_DEBIAN_MIRROR:-}
BUSYBOX_REF=$REGISTRY/multiarch/busybox:1
PYTHON_REF=$REGISTRY/multiarch/python:3
# Where the base images come from on a machine that cannot build them from Debian packages (not
# Debian, or not root) but can pull from Docker Hub: a developer laptop, a GitHub Actions runner.
BUSYBOX_UPSTREAM=${MULTIARCH_BUSYBOX_UPSTREAM:-docker.io/library/busybox:1.36}
PYTHON_UPSTREAM=${MULTIARCH_PYTHON_UPSTREAM:-docker.io/library/python:3.12-slim}

log() { printf '[setup-docker] %s\n' "$*" >&2; }
die() { printf '[setup-docker] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }
is_debian() { [ -r /etc/debian_version ] && have apt-get; }
can_install() { is_root && is_debian; }

APT_UPDATED=0
apt_update() {
  # A mirror in mid-sync can fail one index (seen for armhf); the packages needed are usually
  # still there, so go on and let the install or download step fail if they are not.
  if ! apt-get update -qq >/dev/null 2>"$STATE_DIR/apt-update.log"; then
    log "apt-get update reported errors (see $STATE_DIR/apt-update.log); continuing"
  fi
  APT_UPDATED=1
}
apt_install() {
  [ "$APT_UPDATED" = 1 ] || apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian arch name for a Docker platform string.
deb_arch() {
  case "$1" in
    linux/amd64) echo amd64 ;;
    linux/arm64 | linux/arm64/v8) echo arm64 ;;
    linux/arm/v7 | linux/arm) echo armhf ;;
    linux/arm/v6) echo armel ;;
    linux/386) echo i386 ;;
    linux/ppc64le) echo ppc64el ;;
    linux/s390x) echo s390x ;;
    linux/riscv64) echo riscv64 ;;
    *) die "no Debian architecture known for platform $1" ;;
  esac
}

# binfmt_misc handler name (qemu-NAME) for a Docker platform string.
qemu_name() {
  case "$1" in
    linux/amd64) echo x86_64 ;;
    linux/arm64 | linux/arm64/v8) echo aarch64 ;;
    linux/arm/*) echo arm ;;
    linux/386) echo i386 ;;
    linux/ppc64le) echo ppc64le ;;
    linux/s390x) echo s390x ;;
    linux/riscv64) echo riscv64 ;;
  esac
}

host_platform() {
  case "$(uname -m)" in
    x86_64) echo linux/amd64 ;;
    aarch64 | arm64) echo linux/arm64 ;;
    *) echo "linux/$(uname -m)" ;;
  esac
}

docker_answers() { docker info >/dev/null 2>&1; }

# The Debian archive this machine already uses: the first URI of an apt source whose suite is a
# Debian release (not -security), from deb822 .sources files or one-line sources.list entries.
# Reading it (instead of naming a mirror here) keeps corporate mirrors and proxies working.
machine_debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '
      function flush() { if (uri != "" && deb && suites ~ /(^| )(bookworm|trixie|bullseye|stable|testing|sid)( |$)/) { print uri; found = 1 } uri = ""; suites = ""; deb = 0 }
      found { next }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { $1 = ""; suites = substr($0, 2) }
      END { if (!found) flush() }
    ' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return 0; fi
  done
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -e 's/\[[^]]*\]//' \
    | awk '!found && $1 == "deb" && $3 !~ /-(security|updates|backports)$/ { print $2; found = 1 }')
  [ -n "$uri" ] && echo "$uri"
}

debian_mirror() {
  if [ -z "$MIRROR" ]; then
    MIRROR=$(machine_debian_mirror) \
      || die "no Debian apt source found in /etc/apt/sources.list{,.d}; set MULTIARCH_DEBIAN_MIRROR to your Debian mirror's URL"
  fi
  echo "$MIRROR"
}

# ---------------------------------------------------------------------------------------------
# 1. Docker Engine and buildx

add_trixie_source() {
  # bookworm has neither buildx nor a recent engine; trixie has both. Pinned low so that nothing
  # else on the machine is upgraded from it.
  if [ ! -e /etc/apt/sources.list.d/pytest-multiarch-trixie.sources ]; then
    log "adding Debian trixie as a low-priority apt source (for docker.io and docker-buildx)"
    local mirror
    mirror=$(debian_mirror)
    cat >/etc/apt/sources.list.d/pytest-multiarch-trixie.sources <<EOF
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >/etc/apt/preferences.d/pytest-multiarch-trixie <<EOF
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOF
    APT_UPDATED=0
  fi
}

ensure_engine_packages() {
  if docker_answers && docker buildx version >/dev/null 2>&1; then
    return
  fi
  if have dockerd && docker buildx version >/dev/null 2>&1; then
    return
  fi
  can_install || die "Docker Engine with buildx is missing. Install Docker (https://docs.docker.com/engine/install/) and re-run."
  add_trixie_source
  say_what_trixie_changes docker.io docker-buildx
  log "installing docker.io and docker-buildx from trixie (takes about a minute)"
  apt_install -t trixie docker.io docker-buildx
}

# The trixie pin keeps every other package on bookworm, but what docker.io needs from trixie
# comes with it: on a minimal bookworm that upgrades libc6, libc-bin and base-files (more on a
# fuller machine). Say so before doing it, from apt's own dry run.
say_what_trixie_changes() {
  [ "$APT_UPDATED" = 1 ] || apt_update
  local plan
  plan=$(apt-get -s install -t trixie --no-install-recommends "$@" 2>/dev/null | grep '^Inst ' || true)
  local upgrades news
  upgrades=$(printf '%s\n' "$plan" | awk '/^Inst [^ ]+ \[/ { gsub(/[][()]/, "", $3); gsub(/\(/, "", $4); print $2 " " $3 " -> " $4 }')
  news=$(printf '%s\n' "$plan" | grep -vc '^Inst [^ ]* \[' || true)
  if [ -n "$upgrades" ]; then
    log "installing from trixie upgrades these installed packages (apt-get -s):"
    printf '%s\n' "$upgrades" | sed 's/^/[setup-docker]   /' >&2
  else
    log "installing from trixie upgrades no installed package (apt-get -s)"
  fi
  log "and adds ${news:-0} new package(s)"
}

ensure_daemon() {
  if docker_answers; then
    log "Docker daemon answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    return
  fi
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer; start that daemon or unset DOCKER_HOST."
  fi
  is_root || die "the Docker daemon is not running; start it (for example 'sudo systemctl start docker')."
  have dockerd || die "dockerd is not installed"
  mkdir -p "$STATE_DIR"
  log "starting dockerd in the background (log: $STATE_DIR/dockerd.log)"
  setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker_answers && break
    sleep 1
  done
  docker_answers || die "dockerd did not answer within 60 s; see $STATE_DIR/dockerd.log"
  log "Docker daemon answers: $(docker version --format '{{.Server.Version}}')"
}

# ---------------------------------------------------------------------------------------------
# 2. QEMU emulation

builder_platforms() { docker buildx inspect 2>/dev/null | sed -n 's/^Platforms: *//p' | tr -d ' ' | tr ',' '\n' | sed 's/\*$//'; }

missing_emulators() {
  local native p name
  native=$(host_platform)
  for p in $PLATFORMS; do
    [ "$p" = "$native" ] && continue
    name=$(qemu_name "$p")
    if [ -r /proc/sys/fs/binfmt_misc/status ] && [ -e "/proc/sys/fs/binfmt_misc/qemu-$name" ]; then
      grep -q '^enabled' "/proc/sys/fs/binfmt_misc/qemu-$name" && continue
    elif docker_answers && builder_platforms | grep -qx "$p"; then
      # Remote daemon or a VM (Docker Desktop): trust the builder's own list.
      continue
    fi
    echo "$p"
  done
}

ensure_emulation() {
  local missing
  missing=$(missing_emulators)
  if [ -z "$missing" ]; then
    log "emulation available for: $PLATFORMS"
    return
  fi
  if ! can_install; then
    die "no QEMU emulator for: $(echo "$missing" | tr '\n' ' ')
  install it with: docker run --privileged --rm tonistiigi/binfmt --install all"
  fi
  log "installing QEMU user emulation for: $(echo "$missing" | tr '\n' ' ')"
  have update-binfmts && [ -e /usr/bin/qemu-aarch64-static ] || apt_install qemu-user-static binfmt-support
  if [ ! -r /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  update-binfmts --enable >/dev/null 2>&1 || true
  missing=$(missing_emulators)
  [ -z "$missing" ] || die "emulation still missing for: $(echo "$missing" | tr '\n' ' ') (see /proc/sys/fs/binfmt_misc)"
  log "emulation enabled (binfmt_misc handlers with the F flag)"
}

# ---------------------------------------------------------------------------------------------
# 3. Local registry

registry_answers() { curl -fsS -o /dev/null --max-time 3 "http://$REGISTRY/v2/" 2>/dev/null; }

ensure_registry() {
  if registry_answers; then
    log "registry answers on $REGISTRY"
    return
  fi
  case "$REGISTRY" in
    127.0.0.1:* | localhost:*) ;;
    *) die "registry $REGISTRY does not answer and is not local; start it or set MULTIARCH_REGISTRY" ;;
  esac
  if ! have docker-registry && can_install; then
    apt_install docker-registry
  fi
  if have docker-registry; then
    mkdir -p "$STATE_DIR/registry"
    cat >"$STATE_DIR/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE_DIR/registry}
  delete: {enabled: true}
http: {addr: $REGISTRY}
EOF
    log "starting docker-registry on $REGISTRY (log: $STATE_DIR/registry.log)"
    setsid docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 </dev/null &
  else
    # A developer machine that can pull from Docker Hub.
    log "starting registry:2 in a container on $REGISTRY"
    docker run -d --restart unless-stopped --name pytest-multiarch-registry \
      -p "$REGISTRY:5000" registry:2 >/dev/null
  fi
  for _ in $(seq 1 30); do
    registry_answers && break
    sleep 0.5
  done
  registry_answers || die "registry on $REGISTRY did not answer"
}

# ---------------------------------------------------------------------------------------------
# 4. Base images

index_has_platforms() { # REF: true when REF is an index that holds every platform in $PLATFORMS
  local out p want
  out=$(docker buildx imagetools inspect "$1" 2>/dev/null) || return 1
  for p in $PLATFORMS; do
    # Docker Hub's official images list arm64 as linux/arm64/v8, which is the same platform.
    case "$p" in
      linux/arm64 | linux/arm64/v8) want='linux/arm64(/v8)?' ;;
      *) want=$p ;;
    esac
    grep -Eq "Platform: *$want\$" <<<"$out" || return 1
  done
}

# import ROOTFS_TAR as PLATFORM into REF-<arch>, push it; prints the per-arch ref
import_and_push() {
  local tar=$1 platform=$2 ref=$3 arch_ref
  arch_ref=$ref-$(deb_arch "$platform")
  docker import --platform "$platform" "$tar" "$arch_ref" >/dev/null
  docker push -q "$arch_ref" >/dev/null
  echo "$arch_ref"
}

ensure_foreign_arch() { # allow apt-get download of ARCH packages
  local arch=$1
  [ "$arch" = "$(dpkg --print-architecture)" ] && return
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
    APT_UPDATED=0
  fi
}

busybox_rootfs() { # PLATFORM -> path of a cached rootfs tarball
  local platform=$1 arch dir tar
  arch=$(deb_arch "$platform")
  tar=$CACHE_DIR/busybox-$SUITE-$arch.tar
  if [ -s "$tar" ]; then echo "$tar"; return; fi
  can_install || die "building the busybox base image needs Debian's apt-get as root"
  ensure_foreign_arch "$arch"
  [ "$APT_UPDATED" = 1 ] || apt_update
  dir=$(mktemp -d)
  chown _apt "$dir" 2>/dev/null || true # apt downloads as _apt when it can
  (cd "$dir" && apt-get download -qq "busybox-static:$arch" >/dev/null)
  dpkg-deb -x "$dir"/busybox-static_*.deb "$dir/x"
  mkdir -p "$dir/root/bin" "$dir/root/etc" "$dir/root/tmp" "$dir/root/www" "$dir/root/proc" "$dir/root/sys" "$dir/root/dev"
  cp "$dir/x/bin/busybox" "$dir/root/bin/busybox"
  # Applet links: the applet list is the same on every arch of one Debian version, so ask the
  # host's own busybox-static build for it (same version, runs natively).
  local native_arch
  native_arch=$(dpkg --print-architecture)
  if [ "$arch" != "$native_arch" ]; then
    (cd "$dir" && apt-get download -qq "busybox-static:$native_arch" >/dev/null)
    dpkg-deb -x "$dir"/busybox-static_*_"$native_arch".deb "$dir/native"
    lister=$dir/native/bin/busybox
  else
    lister=$dir/x/bin/busybox
  fi
  for applet in $("$lister" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/root/bin/$applet"
  done
  ln -s bin "$dir/root/sbin"
  mkdir -p "$dir/root/usr"
  ln -s ../bin "$dir/root/usr/bin"
  ln -s ../bin "$dir/root/usr/sbin"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/root/etc/group"
  mkdir -p "$CACHE_DIR"
  tar -C "$dir/root" -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$dir"
  echo "$tar"
}

python_rootfs() { # PLATFORM -> path of a cached Debian rootfs tarball with python3
  local platform=$1 arch tar
  arch=$(deb_arch "$platform")
  tar=$CACHE_DIR/python3-$SUITE-$arch.tar
  if [ -s "$tar" ]; then echo "$tar"; return; fi
  can_install || die "building the python base image needs mmdebstrap (Debian) as root"
  have mmdebstrap && have arch-test || apt_install mmdebstrap arch-test
  mkdir -p "$CACHE_DIR"
  log "mmdebstrap: Debian $SUITE $arch with python3 (a minute or two under emulation)"
  mmdebstrap --quiet --variant=essential --architectures="$arch" --include=python3 \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --format=tar "$SUITE" "$tar.tmp" "$(debian_mirror)" >&2
  mv "$tar.tmp" "$tar"
  echo "$tar"
}

ensure_base_image() { # REF ROOTFS_FUNCTION UPSTREAM
  local ref=$1 make_rootfs=$2 upstream=$3 p tar refs=()
  if index_has_platforms "$ref"; then
    log "base image $ref present for: $PLATFORMS"
    return
  fi
  if ! can_install; then
    log "copying $upstream to $ref (building it needs Debian's packages as root)"
    docker buildx imagetools create -t "$ref" "$upstream" >/dev/null 2>&1 \
      || die "could not copy $upstream to $ref: build the base images on Debian as root, or set MULTIARCH_BUSYBOX_UPSTREAM / MULTIARCH_PYTHON_UPSTREAM to images you can pull"
    index_has_platforms "$ref" || die "$upstream lacks some of: $PLATFORMS"
    return
  fi
  log "building base image $ref for: $PLATFORMS"
  for p in $PLATFORMS; do
    tar=$("$make_rootfs" "$p")
    refs+=("$(import_and_push "$tar" "$p" "$ref")")
  done
  docker buildx imagetools create -t "$ref" "${refs[@]}" >/dev/null 2>&1 \
    || die "could not create the index $ref from ${refs[*]}"
  index_has_platforms "$ref" || die "index $ref lacks some of: $PLATFORMS"
  log "pushed $ref"
}

verify_runs() {
  local p machine
  for p in $PLATFORMS; do
    # One tag holds one platform in the classic image store: pull the one wanted each time.
    docker pull -q --platform "$p" "$BUSYBOX_REF" >/dev/null 2>&1 || die "cannot pull $BUSYBOX_REF for $p"
    machine=$(docker run --rm --platform "$p" "$BUSYBOX_REF" uname -m 2>&1) \
      || die "cannot run a $p container: $machine"
    log "$p container runs (uname -m: $machine)"
  done
  # Untag the last one pulled: a local single-platform tag would shadow the registry's index for
  # `docker run` and for builds FROM it, and Docker counts arm/v7 images as runnable on arm64.
  docker image rm "$BUSYBOX_REF" >/dev/null 2>&1 || true
}

main() {
  mkdir -p "$STATE_DIR"
  ensure_engine_packages
  # Emulators first: the daemon's builder lists the platforms it found when it started.
  if can_install; then ensure_emulation; fi
  ensure_daemon
  docker buildx version >/dev/null 2>&1 || die "the docker buildx plugin is missing"
  can_install || ensure_emulation
  ensure_registry
  ensure_base_image "$BUSYBOX_REF" busybox_rootfs "$BUSYBOX_UPSTREAM"
  ensure_base_image "$PYTHON_REF" python_rootfs "$PYTHON_UPSTREAM"
  verify_runs
  log "ready: registry $REGISTRY, base images $BUSYBOX_REF and $PYTHON_REF"
}

main "$@"
