"""What a test does when something it needs is not installed."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(why: str) -> NoReturn:
    """Fail under CI=true (a broken install must not pass as green), skip with the reason
    elsewhere (a developer's machine may lack a JVM, Go or a browser)."""
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)
