"""Rows the hot paths need on every request (API keys, partners' Destination secrets), kept
briefly in this process's memory, so a request runs no query for them."""

import time
from collections.abc import Callable
from typing import Any, Generic, Optional, TypeVar

from django.conf import settings
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

Value = TypeVar("Value")


class ProcessCache(Generic[Value]):
    """What `load(key)` answered, kept in this process for the number of seconds the setting
    `bound_setting` names (0 keeps nothing).

    Only answers that found something are kept, so a caller inventing keys cannot grow it.
    Secrets kept here stay in this process's memory: never in a shared cache. Threads may race
    to refresh an entry; each writes the same answer, so no lock is needed. A save or delete of
    one of `models` in this process drops everything, so a change made here is seen at once;
    other processes see it within the bound.
    """

    def __init__(self, load: Callable[[str], Optional[Value]], *, bound_setting: str, models: tuple[type[Model], ...]):
        self._load = load
        self._bound_setting = bound_setting
        self._entries: dict[str, tuple[float, Value]] = {}  # key -> (monotonic expiry, value)
        for model in models:
            # Named by what the cache loads, so a module imported twice connects once while two
            # caches over the same model and bound are both told.
            uid = f"{__name__}.{load.__module__}.{load.__qualname__}.{model.__name__}"
            post_save.connect(self.forget, sender=model, dispatch_uid=f"{uid}.save")
            post_delete.connect(self.forget, sender=model, dispatch_uid=f"{uid}.delete")

    def get(self, key: str) -> Optional[Value]:
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        value = self._load(key)
        seconds = getattr(settings, self._bound_setting)
        if value is None:
            self._entries.pop(key, None)
        elif seconds > 0:
            self._entries[key] = (now + seconds, value)
        return value

    def forget(self, **signal_kwargs: Any) -> None:
        """Drop every entry (a signal's receiver, and the tests' reset)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
