#!/usr/bin/env bash
# The package as users get it: build the sdist and, from it, the wheel (python -m build), check
# what the wheel holds (every module, py.typed, the licence text, the version, the pytest entry
# point), install it with its dependencies into a clean virtualenv (no checkout on sys.path, no
# test extras) and run the example project's Docker-backed tests with it on linux/amd64 and
# linux/arm64. So a file that the packaging leaves out fails here, not only for users.
# scripts/run-tests.sh runs it after the suite under CI=true (or MULTIARCH_WHEEL_CHECK=1); it
# needs what scripts/setup.sh set up (.venv with the test extras, Docker, the local registry).
# Extra arguments go to the example's pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REGISTRY=${MULTIARCH_REGISTRY:-127.0.0.1:5000}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pytest-multiarch-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log() { printf '[wheel-check] %s\n' "$*" >&2; }
die() { printf '[wheel-check] FAILED: %s\n' "$*" >&2; exit 1; }

log "building the sdist and, from it, the wheel"
.venv/bin/python -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 \
  || { tail -n 30 "$WORK/build.log" >&2; die "python -m build failed (log above)"; }
shopt -s nullglob
wheels=("$WORK"/dist/pytest_multiarch-*.whl)
shopt -u nullglob
[ "${#wheels[@]}" = 1 ] || die "expected one wheel in $WORK/dist, found ${#wheels[@]}"
wheel=${wheels[0]}

log "checking the contents of $(basename "$wheel")"
.venv/bin/python - "$wheel" <<'PY'
import ast
import sys
import zipfile
from pathlib import Path

wheel = zipfile.ZipFile(sys.argv[1])
names = set(wheel.namelist())
problems = []
package = Path("pytest_multiarch")
for path in sorted(package.rglob("*")):
    if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
        if path.as_posix() not in names:
            problems.append(f"{path} is missing")
if "pytest_multiarch/py.typed" not in names:
    problems.append("pytest_multiarch/py.typed is missing (the package declares itself typed)")
tree = ast.parse((package / "__init__.py").read_text())
version = next(
    node.value.value
    for node in tree.body
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets)
)
dist_info = f"pytest_multiarch-{version}.dist-info"
licence = f"{dist_info}/licenses/LICENSE"
if licence not in names:
    problems.append(f"{licence} is missing (found: {sorted(n for n in names if 'LICEN' in n.upper())})")
elif wheel.read(licence) != Path("LICENSE").read_bytes():
    problems.append(f"{licence} differs from LICENSE")
metadata = wheel.read(f"{dist_info}/METADATA").decode() if f"{dist_info}/METADATA" in names else ""
for line in (f"Version: {version}", "License-Expression: MIT", "Project-URL: "):
    if line not in metadata:
        problems.append(f"METADATA lacks {line!r}")
entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode() if f"{dist_info}/entry_points.txt" in names else ""
if "multiarch = pytest_multiarch.plugin" not in entry_points:
    problems.append("entry_points.txt lacks the pytest11 entry point 'multiarch = pytest_multiarch.plugin'")
if problems:
    sys.exit("\n".join(f"  {p}" for p in problems))
print(f"[wheel-check] {len(names)} files: all of {package}/, LICENSE, version {version}, the entry point")
PY

log "installing it into a clean virtualenv"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" \
  || die "pip install of the wheel failed"
cd example_project
# Imported from the virtualenv's site-packages, not from this checkout.
where=$(env -u PYTHONPATH "$WORK/venv/bin/python" -c 'import pytest_multiarch; print(pytest_multiarch.__file__)')
case "$where" in
  "$WORK"/venv/*) log "pytest_multiarch imported from $where" ;;
  *) die "pytest_multiarch was imported from $where, not from the wheel" ;;
esac

log "running the example project's tests with the installed wheel"
status=0
env -u PYTHONPATH "$WORK/venv/bin/python" -m pytest -v -p no:cacheprovider \
  --multiarch-build-arg "BASE_IMAGE=$REGISTRY/multiarch/python:3" "$@" >"$WORK/example.log" 2>&1 || status=$?
if [ "$status" != 0 ]; then
  cat "$WORK/example.log" >&2
  die "the example project's tests failed with the wheel (exit $status)"
fi
sed -n '/= multiarch summary =/,$p' "$WORK/example.log" >&2
for platform in linux/amd64 linux/arm64; do
  grep -q "test_root_reports_the_platforms_cpu\[$platform\] PASSED" "$WORK/example.log" \
    || { cat "$WORK/example.log" >&2; die "no test passed on $platform"; }
done
grep -Eq "^=+ 9 passed(, [0-9]+ warnings?)? in " "$WORK/example.log" \
  || { cat "$WORK/example.log" >&2; die "expected exactly 9 passed (no skips, no errors)"; }
log "ok: the wheel installs and its plugin passes the example project on linux/amd64 and linux/arm64"
