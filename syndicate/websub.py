"""WebSub publish pings: tell hubs which feeds changed, so readers hear of a release in
seconds. A failing hub is retried, then reported; it never fails a build."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import httpx

from syndicate import __version__

log = logging.getLogger(__name__)


def publish(
    hubs: Sequence[str],
    urls: Sequence[str],
    *,
    attempts: int = 3,
    timeout: float = 10.0,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """POST hub.mode=publish for every (hub, url); return one message per failing hub."""
    failures: list[str] = []
    if not hubs or not urls:
        return failures
    headers = {"User-Agent": f"syndicate/{__version__}"}
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for hub in hubs:
            for number, url in enumerate(urls):
                error = _ping(client, hub, url, attempts, backoff, sleep)
                if error:
                    # A hub that failed every retry is down for this build: do not make the
                    # build wait through the same retries for each of the other feeds.
                    rest = len(urls) - number - 1
                    skipped = f"; {rest} more feed(s) not announced" if rest else ""
                    log.warning("WebSub hub %s: %s: %s%s", hub, url, error, skipped)
                    failures.append(f"WebSub hub {hub}: {url}: {error}{skipped}")
                    break
    return failures


def _ping(
    client: httpx.Client,
    hub: str,
    url: str,
    attempts: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> str | None:
    """None on success; the last error after `attempts` tries (client errors are final)."""
    error = "not attempted"
    for attempt in range(attempts):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            response = client.post(hub, data={"hub.mode": "publish", "hub.url": url})
        except httpx.HTTPError as exc:
            error = str(exc) or type(exc).__name__
            continue
        if response.is_success:
            return None
        error = f"HTTP {response.status_code} {response.reason_phrase}"
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            break
    return error
