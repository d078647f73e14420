"""What the browser tests share: the Chromium recipe, where artifacts go, a person's browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
# The recipe from shared/notes/rtc-measurements.md §4: fake camera and microphone, no prompts,
# nothing that reaches out of the box, autoplay with sound.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"


@dataclass
class Person:
    """One user in their own browser process: closing it is that user's machine going away."""

    name: str
    browser: sync_api.Browser
    page: sync_api.Page
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page

    def close(self) -> None:
        if self.browser.is_connected():
            self.browser.close()
