"""Accounts for the API tests: a key of a given role and scope, as request headers."""

from __future__ import annotations

import uuid

from wangge.data.accounts import make_account, new_key
from wangge.data.store import Store


def key_for(store: Store, role: str = "admin", scopes: tuple[str, ...] = ()) -> str:
    """A fresh account of ``role`` over ``scopes`` in ``store``; its API key."""
    key = new_key()
    store.book.add(make_account(f"test-{role}-{uuid.uuid4().hex[:10]}", role, list(scopes)), key)
    return key


def auth(store: Store, role: str = "admin", scopes: tuple[str, ...] = ()) -> dict[str, str]:
    """Request headers signing in as a fresh account of ``role`` over ``scopes``."""
    return {"Authorization": f"Bearer {key_for(store, role, scopes)}"}
