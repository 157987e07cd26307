"""Who may change what (属地管理): the name a write carries and the territory it may touch."""

from __future__ import annotations

from wangge.data.accounts import Account, local_actor
from wangge.errors import Forbidden

#: Who writes: an API account (scoped), or a name given on the command line (the
#: operator of the machine, unscoped), or nobody named (the local user).
Who = Account | str | None


def actor(who: Who) -> str:
    """The name a version and its audit entry carry."""
    if isinstance(who, Account):
        return who.name
    return who or local_actor()


def covers(who: Who, code: str) -> bool:
    """Whether ``who`` may change the unit ``code`` (the command line may change all)."""
    return who.covers(code) if isinstance(who, Account) else True


def check_scope(who: Who, codes, what: str) -> None:
    """Refuse (403) a change touching any of ``codes`` outside the caller's territory."""
    outside = sorted(str(c) for c in codes if not covers(who, str(c)))
    if outside:
        shown = ", ".join(outside[:10]) + (" …" if len(outside) > 10 else "")
        raise Forbidden(
            f"{what} {len(outside)} grid(s) outside the scope of account {who.name!r} "
            f"({', '.join(who.scopes) or 'none'}): {shown}; nothing was saved",
            where="scope",
        )
