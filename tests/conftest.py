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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` every grouped test must carry its group in its node id.

    That suffix is how pytest-xdist keeps a group on one worker (the hub suite's tests follow
    one class through a term; the normal-user tests must not run beside the hub). pytest 9.2
    ignores the attribute xdist 3.8 sets, which split every group silently.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            raise pytest.UsageError(
                f"{item.nodeid}: its xdist_group is lost, so --dist loadgroup would split it "
                "across workers (pytest-xdist and pytest do not agree: see requirements-test.txt)"
            )


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
