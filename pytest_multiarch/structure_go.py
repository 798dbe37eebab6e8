"""Go's semantics that container-structure-test's verdicts rest on, in Python: its regular
expressions (Go's ``regexp``, RE2 syntax, translated to an equivalent Python pattern), the
``$VAR`` expansion of ``os.Expand`` and the text of ``fs.FileMode.String`` of a tar header.

The translation is exact for what Go accepts, with one gap: Unicode classes (``\\pL``,
``\\p{Greek}``) have no Python ``re`` equivalent and are refused as unsupported. A pattern Go
refuses (a look-ahead, a back-reference, ``\\Z``) is ``invalid``: CST then fails the check.
"""

from __future__ import annotations

import functools
import re
import tarfile
from collections.abc import Callable, Mapping

__all__ = ["GoRegexError", "expand", "file_mode_string", "go_regex"]

_WORD = "0-9A-Za-z_"
_SPACE = "\\t\\n\\f\\r "  # Go's \s: no \v
_PERL = {"d": "0-9", "w": _WORD, "s": _SPACE}
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": _WORD,
    "xdigit": "0-9A-Fa-f",
}
_SIMPLE_ESCAPES = {"a": "\x07", "f": "\x0c", "t": "\t", "n": "\n", "r": "\r", "v": "\x0b"}
_MAX_REPEAT = 1000


class GoRegexError(ValueError):
    """A pattern Go refuses (``invalid``: CST fails the check) or one this translation cannot
    express in Python (``invalid`` False)."""

    def __init__(self, message: str, *, invalid: bool = True) -> None:
        super().__init__(message)
        self.invalid = invalid


@functools.lru_cache(maxsize=512)
def go_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as Go's ``regexp.Compile`` reads it, as a Python pattern whose ``search``
    answers what Go's ``MatchString`` answers. GoRegexError when Go (or this) cannot."""
    translated = _Translator(pattern).translate()
    try:
        return re.compile(translated)
    except re.error as exc:  # a case the translator let through: Go's parser would refuse it too
        raise GoRegexError(f"error parsing regexp: {exc}") from None


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.at = 0
        self.out: list[str] = []
        self.flags: set[str] = set()
        self.stack: list[set[str]] = []
        self.can_repeat = False  # an atom precedes: a repetition operator may follow
        self.repeated = False  # the last thing was a repetition operator

    def fail(self, what: str) -> GoRegexError:
        return GoRegexError(f"error parsing regexp: {what}: `{self.text}`")

    def translate(self) -> str:
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if char in "*+?{" and self._repetition(char):
                continue
            self.repeated = False
            self.can_repeat = True
            if char == "(":
                self._group()
            elif char == ")":
                if not self.stack:
                    raise self.fail("unexpected )")
                self.flags = self.stack.pop()
                self.out.append(")")
            elif char == "|":
                self.can_repeat = False
                self.out.append("|")
            elif char == "^":
                self.out.append("(?:(?<=\\n)|\\A)" if "m" in self.flags else "\\A")
            elif char == "$":
                self.out.append("(?=\\n|\\Z)" if "m" in self.flags else "\\Z")
            elif char == ".":
                self.out.append("(?s:.)" if "s" in self.flags else ".")
            elif char == "[":
                self.out.append(self._with_case(self._class()))
            elif char == "\\":
                self._escape()
            else:
                self.out.append(self._literal(char))
        if self.stack:
            raise self.fail("missing closing )")
        return "".join(self.out)

    # -- repetition --------------------------------------------------------------------------------

    def _repetition(self, char: str) -> bool:
        """Handle a repetition operator at ``self.at - 1``; False when ``{`` is a literal."""
        start = self.at - 1
        if char == "{":
            match = re.compile(r"(\d+)(,(\d*))?\}").match(self.text, self.at)
            if match is None:
                return False  # Go reads a { that starts no repeat count as a literal
            low, high = int(match.group(1)), match.group(3)
            if low > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT) or (high and int(high) < low):
                raise self.fail(f"invalid repeat count: `{self.text[start : match.end()]}`")
            self.at = match.end()
            operator = self.text[start : self.at]
        else:
            operator = char
        lazy = self.at < len(self.text) and self.text[self.at] == "?"
        if lazy:
            self.at += 1
        if self.repeated:
            raise self.fail(f"invalid nested repetition operator: `{self.text[start : self.at]}`")
        if not self.can_repeat:
            raise self.fail(f"missing argument to repetition operator: `{self.text[start : self.at]}`")
        if "U" in self.flags:
            lazy = not lazy
        self.out.append(operator + ("?" if lazy else ""))
        self.repeated = True
        return True

    # -- groups and flags --------------------------------------------------------------------------

    def _group(self) -> None:
        self.can_repeat = False
        if not self.text.startswith("?", self.at):
            self.stack.append(set(self.flags))
            self.out.append("(")
            return
        rest = self.text[self.at + 1 :]
        named = re.match(r"P?<([A-Za-z0-9_]+)>", rest)
        if named:
            self.stack.append(set(self.flags))
            self.out.append(f"(?P<{named.group(1)}>")
            self.at += 1 + named.end()
            return
        flags = re.match(r"([imsU]*)(-([imsU]*))?([:)])", rest)
        if flags is None or (flags.group(2) is not None and not flags.group(3)):
            raise self.fail(f"invalid or unsupported Perl syntax: `{self.text[self.at - 1 : self.at + 2]}`")
        changed = set(self.flags) | set(flags.group(1))
        changed -= set(flags.group(3) or "")
        self.at += 1 + flags.end()
        if flags.group(4) == ")":  # (?flags): for the rest of the current group
            self.flags = changed
            self.can_repeat = False
            return
        self.stack.append(set(self.flags))
        self.flags = changed
        self.out.append("(?:")

    # -- escapes -----------------------------------------------------------------------------------

    def _escape(self) -> None:
        if self.at >= len(self.text):
            raise self.fail("trailing backslash at end of expression")
        char = self.text[self.at]
        self.at += 1
        if char in "AzbB":
            self.can_repeat = False
            self.out.append(
                {
                    "A": "\\A",
                    "z": "\\Z",
                    "b": f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))",
                    "B": f"(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}]))",
                }[char]
            )
        elif char.lower() in _PERL:
            self.out.append(f"[{'^' * char.isupper()}{_PERL[char.lower()]}]")
        elif char == "Q":
            end = self.text.find("\\E", self.at)
            quoted = self.text[self.at :] if end < 0 else self.text[self.at : end]
            self.at = len(self.text) if end < 0 else end + 2
            self.out.extend(self._literal(c) for c in quoted)
            self.can_repeat = bool(quoted)
        else:
            self.at -= 1
            self.out.append(self._literal(self._escaped_char(in_class=False)))

    def _escaped_char(self, *, in_class: bool) -> str:
        """The character an escape at ``self.at`` (past the backslash) stands for."""
        char = self.text[self.at]
        self.at += 1
        if char in "pP":
            raise GoRegexError(
                f"Unicode classes (\\{char}) are not supported by pytest-multiarch's reading of Go regexps: "
                f"`{self.text}`",
                invalid=False,
            )
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        if char in "01234567":
            digits = re.compile(r"[0-7]{0,2}").match(self.text, self.at)
            assert digits is not None
            if char != "0" and not digits.group(0):
                raise self.fail(f"invalid escape sequence: `\\{char}`")
            self.at = digits.end()
            return chr(int(char + digits.group(0), 8))
        if char == "x":
            braced = re.compile(r"\{([0-9A-Fa-f]{1,8})\}|([0-9A-Fa-f]{2})").match(self.text, self.at)
            if braced is None or int(braced.group(1) or braced.group(2), 16) > 0x10FFFF:
                raise self.fail("invalid escape sequence: `\\x`")
            self.at = braced.end()
            return chr(int(braced.group(1) or braced.group(2), 16))
        if ord(char) < 128 and not char.isalnum():
            return char
        raise self.fail(f"invalid escape sequence: `\\{char}`")

    # -- literals and classes ----------------------------------------------------------------------

    def _literal(self, char: str) -> str:
        escaped = re.escape(char)
        return f"(?i:{escaped})" if "i" in self.flags and char.lower() != char.upper() else escaped

    def _with_case(self, fragment: str) -> str:
        return f"(?i:{fragment})" if "i" in self.flags else fragment

    def _class(self) -> str:
        negated = self.text.startswith("^", self.at)
        if negated:
            self.at += 1
        positive: list[str] = []
        negative: list[str] = []
        first = True
        while True:
            if self.at >= len(self.text):
                raise self.fail("missing closing ]")
            char = self.text[self.at]
            if char == "]" and not first:
                self.at += 1
                break
            first = False
            posix = re.compile(r"\[:(\^?)([a-z]+):\]").match(self.text, self.at)
            if posix:
                if posix.group(2) not in _POSIX:
                    raise self.fail(f"invalid character class range: `{posix.group(0)}`")
                (negative if posix.group(1) else positive).append(_POSIX[posix.group(2)])
                self.at = posix.end()
                continue
            if char == "\\" and self.at + 1 < len(self.text) and self.text[self.at + 1].lower() in _PERL:
                letter = self.text[self.at + 1]
                (negative if letter.isupper() else positive).append(_PERL[letter.lower()])
                self.at += 2
                continue
            low = self._class_char()
            if self.text.startswith("-", self.at) and not self.text.startswith("-]", self.at):
                self.at += 1
                high = self._class_char()
                if high < low:
                    raise self.fail(f"invalid character class range: `{low}-{high}`")
                positive.append(f"{_in_class(low)}-{_in_class(high)}")
            else:
                positive.append(_in_class(low))
        return _class_pattern("".join(positive), negative, negated)

    def _class_char(self) -> str:
        if self.at >= len(self.text):
            raise self.fail("missing closing ]")
        char = self.text[self.at]
        self.at += 1
        if char != "\\":
            return char
        if self.at >= len(self.text):
            raise self.fail("trailing backslash at end of expression")
        return self._escaped_char(in_class=True)


def _in_class(char: str) -> str:
    return "\\" + char if char in "\\]-[^&~|" else re.escape(char) if not char.isalnum() else char


def _class_pattern(positive: str, negative: list[str], negated: bool) -> str:
    if not negative:
        if not positive:
            return "(?!)" if not negated else "(?s:.)"
        return f"[{'^' * negated}{positive}]"
    alternatives = ([f"[{positive}]"] if positive else []) + [f"[^{n}]" for n in negative]
    any_of = "(?:" + "|".join(alternatives) + ")"
    return f"(?:(?!{any_of})(?s:.))" if negated else any_of


# -- os.Expand -------------------------------------------------------------------------------------

_SPECIAL = set("*#$@!?-0123456789")


def expand(text: str, env: Mapping[str, str] | Callable[[str], str]) -> str:
    """Go's ``os.Expand(text, mapping)``: ``$NAME`` and ``${NAME}`` replaced by their values
    (unknown ones by nothing), ``$$`` and ``$1`` too (Go reads them as special variables), a
    ``$`` followed by no name kept, a bad ``${`` eaten."""
    lookup = env if callable(env) else (lambda name: env.get(name, ""))
    out: list[str] = []
    i = 0
    j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[i:j])
            name, width = _shell_name(text[j + 1 :])
            if name == "" and width > 0:
                pass  # bad syntax: eaten
            elif name == "":
                out.append("$")
            else:
                out.append(lookup(name))
            j += width
            i = j + 1
        j += 1
    return "".join(out) + text[i:]


def _shell_name(rest: str) -> tuple[str, int]:
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SPECIAL and rest[2] == "}":
            return rest[1], 3
        end = rest.find("}", 1)
        if end == 1:
            return "", 2
        if end < 0:
            return "", 1
        return rest[1:end], end + 1
    if rest[0] in _SPECIAL:
        return rest[0], 1
    width = 0
    while width < len(rest) and (rest[width] == "_" or (rest[width].isascii() and rest[width].isalnum())):
        width += 1
    return rest[:width], width


# -- fs.FileMode.String ------------------------------------------------------------------------------


def file_mode_string(member: tarfile.TarInfo) -> str:
    """What Go prints for ``header.FileInfo().Mode()`` of a tar entry: ``-rwxr-xr-x``,
    ``drwxr-xr-x``, ``Lrwxrwxrwx`` (a symlink), ``urwxr-xr-x`` (setuid), ``dtrwxrwxrwx`` (sticky)."""
    raw = member.mode
    letters = ""
    kind = raw & ~0o7777
    is_dir = member.type == tarfile.DIRTYPE or kind == 0o040000
    is_link = member.type == tarfile.SYMTYPE or kind == 0o120000
    device = member.type in (tarfile.CHRTYPE, tarfile.BLKTYPE) or kind in (0o020000, 0o060000)
    # Go's order of type letters: d a l T L D p S u g c t ?
    letters += "d" * is_dir
    letters += "L" * is_link
    letters += "D" * device
    letters += "p" * (member.type == tarfile.FIFOTYPE or kind == 0o010000)
    letters += "S" * (kind == 0o140000)
    letters += "u" * bool(raw & 0o4000)
    letters += "g" * bool(raw & 0o2000)
    letters += "c" * (member.type == tarfile.CHRTYPE or kind == 0o020000)
    letters += "t" * bool(raw & 0o1000)
    bits = "".join(c if raw & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return (letters or "-") + bits
