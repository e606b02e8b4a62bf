"""The QA page tests open the pages in Debian's Chromium: the shared fixtures of tests/support/chromium.py."""

from support.chromium import browser, new_page  # noqa: F401  (fixtures, found by pytest by name)
