"""Platform strings: parsing and Docker's normalization (pure logic)."""

import pytest

from pytest_multiarch import Platform, UsageError
from pytest_multiarch.platforms import parse_platforms, split_list


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("amd64", "linux/amd64"),
        ("x86_64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("arm", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("i386", "linux/386"),
        ("linux/386", "linux/386"),
        ("ppc64le", "linux/ppc64le"),
        ("s390x", "linux/s390x"),
        ("riscv64", "linux/riscv64"),
        (" Linux/AMD64 ", "linux/amd64"),
    ],
)
def test_normalizes_as_docker_does(text, expected):
    assert str(Platform.parse(text)) == expected


@pytest.mark.parametrize(
    ("text", "arch", "variant", "machine"),
    [
        ("linux/amd64", "amd64", None, "x86_64"),
        ("linux/arm64", "arm64", None, "aarch64"),
        ("linux/arm/v7", "arm", "v7", "armv7l"),
        ("linux/386", "386", None, "i686"),
        ("linux/ppc64le", "ppc64le", None, "ppc64le"),
        ("linux/s390x", "s390x", None, "s390x"),
        ("linux/riscv64", "riscv64", None, "riscv64"),
    ],
)
def test_attributes(text, arch, variant, machine):
    platform = Platform.parse(text)
    assert (platform.os, platform.arch, platform.variant, platform.machine) == ("linux", arch, variant, machine)
    assert platform.emulated is False


@pytest.mark.parametrize(
    "text",
    [
        "linux/arm65",
        "sparc",
        "windows/amd64",
        "linux/arm64/v9",
        "",
        "linux//arm64",
        "linux/arm/v8",
        "a/b/c/d",
        "arm64/v8",
    ],
)
def test_unknown_platform_is_a_usage_error_naming_it(text):
    with pytest.raises(UsageError) as err:
        Platform.parse(text)
    assert repr(text.strip()) in str(err.value)


def test_emulated_does_not_change_equality():
    assert Platform.parse("arm64").with_emulated(True) == Platform.parse("linux/arm64")
    assert hash(Platform.parse("arm64").with_emulated(True)) == hash(Platform.parse("linux/arm64"))


def test_list_splits_on_commas_spaces_newlines_and_drops_duplicates():
    assert [str(p) for p in parse_platforms("linux/amd64, arm64\nlinux/arm64/v8  linux/arm")] == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
    ]
    assert split_list(["a,b", "c"]) == ["a", "b", "c"]


def test_386_accepts_a_64_bit_kernels_answer():
    assert "x86_64" in Platform.parse("linux/386").machines
    assert Platform.parse("linux/amd64").machines == ("x86_64",)


def test_a_list_may_hold_platform_objects():
    assert parse_platforms(Platform.parse("arm64")) == [Platform.parse("linux/arm64")]
    assert parse_platforms([Platform.parse("arm64"), "linux/amd64"]) == [
        Platform.parse("linux/arm64"),
        Platform.parse("linux/amd64"),
    ]


@pytest.mark.parametrize(("value", "named"), [(123, "got int 123"), (["arm64", None], "got NoneType None")])
def test_a_list_of_something_else_is_a_usage_error_saying_what_to_give(value, named):
    with pytest.raises(UsageError, match=named) as caught:
        parse_platforms(value)
    assert "e.g. ['linux/amd64', 'linux/arm64']" in str(caught.value)
