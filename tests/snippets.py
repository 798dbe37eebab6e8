"""The code blocks of README.md and docs/*.md, extracted so that tests run them as written
(a plain module, not a conftest). Each is known by its file, its first line and, when blocks of
one file share a first line, its position among those."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("python", "dockerfile", "ini", "toml")  # the blocks a user pastes into a file
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


@dataclasses.dataclass(frozen=True)
class Snippet:
    key: str  # "docs/any-image.md: # conftest.py (2)"
    language: str
    text: str


def snippets() -> dict[str, Snippet]:
    """Every block of LANGUAGES in the documents, by key."""
    found: dict[str, Snippet] = {}
    for document in DOCUMENTS:
        seen: dict[str, int] = {}
        for match in _BLOCK.finditer(document.read_text(encoding="utf-8")):
            language, text = match.group(1).lower(), match.group(2)
            if language not in LANGUAGES:
                continue
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            seen[first] = seen.get(first, 0) + 1
            suffix = f" ({seen[first]})" if seen[first] > 1 else ""
            key = f"{document.relative_to(ROOT)}: {first}{suffix}"
            found[key] = Snippet(key, language, text)
    return found


def snippet(key: str) -> str:
    """One block's text; KeyError naming the key when the documents no longer have it."""
    return snippets()[key].text
