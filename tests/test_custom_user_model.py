from __future__ import annotations

import os
import subprocess
import sys

from tests.live import ROOT


def test_default_user_model_is_auth_user():
    from django.contrib.auth import get_user_model

    assert get_user_model()._meta.label == "auth.User"


def test_custom_user_model_site():
    """The same flows in a site whose AUTH_USER_MODEL is a custom model with a UUID pk."""
    env = {
        **os.environ,
        "AUTH_USER_MODEL": "customuser.EmailUser",
        "EXTRA_INSTALLED_APPS": "tests.customuser",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/customuser/scenario.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
