"""Declared ports (issue 27): ``ports=[8000, 9090]`` without ``port=``, as docs/any-image.md
shows, makes 8000 the app's port (readiness, ``<name>_http``, ``url()``), on both platforms."""

from __future__ import annotations

import pytest

from tests.integration.helpers import run

# Two servers, no EXPOSE: only the declaration says which ports the app has.
TWO_PORTS_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /app /metrics && echo app > /app/index.html && echo metrics > /metrics/index.html
CMD ["sh", "-c", "httpd -p 9090 -h /metrics && exec httpd -f -p 8000 -h /app"]
"""


@pytest.mark.usefixtures("docker_engine")
def test_the_first_declared_port_is_the_apps_port(busybox_project):
    busybox_project.makefile("", Dockerfile=TWO_PORTS_DOCKERFILE)
    busybox_project.makeconftest(
        """
        from pytest_multiarch import multiarch_fixtures

        api_image, api_container, api_http = multiarch_fixtures("api", ports=[8000, 9090])
        """
    )
    busybox_project.makepyfile(
        test_api="""
        import requests

        def test_app_and_metrics(api_http, api_container):
            assert api_http.get("/").text == "app\\n"
            assert requests.get(api_container.url("/"), timeout=30).text == "app\\n"
            assert requests.get(api_container.url("/", port=9090), timeout=30).text == "metrics\\n"
        """
    )
    run(busybox_project).assert_outcomes(passed=2)
