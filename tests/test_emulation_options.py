"""Per-platform timeouts, the marker's per-platform expectations and ``native``: parsing and
the usage errors, without Docker (``--co`` collects without an engine)."""

from __future__ import annotations

import re

import pytest

from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform, parse_platforms_or_native
from pytest_multiarch.timeouts import PlatformSeconds

ARM64 = Platform.parse("linux/arm64")
RISCV = Platform.parse("linux/riscv64")


def test_a_default_and_platforms_own_values_used_as_given():
    seconds = PlatformSeconds.parse("30, linux/riscv64=600", "multiarch_timeout", 10)
    assert seconds.default == 30 and seconds.own == {RISCV: 600}
    assert seconds.for_platform(ARM64) == 30
    assert seconds.for_platform(ARM64.with_emulated(True)) == 150  # the default, x5 under QEMU
    assert seconds.for_platform(RISCV.with_emulated(True)) == 600  # its own: as given
    only_own = PlatformSeconds.parse("arm64=90", "multiarch_timeout", 10)
    assert only_own.default == 10 and only_own.for_platform(ARM64.with_emulated(True)) == 90
    assert PlatformSeconds.parse(None, "multiarch_timeout", 10) == PlatformSeconds(10)


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("30, linux/riscv64=soon", "'linux/riscv64=soon' is not a positive finite number of seconds"),
        ("linux/riscv64=-1", "is not a positive finite number"),
        ("nan", "is not a positive finite number"),
        ("30, linux/sparc=60", "multiarch_timeout: 'linux/sparc=60': unknown platform"),
    ],
)
def test_bad_timeouts_are_usage_errors_naming_the_entry(raw, said):
    with pytest.raises(UsageError, match=said.replace("(", r"\(").replace(")", r"\)")):
        PlatformSeconds.parse(raw, "multiarch_timeout", 30)


def test_native_may_stand_among_the_platforms():
    assert parse_platforms_or_native("native, linux/riscv64") == ([RISCV], True)
    assert parse_platforms_or_native(["linux/arm64"]) == ([ARM64], False)


def _project(pytester: pytest.Pytester, test_source: str, *ini: str) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n" + "".join(f"{i}\n" for i in ini))
    pytester.makepyfile(test_x=test_source)
    return pytester


def test_a_timeout_for_a_platform_the_configuration_does_not_name_is_a_usage_error(pytester):
    _project(pytester, "def test_x(): pass", "multiarch_timeout = 30, linux/riscv64=600")
    result = pytester.runpytest_inprocess("--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*multiarch_timeout names linux/riscv64, which the configuration does not name*"])
    # Named by the ini, tested or not in this run (a pull request's `native`): no error.
    ok = pytester.runpytest_inprocess("--co", "--multiarch-platforms=linux/amd64,linux/riscv64")
    assert ok.ret == pytest.ExitCode.OK


MARKED = """
import re

import pytest

@pytest.mark.multiarch(xfail={"linux/s390x": "known"})
def test_typo(multiarch_platform): pass
"""


def test_an_expectation_for_a_platform_nobody_configured_names_it(pytester):
    result = _project(pytester, MARKED).runpytest_inprocess("--co")
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.multiarch on test_x.py::test_typo: xfail= names linux/s390x, which the configuration*"]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error


@pytest.mark.parametrize(
    ("marker", "said"),
    [
        ("@pytest.mark.multiarch()", "test_m: give platforms=?...?, xfail={platform: reason}"),
        ('@pytest.mark.multiarch(xfial={"linux/arm64": "r"})', "unknown keyword xfial"),
        ('@pytest.mark.multiarch(skip=["linux/arm64"])', "skip= takes a dict of platform to reason"),
    ],
)
def test_a_marker_that_cannot_work_is_a_collection_error(pytester, marker, said):
    source = f"import pytest\n\n{marker}\ndef test_m(multiarch_platform): pass\n"
    result = _project(pytester, source).runpytest_inprocess("--co")
    result.stdout.fnmatch_lines([f"*{said}*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_expectations_add_up_over_module_class_and_test_the_closest_winning(pytester):
    source = """
import re

import pytest

pytestmark = pytest.mark.multiarch(xfail={"linux/arm64": "module", "linux/amd64": "module"})

@pytest.mark.multiarch(skip={"linux/amd64": "class"})
class TestC:
    @pytest.mark.multiarch(xfail={"linux/arm64": "test"}, strict=True)
    def test_m(self, multiarch_platform): pass
"""
    result = _project(pytester, source).runpytest_inprocess("--co", "-q")
    assert result.ret == pytest.ExitCode.OK
    items = {item.name: item for item in pytester.getitems(pytester.path / "test_x.py")}
    arm, amd = items["test_m[linux/arm64]"], items["test_m[linux/amd64]"]
    (xfail,) = [m for m in arm.iter_markers("xfail")]
    assert xfail.kwargs == {"reason": "linux/arm64: test", "strict": True}
    assert [m.kwargs["reason"] for m in amd.iter_markers("skip")] == ["linux/amd64: class"]
    assert [m.kwargs["reason"] for m in amd.iter_markers("xfail")] == ["linux/amd64: module"]


# -- which QEMU ----------------------------------------------------------------------------------


def _handler(folder, name: str, interpreter: str) -> None:
    (folder / f"qemu-{name}").write_text(f"enabled\ninterpreter {interpreter}\nflags: PF\noffset 0\n")


def test_the_version_is_read_from_the_handlers_interpreter_or_unknown(tmp_path):
    import shutil

    from pytest_multiarch.emulators import qemu_version

    real = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if real is None:
        pytest.skip("no QEMU installed here (scripts/setup-docker.sh installs qemu-user-static)")
    link = tmp_path / "aarch64-binfmt-P"
    link.symlink_to(real)  # as Debian's: a wrapper name that refuses to run outside binfmt_misc
    _handler(tmp_path, "aarch64", str(link))
    assert re.fullmatch(r"QEMU \d+\.\d+\.\d+( \(.+\))?", qemu_version(ARM64, tmp_path))
    # Registered from inside a container: the path exists only there.
    _handler(tmp_path, "riscv64", "/usr/bin/qemu-riscv64-from-a-container")
    assert qemu_version(RISCV, tmp_path) == "unknown"
    (tmp_path / "qemu-s390x").write_text("garbage")
    assert qemu_version(Platform.parse("linux/s390x"), tmp_path) == "unknown"
    assert qemu_version(Platform.parse("linux/ppc64le"), tmp_path) == "unknown"  # no handler at all


def test_known_crash_reports_and_the_crash_signature():
    from pytest_multiarch.emulators import crash_message, crashed, known_crash

    assert "tonistiigi/binfmt#240" in str(known_crash("QEMU 9.2.0 (binfmt)"))
    assert known_crash("QEMU 7.2.22 (Debian)") is None and known_crash("unknown") is None
    assert crashed(139, "x\nqemu: uncaught target signal 11 (Segmentation fault) - core dumped\n")
    assert crashed(134, "QEMU internal SIGABRT {code=...}")
    assert not crashed(1, "qemu: uncaught target signal 11") and not crashed(139, "Segmentation fault")
    said = crash_message(ARM64, "the container", 139, "  | QEMU internal SIGSEGV {code=MAPERR}", "QEMU 9.2.0")
    assert "died under QEMU 9.2.0 with exit code 139" in said and "'QEMU internal SIGSEGV {code=MAPERR}'" in said
    assert "known crash reports" in said and "--multiarch-engine linux/arm64=" in said
