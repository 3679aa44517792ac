"""The README's configuration reference covers every setting the app reads."""

from __future__ import annotations

import itertools
from dataclasses import fields
from pathlib import Path

from authdevice.conf import Defaults

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [
        f.name
        for f in fields(Defaults)
        if f"AUTHDEVICE_{f.name}" not in README and f"_{f.name.split('_', 1)[-1]}" not in README
    ]
    assert missing == []


def test_every_setting_has_a_docstring_comment():
    source = (Path(__file__).resolve().parent.parent / "authdevice" / "conf.py").read_text()
    body = source[source.index("class Defaults") : source.index("DEFAULT_CHANNELS")]
    lines = [line.strip() for line in body.splitlines()]
    undocumented = []
    for previous, line in itertools.pairwise(lines):
        is_field = ":" in line and "=" in line and not line.startswith(("#", '"'))
        # The TWILIO_* group shares the comment above its first member.
        grouped = line.startswith("TWILIO_") and previous.startswith("TWILIO_")
        if is_field and not previous.startswith("#:") and not grouped:
            undocumented.append(line.split(":")[0])
    assert undocumented == []


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README
