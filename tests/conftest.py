"""Shared test settings and the one Chromium of a test process.

Hypothesis draws the same examples on every run, so CI is repeatable. The browser and the hub
suites share one ``chromium`` per xdist worker: Playwright's sync API cannot be started twice in
one process (the second start finds the first one's event loop running).
"""

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from hypothesis import settings

settings.register_profile("course", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("course")


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium under Playwright; a missing Chromium fails the suite, never skips it."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's Chromium. `make test` installs "
            "it (apt-get update && apt-get install -y chromium, as root); install it and rerun."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
