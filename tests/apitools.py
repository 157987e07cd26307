"""Accounts for the API tests: a key of a given role and scope, as request headers."""

from __future__ import annotations

import itertools

from wangge.data.accounts import make_account, new_key
from wangge.data.store import Store

_serial = itertools.count(1)


def key_for(store: Store, role: str = "admin", scopes: tuple[str, ...] = ()) -> str:
    """A fresh account of ``role`` over ``scopes`` in ``store``; its API key."""
    key = new_key()
    store.book.add(make_account(f"test-{role}-{next(_serial)}", role, list(scopes)), key)
    return key


def auth(store: Store, role: str = "admin", scopes: tuple[str, ...] = ()) -> dict[str, str]:
    """Request headers signing in as a fresh account of ``role`` over ``scopes``."""
    return {"Authorization": f"Bearer {key_for(store, role, scopes)}"}
