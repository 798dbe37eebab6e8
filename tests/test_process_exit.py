"""What the plugin does when the Python process ends (cleanup.open_session)."""

from __future__ import annotations

import subprocess
import sys


def test_objects_are_frozen_only_at_exit_so_finalization_skips_collecting_them():
    # An atexit handler registered before the plugin's runs after it (last in, first out).
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('at exit:', gc.get_freeze_count() > 0))\n"
        "from pytest_multiarch import cleanup\n"
        "cleanup.open_session(cleanup.Tracker())\n"
        "print('before exit:', gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["before exit: False", "at exit: True"]
