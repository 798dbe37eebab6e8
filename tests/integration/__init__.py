"""Real pytest sessions (pytester) against real buildx builds and containers, amd64 and arm64.

Every test here that uses Docker is checked for containers its sessions left behind, on both
engines, as each subprocess session ends and when the test ends (tests/conftest.py,
_no_containers_left); sessions started with helpers.run() are also checked right after.
"""
