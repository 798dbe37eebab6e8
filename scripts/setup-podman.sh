#!/usr/bin/env bash
# Podman for pytest-multiarch's own podman tests (--multiarch-runtime podman), idempotently:
#   1. podman from Debian (bookworm: 4.3.1), without recommends, when it is missing;
#   2. the local registry ($MULTIARCH_REGISTRY, plain HTTP) marked insecure for podman, under
#      both of its names (127.0.0.1:PORT and localhost:PORT);
#   3. name resolution on podman's networks (containers reach each other by name, as the
#      plugin's declared images do): with the CNI backend (bookworm's podman) that is the dnsname
#      plugin, installed when missing;
#   4. this machine type's own limit: where raising RLIMIT_NOFILE is refused, every podman
#      container fails ("error setting rlimit type 7") until containers.conf has
#      `default_ulimits = []`. Applied only when a container fails that way: the product does
#      not need it, a machine that can raise the limit is left as it is;
#   5. as root, a user for the rootless test ($MULTIARCH_ROOTLESS_USER, default
#      multiarch-rootless) with subordinate ids, uidmap and slirp4netns; and where that user's
#      containers cannot open /dev/net/tun (mode 0600 on this machine type; 0666 is Linux's
#      usual), the usual mode, applied only then;
#   6. a check: a busybox container of each platform in $MULTIARCH_BASE_PLATFORMS prints its
#      `uname -m`, then the local copy of the base image is removed again (podman keeps one
#      image per tag, whatever its architecture).
# Runs after setup-docker.sh (which brings the registry and its base images). Changes nothing
# that is already in place and says what it changes. Installing needs Debian/Ubuntu and root;
# elsewhere it says what to install and goes on without podman (the podman tests then skip).
set -euo pipefail

REGISTRY=${MULTIARCH_REGISTRY:-127.0.0.1:5000}
PLATFORMS=${MULTIARCH_BASE_PLATFORMS:-linux/amd64 linux/arm64}
BUSYBOX_REF=$REGISTRY/multiarch/busybox:1
REGISTRIES_DIR=/etc/containers/registries.conf.d
REGISTRIES_FILE=$REGISTRIES_DIR/50-pytest-multiarch-registry.conf
CONTAINERS_CONF=/etc/containers/containers.conf
ROOTLESS_USER=${MULTIARCH_ROOTLESS_USER:-multiarch-rootless}

log() { printf '[setup-podman] %s\n' "$*" >&2; }
die() { printf '[setup-podman] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

ensure_podman() {
  if have podman; then
    log "podman is installed: $(podman --version)"
    return 0
  fi
  if ! is_root || ! { [ -r /etc/debian_version ] && have apt-get; }; then
    log "podman is missing: install it (Debian/Ubuntu: \`apt-get install --no-install-recommends podman\`); the podman tests skip until then"
    return 1
  fi
  log "installing podman from Debian (apt-get install --no-install-recommends podman)"
  apt-get update -qq >/dev/null 2>&1 || log "apt-get update reported errors; continuing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >/dev/null
  log "installed $(podman --version)"
}

registry_names() { # 127.0.0.1:5000 -> "127.0.0.1:5000 localhost:5000" (and the reverse)
  local port=${REGISTRY##*:}
  case "$REGISTRY" in
    127.0.0.1:* | localhost:*) echo "127.0.0.1:$port localhost:$port" ;;
    *) echo "$REGISTRY" ;;
  esac
}

ensure_insecure_registry() {
  local name missing=()
  for name in $(registry_names); do
    if ! grep -rqs "location *= *\"$name\"" /etc/containers/registries.conf "$REGISTRIES_DIR"; then
      missing+=("$name")
    fi
  done
  [ ${#missing[@]} = 0 ] && return 0
  is_root || die "podman does not know the local registry ${missing[*]} speaks plain HTTP; as root add it to $REGISTRIES_FILE"
  mkdir -p "$REGISTRIES_DIR"
  for name in "${missing[@]}"; do
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n\n' "$name" >>"$REGISTRIES_FILE"
  done
  log "marked ${missing[*]} as plain-HTTP (insecure) registries for podman in $REGISTRIES_FILE"
}

ensure_dns() {
  local backend
  backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
  [ "$backend" = cni ] || return 0 # netavark brings aardvark-dns
  [ -x /usr/lib/cni/dnsname ] && return 0
  if ! is_root || ! have apt-get; then
    log "podman's CNI networks have no name resolution: install the dnsname CNI plugin (Debian: golang-github-containernetworking-plugin-dnsname)"
    return 0
  fi
  log "installing the dnsname CNI plugin (golang-github-containernetworking-plugin-dnsname): names on podman's networks"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    golang-github-containernetworking-plugin-dnsname >/dev/null
}

run_uname() { # PLATFORM -> uname -m of a busybox container of that platform (its output on failure)
  podman run --rm --platform "$1" "$BUSYBOX_REF" uname -m 2>&1
}

ensure_ulimits() {
  local out
  if out=$(run_uname "$(set -- $PLATFORMS; echo "$1")"); then return 0; fi
  case "$out" in
    *"error setting rlimit"*) ;;
    *) return 0 ;; # another problem: the check below names it
  esac
  is_root || die "podman containers fail to raise RLIMIT_NOFILE here; as root set default_ulimits = [] in $CONTAINERS_CONF"
  if grep -qs '^[[:space:]]*default_ulimits' "$CONTAINERS_CONF"; then
    die "podman containers fail to raise RLIMIT_NOFILE, and $CONTAINERS_CONF already sets default_ulimits: check it"
  fi
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  if grep -qs '^\[containers\]' "$CONTAINERS_CONF"; then
    sed -i 's/^\[containers\][[:space:]]*$/&\ndefault_ulimits = []/' "$CONTAINERS_CONF"
  else
    printf '[containers]\ndefault_ulimits = []\n' >>"$CONTAINERS_CONF"
  fi
  log "this machine refuses to raise RLIMIT_NOFILE: set default_ulimits = [] under [containers] in $CONTAINERS_CONF"
}

as_rootless() { # COMMAND...: run it as the rootless user, in a runtime dir of its own
  local uid dir
  uid=$(id -u "$ROOTLESS_USER")
  dir=$(mktemp -d)
  chown "$ROOTLESS_USER" "$dir"
  (cd / && runuser -u "$ROOTLESS_USER" -- env HOME="$(getent passwd "$ROOTLESS_USER" | cut -d: -f6)" XDG_RUNTIME_DIR="$dir" "$@") 2>&1
  local rc=$?
  # Ends the user's podman pause process, whose state lived in that runtime dir.
  runuser -u "$ROOTLESS_USER" -- env XDG_RUNTIME_DIR="$dir" podman system migrate >/dev/null 2>&1 || true
  rm -rf "$dir"
  return $rc
}

ensure_rootless_user() {
  is_root && have apt-get || return 0
  local packages=() start out
  have newuidmap || packages+=(uidmap)
  have slirp4netns || packages+=(slirp4netns)
  if [ ${#packages[@]} -gt 0 ]; then
    log "installing ${packages[*]} (rootless podman, for the rootless test)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
  if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$ROOTLESS_USER"
    log "created user $ROOTLESS_USER for the rootless podman test"
  fi
  if ! grep -qs "^$ROOTLESS_USER:" /etc/subuid || ! grep -qs "^$ROOTLESS_USER:" /etc/subgid; then
    start=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: '{ e = $2 + $3; if (e > m) m = e } END { print (m > 100000 ? m : 100000) }')
    usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$ROOTLESS_USER"
    log "gave $ROOTLESS_USER subordinate uids and gids $start-$((start + 65535))"
  fi
  out=$(as_rootless podman run --rm "$BUSYBOX_REF" true) && return 0
  case "$out" in
    *"/dev/net/tun"*"Permission denied"*)
      log "rootless containers cannot open /dev/net/tun (mode $(stat -c %a /dev/net/tun)): setting it to 0666, Linux's usual"
      chmod 0666 /dev/net/tun
      ;;
    *) die "a rootless podman container fails as $ROOTLESS_USER: ${out##*$'\n'}" ;;
  esac
  out=$(as_rootless podman run --rm "$BUSYBOX_REF" true) || die "a rootless podman container fails as $ROOTLESS_USER: ${out##*$'\n'}"
}

verify_runs() {
  local p machine ids=()
  for p in $PLATFORMS; do
    machine=$(run_uname "$p") || die "cannot run a $p podman container: $machine"
    log "$p podman container runs (uname -m: ${machine##*$'\n'})"
    ids+=("$(podman image inspect --format '{{.Id}}' "$BUSYBOX_REF")")
  done
  # One local image per tag, whatever its architecture (each pull above untagged the one
  # before): remove them all, so that none shadows the registry's index.
  podman image rm --force "${ids[@]}" >/dev/null 2>&1 || true
}

main() {
  ensure_podman || return 0
  ensure_insecure_registry
  ensure_dns
  ensure_ulimits
  ensure_rootless_user
  verify_runs
  log "ready: $(podman --version), registry $REGISTRY"
}

main "$@"
