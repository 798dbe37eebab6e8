"""``pytest --fixtures`` documents every fixture the plugin registers (issue 27), those that
``multiarch_fixtures`` makes for a declared image included: none says "no docstring available"."""

from __future__ import annotations

import itertools

import pytest


def test_every_multiarch_fixture_has_its_docstring(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_multiarch import multiarch_fixtures

        api_image, api_container, api_http = multiarch_fixtures("api", context=".")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--fixtures")
    assert result.ret == 0
    lines = result.stdout.lines
    names = [line.split()[0] for line in lines if line.startswith(("multiarch_", "api_"))]
    assert set(names) >= {
        *(f"multiarch_{suffix}" for suffix in ("platform", "image", "container", "http", "run", "index", "network")),
        *(f"api_{suffix}" for suffix in ("image", "container", "http", "run")),
    }, names
    undocumented = [name for name, next_line in itertools.pairwise(lines) if "no docstring available" in next_line]
    assert not [line for line in undocumented if line.startswith(("multiarch_", "api_"))], result.stdout.str()
    result.stdout.fnmatch_lines(["api_http *", '    A requests.Session whose paths * the image "api" declared *'])
