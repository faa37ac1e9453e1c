"""A real, headless Chromium for the admin tests: Debian's ``chromium`` and ``chromium-driver``.

The test setup installs them with apt-get when they are missing. Under ``CI=true`` a failed
installation fails the test; locally it skips.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.services import in_ci

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
_PACKAGES = ("chromium", "chromium-driver")
# Headless, no sandbox (root in a container), and no traffic of the browser's own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,700",
)


def _give_up(message: str) -> None:
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver unless both are there."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if shutil.which("apt-get") is None:
        _give_up(f"{' and '.join(_PACKAGES)} are missing and apt-get is not available")
    command = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", *_PACKAGES]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _give_up(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")


def start_chromium():  # type: ignore[no-untyped-def]
    """A headless Chromium driven through chromedriver, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="pgoutbox-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.pgoutbox_profile = profile  # removed by stop_chromium
    return driver


def stop_chromium(driver) -> None:  # type: ignore[no-untyped-def]
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.pgoutbox_profile, ignore_errors=True)
