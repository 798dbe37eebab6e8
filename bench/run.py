"""Benchmark pytest-multiarch against the hand-written per-platform script (bench/plain_script.sh).

Run after the README's set-up, from the repository root:

    .venv/bin/python bench/run.py            # --pairs 3 by default; --quick for a smoke run
    .venv/bin/python bench/run.py --only warm,cold   # some scenarios only

Scenarios (medians over --pairs rounds; in a/b the plugin, the script and both floors run once
per round, in the orders of a balanced Latin square, see rounds()):
  a. cold: no image of the example, empty build cache; the example's tests on amd64 + arm64
     vs. the script doing the same checks;
  b. warm (nothing changed), the same pair; and the plugin with --multiarch-reuse;
  c. 10, 100 and 1000 trivial tests per platform against the session container;
  d. cold with 1, 2 and 3 platforms (amd64, arm64, arm/v7);
  e. -n 2 (also scheduled by platform) vs -n 0 (cold), counting the builds that really ran;
  early. the plugin with its early start (the record of the last run of the same command exists)
     vs. without it (the record directory removed before each run): warm, cold, warm with
     --multiarch-reuse, warm with -n 2, and warm with a test module taking 2 s to import.
For a and b it also measures the lowest time any pytest run of these tests could take (see the
table's note), so that a ratio can be judged against what is possible on the machine. "Cold"
removes images and build cache, not the plugin's record of what the same command needed last
time (see early.py): a developer's machine has it, a fresh CI machine does not.
Writes bench/results/results.json and bench/results/results.md, and prints the table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
REGISTRY = os.environ.get("MULTIARCH_REGISTRY", "127.0.0.1:5000")
BASE = f"{REGISTRY}/multiarch/python:3"
TWO = ["linux/amd64", "linux/arm64"]
THREE = [*TWO, "linux/arm/v7"]


def sh(*cmd: str, check: bool = True, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise SystemExit(
            f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def reset_cold() -> None:
    """No image of the example (plugin's or script's), no build cache, no reuse containers."""
    containers = sh("docker", "ps", "-aq", "--filter", "label=io.github.pytest-multiarch.reuse-slot").split()
    if containers:  # another run on the machine may be removing some of them right now
        sh("docker", "rm", "-f", *containers, check=False)
    images = sh("docker", "image", "ls", "-q", "--filter", "label=io.github.pytest-multiarch.slot").split()
    images += sh("docker", "image", "ls", "-q", "bench-script/example").split()
    if images:
        sh("docker", "image", "rm", "-f", *sorted(set(images)), check=False)
    sh("docker", "builder", "prune", "-af")


def pytest_in_example(*args: str, tests: list[str] | None = None, folder: Path = EXAMPLE) -> None:
    """pytest on the example project (or a copy in ``folder``), as a user runs it there."""
    sh(
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"),
        *("-c", str(folder / "pytest.ini"), "--rootdir", str(folder)),
        *args,
        *(tests or [str(folder / "tests")]),
        cwd=folder,
    )


def plugin(platforms: list[str], *extra: str, tests: list[str] | None = None) -> None:
    pytest_in_example(
        f"--multiarch-build-arg=BASE_IMAGE={BASE}", f"--multiarch-platforms={','.join(platforms)}", *extra, tests=tests
    )


def script(platforms: list[str], skip_build: bool = False) -> None:
    env = {**os.environ, "SKIP_BUILD": "1"} if skip_build else None
    sh("bash", str(ROOT / "bench" / "plain_script.sh"), str(EXAMPLE), BASE, *platforms, env=env)


def script_at_once(platforms: list[str], skip_build: bool = False) -> None:
    """The script once per platform, all at the same time: what running the platforms in parallel
    gains on this machine, with no Python, no pytest and no plugin in the way."""
    env = {**os.environ, "SKIP_BUILD": "1"} if skip_build else None
    commands = [
        ["bash", str(ROOT / "bench" / "plain_script.sh"), str(EXAMPLE), BASE, platform] for platform in platforms
    ]
    runs = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    outputs = [run.communicate()[0] for run in runs]
    for command, run, out in zip(commands, runs, outputs, strict=True):
        if run.returncode != 0:
            raise SystemExit(f"command failed ({run.returncode}): {' '.join(command)}\n{out[-3000:]}")


def bare_pytest() -> None:
    """pytest starting, collecting the example and exiting, without the plugin."""
    pytest_in_example("-p", "no:multiarch", "--co")


def tests_own_seconds(folder: Path) -> float:
    """The example's tests' own run time (call phases only), with containers reused."""
    report = folder / "own.xml"
    plugin(TWO, "--multiarch-reuse", f"--junitxml={report}", "-o", "junit_duration_report=call")
    return sum(float(case.get("time", 0)) for case in ET.parse(report).iter("testcase"))


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def rounds(n: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each side once per round, in the orders of a balanced Latin square (Williams design: for
    four sides ABDC, BCAD, CDBA, DACB): over the rounds each side comes first as often as the
    others and follows every other side as often. A side can leave the engine busy for the
    next one (a build's exports, a removal's network teardown): with a plain rotation (ABCD,
    BCDA, ...) each side would always follow the same other side and carry its leftovers."""
    names = list(sides)
    count = len(names)
    first = [0]
    for step in range(1, count):
        first.append((step + 1) // 2 if step % 2 else count - step // 2)
    measured: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        order = [(index + i) % count for index in first]
        if count % 2 and (i // count) % 2:
            order.reverse()  # an odd count needs the mirrored square too for balance
        for index in order:
            measured[names[index]].append(sides[names[index]]())
    return measured


def pairs(n: int, first: Callable[[], float], second: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Alternate the sides: AB BA AB ... so that drift on the machine hits both alike."""
    measured = rounds(n, {"first": first, "second": second})
    return measured["first"], measured["second"]


def cold(run: Callable[[], None]) -> float:
    reset_cold()
    return timed(run)


def many_tests(count: int, folder: Path) -> str:
    path = folder / f"test_many_{count}.py"
    body = "\n".join(
        f"def test_{i}(multiarch_container):\n    assert multiarch_container.base_url\n" for i in range(count)
    )
    path.write_text(body)
    return str(path)


def count_builds(workers: str) -> tuple[float, int]:
    """Cold run of the example; returns (seconds, builds that ran). Every build loads an image
    with a new id (a rebuild of the same key leaves the older one dangling), so the images
    labelled by the plugin after a cold start count the builds, whichever process ran them."""
    extra = ["-p", "xdist", "-n", workers.split()[0]] if workers != "0" else []
    if workers.endswith("by platform"):
        extra += ["-p", "pytest_multiarch.xdist_scheduling"]
    reset_cold()
    seconds = timed(lambda: plugin(TWO, *extra))
    images = sh("docker", "image", "ls", "-a", "-q", "--no-trunc", "--filter", "label=io.github.pytest-multiarch.slot")
    return seconds, len(set(images.split()))


def early_records() -> Path:
    """Where the plugin keeps its early-start records (see early.py)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "pytest-multiarch" / "early"


def slow_collection(folder: Path) -> str:
    """A test module whose import takes 2 s: collection takes 2 s more."""
    path = folder / "test_slow_collection.py"
    path.write_text(
        "import time\n\ntime.sleep(2)\n\n\n"
        "def test_collected_slowly(multiarch_container):\n    assert multiarch_container.base_url\n"
    )
    return str(path)


def early_start(n: int, work: Path) -> dict[str, dict[str, Any]]:
    """The plugin with early start (the record of the same command's last run kept) vs without
    (the record directory removed right before each run), alternating within each pair."""
    slow = [str(EXAMPLE / "tests"), slow_collection(work)]
    warm_cases: dict[str, tuple[list[str], list[str] | None]] = {
        "warm": ([], None),
        "warm_xdist": (["-p", "xdist", "-n", "2"], None),
        "warm_slow_collection": ([], slow),
        "warm_reuse": (["--multiarch-reuse"], None),  # last of the warm ones: cold removes its containers
    }

    def without(run: Callable[[], None], reset: Callable[[], None] | None = None) -> float:
        if reset is not None:
            reset()
        shutil.rmtree(early_records(), ignore_errors=True)
        return timed(run)

    def with_record(run: Callable[[], None], reset: Callable[[], None] | None = None) -> float:
        if reset is not None:
            reset()
        if not any(early_records().glob("*.json")):
            raise SystemExit(f"no early-start record in {early_records()}: the plugin keeps them elsewhere?")
        return timed(run)

    measured: dict[str, tuple[list[float], list[float]]] = {}
    for case, (extra, tests) in warm_cases.items():
        print(f"  early start, {case}", flush=True)
        run = functools.partial(plugin, TWO, *extra, tests=tests)
        run()  # warm, and the record of this command exists (reuse: its containers are left running)
        measured[case] = pairs(n, functools.partial(with_record, run), functools.partial(without, run))
    print("  early start, cold", flush=True)
    run = functools.partial(plugin, TWO)
    run()  # the record of this command exists; cold() removes images and build cache, not it
    measured["cold"] = pairs(n, lambda: with_record(run, reset_cold), lambda: without(run, reset_cold))
    order = ("warm", "cold", "warm_reuse", "warm_xdist", "warm_slow_collection")
    return {
        case: {
            "with": median(measured[case][0]),
            "without": median(measured[case][1]),
            "gain_percent": round(
                (statistics.median(measured[case][1]) - statistics.median(measured[case][0]))
                / statistics.median(measured[case][1])
                * 100,
                1,
            ),
            "raw": [measured[case][0], measured[case][1]],
        }
        for case in order
    }


SCENARIOS = ("cold", "warm", "tests", "platforms", "xdist", "early", "bigcontext", "archcheck")


def big_context(n: int, work: Path) -> dict[str, Any]:
    """The example with a 20,000-file / ~300 MB node_modules in its context and no .dockerignore
    for it (a common sight), warm, amd64 + arm64: the plugin vs the plain script, the plugin on
    the example's small context, and the context digest alone (context.py), with a warm page
    cache and, where this machine lets root drop it, a cold one."""
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.context import context_digest

    big = work / "big-example"
    shutil.rmtree(big, ignore_errors=True)
    shutil.copytree(EXAMPLE, big, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    (big / ".dockerignore").write_text("tests\n")  # the example's own, without any node_modules rule
    for package in range(200):
        folder = big / "node_modules" / f"pkg{package}" / "lib"
        folder.mkdir(parents=True)
        for index in range(100):
            (folder / f"f{index}.js").write_bytes(os.urandom(15_000))

    def on_big() -> None:
        pytest_in_example(
            f"--multiarch-build-arg=BASE_IMAGE={BASE}", f"--multiarch-platforms={','.join(TWO)}", folder=big
        )

    def script_big() -> None:
        sh("bash", str(ROOT / "bench" / "plain_script.sh"), str(big), BASE, *TWO)

    on_big()  # warm both sides
    script_big()
    plugin_runs, script_runs = pairs(n, lambda: timed(on_big), lambda: timed(script_big))
    small = median([timed(lambda: plugin(TWO)) for _ in range(n)])
    spec = ImageSpec(name="", context=big, dockerfile=big / "Dockerfile")
    index_dir = work / "context-index"
    context_digest(spec, index_dir)  # the index exists, as after any run
    warm_key = median([timed(lambda: context_digest(spec, index_dir)) for _ in range(n)])
    changed = big / "node_modules" / "pkg7" / "lib" / "f7.js"

    def one_file_changed() -> float:
        changed.write_bytes(os.urandom(15_000))  # a new content: its digest must be read anew
        return timed(lambda: context_digest(spec, index_dir))

    changed_key = median([one_file_changed() for _ in range(n)])
    cold_key: float | None = None
    try:
        cold = []
        for _ in range(n):
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            cold.append(timed(lambda: context_digest(spec, index_dir)))
        cold_key = median(cold)
    except OSError:
        pass  # not root, or a container that may not drop the host's caches
    shutil.rmtree(big, ignore_errors=True)
    return {
        "plugin": median(plugin_runs),
        "script": median(script_runs),
        "ratio": round(median(plugin_runs) / median(script_runs), 2),
        "plugin_small_context": small,
        "key_warm_cache": round(warm_key, 3),
        "key_one_file_changed": round(changed_key, 3),
        "key_cold_cache": round(cold_key, 3) if cold_key is not None else None,
        "raw": [plugin_runs, script_runs],
    }


def arch_check(n: int, work: Path) -> dict[str, Any]:
    """The architecture check (imagefiles.py) on a ~300 MB, ~20,000-file image per platform: the
    Python base image (5,800 files, 740 ELF files) with 14,000 more files of 11 KB. Cold: no
    verdict cached, read from the engine's layer directories (this machine's engine) and from
    its export (any other engine); warm: the verdict of the same image id, from the cache."""
    from pytest_multiarch.engine import Engine

    context = work / "arch-image"
    shutil.rmtree(context, ignore_errors=True)
    for package in range(140):
        folder = context / "node_modules" / f"pkg{package}"
        folder.mkdir(parents=True)
        for index in range(100):
            (folder / f"f{index}.js").write_bytes(os.urandom(11_000))
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY node_modules /app/node_modules\n")
    engine = Engine.default(container_host=None, builder=None, cache_dir=None)
    results = {name: _arch_check_on(name, n, work, engine, context) for name in TWO}
    engine.close()
    shutil.rmtree(context, ignore_errors=True)
    return results


def _arch_check_on(name: str, n: int, work: Path, engine: Any, context: Path) -> dict[str, Any]:
    import docker

    from pytest_multiarch.build import BuiltImage, ImageConfig
    from pytest_multiarch.imagefiles import _exported, arch_report, read_rootfs
    from pytest_multiarch.platforms import Platform

    target = Platform.parse(name)
    tag = f"pytest-multiarch-bench/arch:{target.slug}"
    sh("docker", "buildx", "build", "-q", "--platform", name, "--load", "-t", tag,
       "--build-arg", f"BASE_IMAGE={BASE}", str(context))  # fmt: skip
    found = docker.from_env().images.get(tag)
    image = BuiltImage(tag, str(found.id), target, "", False, 0.0, config=ImageConfig.of(found.attrs.get("Config")))
    fs = read_rootfs(engine, image.id)

    def files() -> Any:
        return read_rootfs(engine, image.id)

    caches = [work / f"arch-cache-{target.slug}-{i}" for i in range(n)]
    cold = [timed(functools.partial(arch_report, image, files, cache)) for cache in caches]
    exported = [timed(lambda: _exported(engine, image.id)) for _ in range(n)]
    warm = [timed(functools.partial(arch_report, image, files, caches[0])) for _ in range(n)]
    sh("docker", "image", "rm", tag)
    return {
        "files": len(fs),
        "elf_files": sum(1 for _ in fs.elf_files()),
        "megabytes": round(int(found.attrs.get("Size") or 0) / 1e6),
        "cold_layers": round(median(cold), 3),
        "cold_export": round(median(exported), 3),
        "warm": round(median(warm), 4),
        "raw": [cold, exported, warm],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one pair, fewer tests: a smoke run")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated scenarios to run (default: all of {SCENARIOS})"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    opts = parser.parse_args()
    only = [name.strip() for name in opts.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    n = 1 if opts.quick else opts.pairs
    sizes = [10, 100] if opts.quick else [10, 100, 1000]
    # The third platform of (d) needs the python base image for linux/arm/v7 too.
    sh("bash", "scripts/setup-docker.sh", env={**os.environ, "MULTIARCH_BASE_PLATFORMS": " ".join(THREE)})
    # The plugin's bytecode, as pip writes it when it installs the wheel. In a checkout, with
    # PYTHONDONTWRITEBYTECODE set (as on the project's VMs), Python would otherwise compile every
    # module from source on every run: 0.04 s a run that no installed copy pays.
    sh(sys.executable, "-m", "compileall", "-q", str(ROOT / "pytest_multiarch"))
    results: dict[str, Any] = {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, "
        f"docker {sh('docker', 'version', '--format', '{{.Server.Version}}').strip()}",
        "pairs": n,
    }
    work = Path(tempfile.mkdtemp(prefix="multiarch-bench-"))

    def ratio_of(plugin_runs: list[float], script_runs: list[float]) -> dict[str, Any]:
        return {
            "plugin": median(plugin_runs),
            "script": median(script_runs),
            "ratio": round(median(plugin_runs) / median(script_runs), 2),
            "raw": [plugin_runs, script_runs],
        }

    # Lowest possible: what any run of these tests under pytest (without xdist) must pay at least.
    slowest = ["linux/arm64"]  # the emulated platform: its build, start and checks take longest
    if {"cold", "warm"} & set(only):
        bare = median([timed(bare_pytest) for _ in range(n)])
        results["pytest_startup"] = bare
    if "cold" in only:
        print("a. cold", flush=True)
        # The plugin, the script, and the two floors without pytest: the slowest platform done by
        # hand with nothing else going on, and every platform by hand at the same time.
        cold_runs = rounds(
            n,
            {
                "plugin": lambda: cold(lambda: plugin(TWO)),
                "script": lambda: cold(lambda: script(TWO)),
                "floor": lambda: cold(lambda: script(slowest)),
                "at_once": lambda: cold(lambda: script_at_once(TWO)),
            },
        )
        results["cold"] = ratio_of(cold_runs["plugin"], cold_runs["script"])
        results["cold"]["floor"] = round(bare + median(cold_runs["floor"]), 2)
        results["cold"]["at_once"] = round(bare + median(cold_runs["at_once"]), 2)
    if "warm" in only:
        print("b. warm", flush=True)
        plugin(TWO)  # make sure both sides are warm
        script(TWO)
        # The floors without their buildx calls, which an unchanged image does not need.
        warm_runs = rounds(
            n,
            {
                "plugin": lambda: timed(lambda: plugin(TWO)),
                "script": lambda: timed(lambda: script(TWO)),
                "floor": lambda: timed(lambda: script(slowest, skip_build=True)),
                "at_once": lambda: timed(lambda: script_at_once(TWO, skip_build=True)),
            },
        )
        results["warm"] = ratio_of(warm_runs["plugin"], warm_runs["script"])
        results["warm"]["floor"] = round(bare + median(warm_runs["floor"]), 2)
        results["warm"]["at_once"] = round(bare + median(warm_runs["at_once"]), 2)
        plugin(TWO, "--multiarch-reuse")  # leaves the containers running
        results["warm_reuse"] = ratio_of(
            *pairs(n, lambda: timed(lambda: plugin(TWO, "--multiarch-reuse")), lambda: timed(lambda: script(TWO)))
        )
        # pytest, plus the tests' own time: nothing is built or started
        own = median([tests_own_seconds(work) for _ in range(n)])
        results["tests_own_seconds"] = round(own, 2)
        results["warm_reuse"]["floor"] = round(bare + own, 2)
        reset_cold()  # removes the reuse containers
    for key in ("cold", "warm", "warm_reuse"):
        if key in results and "floor" in results[key]:
            entry = results[key]
            entry["floor_ratio"] = round(entry["floor"] / entry["script"], 2)
            if "at_once" in entry:
                entry["at_once_ratio"] = round(entry["at_once"] / entry["script"], 2)
    if "tests" in only:
        print("c. per-test overhead", flush=True)
        plugin(TWO, "--multiarch-reuse")
        per_size = {}
        for size in sizes:
            tests = many_tests(size, work)
            per_size[size] = median(
                [timed(functools.partial(plugin, TWO, "--multiarch-reuse", tests=[tests])) for _ in range(n)]
            )
        low, high = sizes[0], sizes[-1]
        results["tests_per_platform"] = {str(k): v for k, v in per_size.items()}
        results["overhead_ms_per_test"] = round((per_size[high] - per_size[low]) / ((high - low) * len(TWO)) * 1000, 2)
        reset_cold()
    if "platforms" in only:
        print("d. platforms", flush=True)
        results["cold_by_platform_count"] = {
            str(len(p)): median([cold(functools.partial(plugin, p, "-k", "not arm64_only")) for _ in range(n)])
            for p in (TWO[:1], TWO, THREE)
        }
    if "xdist" in only:
        print("e. xdist", flush=True)
        variants = ("0", "2", "2 by platform")
        xdist: dict[str, list[tuple[float, int]]] = {w: [] for w in variants}
        for _ in range(n):  # interleaved, so that drift on the machine hits all alike
            for w in variants:
                xdist[w].append(count_builds(w))
        results["xdist"] = {
            w: {"seconds": median([s for s, _ in runs]), "max_builds": max(b for _, b in runs)}
            for w, runs in xdist.items()
        }
    if "bigcontext" in only:
        print("big context", flush=True)
        results["bigcontext"] = big_context(n, work)
    if "archcheck" in only:
        print("architecture check", flush=True)
        results["archcheck"] = arch_check(n, work)
    if "early" in only:
        print("early start", flush=True)
        results["early"] = early_start(n, work)
    reset_cold()

    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (opts.out / "results.md").write_text(table)
    print(table)
    shutil.rmtree(work, ignore_errors=True)


def big_context_markdown(r: dict) -> list[str]:
    b = r["bigcontext"]
    cold = b["key_cold_cache"] if b["key_cold_cache"] is not None else "not measured (page cache not droppable)"
    return [
        "",
        "| big context (20,000 files, ~300 MB), warm, amd64 + arm64 | seconds |",
        "|---|---|",
        f"| plugin / plain script (ratio; target ≤ 0.75) | {b['plugin']} / {b['script']} ({b['ratio']}) |",
        f"| plugin on the small context (target: big ≤ small + 0.3) | {b['plugin_small_context']} |",
        f"| context digest alone, warm page cache (target ≤ 0.3) | {b['key_warm_cache']} |",
        f"| context digest alone, cold page cache | {cold} |",
        f"| context digest after a one-file change (warm page cache) | {b.get('key_one_file_changed', '-')} |",
    ]


def arch_check_markdown(r: dict) -> list[str]:
    lines = [
        "",
        "| architecture check, per platform | files (ELF) | MB | cold, layer dirs (≤ 0.5) | cold, export "
        "| warm (≤ 0.02) |",
        "|---|---|---|---|---|---|",
    ]
    for name, a in r["archcheck"].items():
        lines.append(
            f"| {name} | {a['files']} ({a['elf_files']}) | {a['megabytes']} | {a['cold_layers']} | "
            f"{a['cold_export']} | {a['warm']} |"
        )
    return lines


def markdown(r: dict) -> str:
    def row(name: str, key: str, target: str) -> str:
        e = r[key]
        floor = f"{e['floor']} ({e['floor_ratio']})" if "floor" in e else "-"
        at_once = f"{e['at_once']} ({e['at_once_ratio']})" if "at_once" in e else "-"
        return f"| {name} | {e['plugin']} | {e['script']} | {e['ratio']} | {target} | {floor} | {at_once} |"

    rows = [f"Measured on {r['machine']}; medians of {r['pairs']} rounds, sides in balanced order, seconds.", ""]
    compared = [
        ("a. cold, amd64 + arm64", "cold", "≤ 0.75"),
        ("b. warm, nothing changed", "warm", "≤ 0.6"),
        ("b. warm, `--multiarch-reuse`", "warm_reuse", "≤ 0.3"),
    ]
    if any(key in r for _, key, _ in compared):
        rows += [
            "| scenario | pytest-multiarch | plain script | ratio | target | lowest possible (ratio) "
            "| platforms at once by hand (ratio) |",
            "|---|---|---|---|---|---|---|",
        ]
        rows += [row(name, key, target) for name, key, target in compared if key in r]
        if "pytest_startup" in r:
            rows += [
                "",
                f"Lowest possible: pytest starting and exiting ({r['pytest_startup']} s), plus, cold and warm, "
                "the script doing only linux/arm64 (the slowest platform; warm without its buildx call, "
                "which an unchanged image does not need), and with reuse the tests' own run time"
                + (f" ({r['tests_own_seconds']} s)" if "tests_own_seconds" in r else "")
                + ". Tests under pytest run one at a time, so no plugin gets below these without xdist. "
                "Platforms at once by hand: pytest starting and exiting, plus one script per platform, all "
                "started together (warm without their buildx calls): the parallel speed-up this machine "
                "allows when nothing else, no Python and no plugin, is in the way.",
            ]
        rows.append("")
    if "tests_per_platform" in r:
        sizes = r["tests_per_platform"]
        rows += [
            "| trivial tests per platform | " + " | ".join(sizes) + " | overhead per test |",
            "|---|" + "---|" * (len(sizes) + 1),
            "| seconds (reused containers) | "
            + " | ".join(str(v) for v in sizes.values())
            + f" | {r['overhead_ms_per_test']} ms (target ≤ 5 ms) |",
            "",
        ]
    if "cold_by_platform_count" in r:
        counts = r["cold_by_platform_count"]
        rows += [
            "| cold, platforms | " + " | ".join(counts) + " |",
            "|---|" + "---|" * len(counts),
            "| seconds | " + " | ".join(str(v) for v in counts.values()) + " |",
            "",
        ]
    if "xdist" in r:
        rows += ["| cold, pytest-xdist | seconds | builds that ran (2 platforms; most in any run) |", "|---|---|---|"]
        for workers, data in r["xdist"].items():
            name = f"`-n {workers.split()[0]}`" + (", `-p pytest_multiarch.xdist_scheduling`" if " " in workers else "")
            rows.append(f"| {name} | {data['seconds']} | {data['max_builds']} |")
        rows.append("")
    if "early" in r:
        names = {
            "warm": "warm, nothing changed",
            "cold": "cold (images and build cache removed, record kept)",
            "warm_reuse": "warm, `--multiarch-reuse`",
            "warm_xdist": "warm, `-n 2`",
            "warm_slow_collection": "warm, collection 2 s longer",
        }
        rows += [
            "| early start, amd64 + arm64 | with (s) | without (s) | gain |",
            "|---|---|---|---|",
        ]
        for case, data in r["early"].items():
            rows.append(f"| {names.get(case, case)} | {data['with']} | {data['without']} | {data['gain_percent']} % |")
        rows += [
            "",
            "Gain: (without - with) / without. Without: no record of the last run of the same command "
            "(its directory removed before each run); with: the record kept.",
        ]
    if "bigcontext" in r:
        rows += big_context_markdown(r)
    if "archcheck" in r:
        rows += arch_check_markdown(r)
    return "\n".join(rows).rstrip() + "\n"


if __name__ == "__main__":
    main()
