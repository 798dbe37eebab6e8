"""Go's regexp, os.Expand and FileMode.String as structure tests need them (structure_go.py).
The expected answers are Go's (checked against CST itself where the differential suite runs)."""

from __future__ import annotations

import io
import tarfile

import pytest

from pytest_multiarch.structure_go import GoRegexError, expand, file_mode_string, go_regex


def matches(pattern: str, text: str) -> bool:
    return go_regex(pattern).search(text) is not None


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("^1000$", "1000\n", False),  # Go's $ is the end of the text, not before a final newline
        ("^1000$", "1000", True),
        ("1000\\n$", "1000\n", True),
        ("(?m)^1000$", "x\n1000\ny", True),
        ("(?m)^b$", "a\nb\n", True),
        ("^b", "a\nb", False),
        ("\\d+", "abc ٣", False),  # \d is ASCII in Go
        ("\\w", "é", False),
        ("\\s", "\v", False),  # Go's \s has no \v
        ("[\\s]", "\v", False),
        ("\\S", "\v", True),
        ("[^\\S]", " ", True),
        ("[a\\D]", "5", False),
        ("[a\\D]", "x", True),
        ("[[:alpha:]]+", "abc", True),
        ("[[:^digit:]]", "5", False),
        ("(?i)hello", "HeLLo", True),
        ("a(?i)b|c", "C", True),
        ("a(?i)b|c", "aB", True),
        ("(?i:a)b", "AB", False),
        ("(?s)a.b", "a\nb", True),
        ("a.b", "a\nb", False),
        ("\\bword\\b", "a word.", True),
        ("\\Bor\\B", "word", True),
        ("a{,3}", "a{,3}", True),  # Go reads {,3} as text
        ("x{2}", "xx", True),
        ("\\Qa.b\\E", "a.b", True),
        ("\\Qa.b\\E", "axb", False),
        ("(?U)a+", "aaa", True),
        ("\\x41\\x{42}\\101", "ABA", True),
        ("(?P<n>x)(?<m>y)", "xy", True),
        ("[]a]", "]", True),
        ("\\.", ".", True),
        ("(?:a|b)+$", "abab", True),
        ("", "anything", True),
    ],
)
def test_go_regex_answers_as_go_does(pattern: str, text: str, expected: bool) -> None:
    assert matches(pattern, text) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "(?=a)",
        "(?!a)",
        "(?<=a)b",
        "(a)\\1",
        "a\\Z",
        "**",
        "a**",
        "(a",
        "a)",
        "[a",
        "x{1001}",
        "\\u0041",
        "(?#c)",
        "[z-a]",
    ],
)
def test_patterns_go_refuses_are_invalid(pattern: str) -> None:
    with pytest.raises(GoRegexError) as refused:
        go_regex(pattern)
    assert refused.value.invalid


def test_unicode_classes_are_unsupported_not_invalid() -> None:
    with pytest.raises(GoRegexError) as refused:
        go_regex("\\pL")
    assert not refused.value.invalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$HOME/x", "/root/x"),
        ("${HOME}", "/root"),
        ("[$NOPE]", "[]"),
        ("$$ $1 $? $#", "   "),
        ("a$", "a$"),
        ("$-x", "x"),
        ("$ x", "$ x"),
        ("${}x", "x"),
        ("${HOME", "HOME"),
        ("${HOME:-d}", ""),
        ("$HOME_2", ""),
    ],
)
def test_expand_is_go_os_expand(text: str, expected: str) -> None:
    assert expand(text, {"HOME": "/root"}) == expected


def _member(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.mode = mode
    return member


@pytest.mark.parametrize(
    ("kind", "mode", "expected"),
    [
        (tarfile.REGTYPE, 0o755, "-rwxr-xr-x"),
        (tarfile.REGTYPE, 0o4755, "urwxr-xr-x"),
        (tarfile.REGTYPE, 0o2640, "grw-r-----"),
        (tarfile.DIRTYPE, 0o1777, "dtrwxrwxrwx"),
        (tarfile.DIRTYPE, 0o755, "drwxr-xr-x"),
        (tarfile.SYMTYPE, 0o777, "Lrwxrwxrwx"),
        (tarfile.CHRTYPE, 0o666, "Dcrw-rw-rw-"),
        (tarfile.FIFOTYPE, 0o600, "prw-------"),
        (tarfile.LNKTYPE, 0o644, "-rw-r--r--"),
    ],
)
def test_file_mode_string_is_go_filemode(kind: bytes, mode: int, expected: str) -> None:
    member = _member("x", kind, mode)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(member, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        read = archive.next()
    assert read is not None
    assert file_mode_string(read) == expected
