"""Per member account, a set of regions a sandbox rule applies to (an SCP's region deny, the
regions not enabled in the account), read by the moto server's request threads.

Writers replace the whole mapping under a lock; request threads read whatever mapping is
current without a lock, so a request sees a rule either entirely before or after a change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from opsagent.registry.patterns import is_account_id, is_region

log = logging.getLogger(__name__)


class AccountRegions:
    """Per account, the regions a rule applies to. Thread-safe; reads take no lock."""

    # What the rule is, for the log line written on every change.
    describes = "sandbox regions"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_account: Mapping[str, frozenset[str]] = {}
        # Every region of any account: most requests are let through on this alone.
        self._any: frozenset[str] = frozenset()

    def set(self, account_id: str, regions: Iterable[str]) -> None:
        """The account's regions become exactly ``regions`` (empty: none)."""
        wanted = checked_regions(regions)
        self._update(checked_account(account_id), lambda _: wanted)

    def add(self, account_id: str, regions: Iterable[str]) -> None:
        wanted = checked_regions(regions)
        self._update(checked_account(account_id), lambda current: current | wanted)

    def remove(self, account_id: str, regions: Iterable[str]) -> None:
        gone = checked_regions(regions)
        self._update(checked_account(account_id), lambda current: current - gone)

    def clear(self) -> None:
        with self._lock:
            self._by_account = {}
            self._any = frozenset()

    def regions(self, account_id: str) -> frozenset[str]:
        return self._by_account.get(account_id, frozenset())

    def applies(self, account_id: str, region: str) -> bool:
        return region in self._by_account.get(account_id, ())

    def may_apply(self, region: str) -> bool:
        """False when no account has this region: the request needs no further look."""
        return region in self._any

    def _update(self, account: str, change: Callable[[frozenset[str]], frozenset[str]]) -> None:
        with self._lock:
            by_account = dict(self._by_account)
            regions = change(by_account.get(account, frozenset()))
            if regions:
                by_account[account] = regions
            else:
                by_account.pop(account, None)
            self._by_account = by_account
            self._any = frozenset().union(*by_account.values())
        log.info(self.describes, extra={"account_id": account, "regions": sorted(regions)})


def checked_account(account_id: str) -> str:
    if not is_account_id(account_id):
        raise ValueError(f"an account id is 12 digits, not {account_id!r}")
    return account_id


def checked_regions(regions: Iterable[str]) -> frozenset[str]:
    if isinstance(regions, str):
        raise TypeError(f"regions is a collection of region names, not one string {regions!r}")
    found = frozenset(regions)
    bad = sorted(r for r in found if not is_region(r))
    if bad:
        raise ValueError(f"not region names: {bad!r}")
    return found
