"""Debian's chromium as the browser tests drive it (Playwright, never a browser download)."""

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Without the background-networking flags chromium keeps dialling Google on a closed network."""
