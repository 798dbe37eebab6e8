"""Real pytest sessions (pytester) against real buildx builds and containers, amd64 and arm64.

Sessions started with helpers.run() are checked afterwards for containers left behind.
"""
