"""Accounts, roles and territorial scopes (属地管理), and the API keys that stand for them.

An account has one role (``viewer`` < ``planner`` < ``admin``) and, below admin, the code
prefixes it may change: a street (9 digits) or a community (12) for a planner. Keys are
random (256 bits), shown once, and stored only as their SHA-256 digest, so a copied store
holds no usable key. A key may expire and can be revoked; a revoked or expired key never
authenticates again. Storage goes through the store contract (``data/store.py``); this
module holds the rules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from wangge.errors import InputError

#: Roles, weakest first: each may do what the ones before it may.
ROLES = ("viewer", "planner", "admin")
#: Keys carry this prefix, so a leaked one is recognisable in logs and secret scanners.
KEY_PREFIX = "wg_"
_NAME = re.compile(r"[\w.@-]{1,64}")
_SCOPE = re.compile(r"\d{6}(\d{3}){0,4}")


@dataclass(frozen=True)
class Account:
    """Who calls: a name, a role and the code prefixes the role applies to."""

    name: str
    role: str
    scopes: tuple[str, ...] = ()
    created_at: str = ""
    expires_at: str | None = None
    revoked_at: str | None = None

    def at_least(self, role: str) -> bool:
        """Whether this account's role is ``role`` or stronger."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, code: str) -> bool:
        """Whether the unit ``code`` lies in this account's territory (an admin's is all)."""
        if self.role == "admin":
            return True
        return any(str(code).startswith(prefix) for prefix in self.scopes)

    def active(self, at: datetime | None = None) -> bool:
        """Not revoked, and not expired at ``at`` (now by default)."""
        if self.revoked_at:
            return False
        if self.expires_at:
            return (at or datetime.now(UTC)) < datetime.fromisoformat(self.expires_at)
        return True


def new_key() -> str:
    """A fresh API key: the prefix and 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """The SHA-256 digest a key is stored and looked up by (hex)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def make_account(
    name: str,
    role: str,
    scopes: list[str] | tuple[str, ...] = (),
    expires_days: float | None = None,
) -> Account:
    """A checked new account.

    Raises
    ------
    InputError
        An unknown role, a bad name, a scope that is not a district/street/community/grid
        code prefix (6, 9, 12, 15 or 18 digits), or a planner or viewer without the scope
        a planner needs (a planner must hold at least one prefix).
    """
    if not _NAME.fullmatch(name or ""):
        raise InputError(
            f"account name {name!r} must be 1–64 letters, digits, '.', '@', '-' or '_'",
            where="name",
        )
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; roles are {', '.join(ROLES)}", where="role")
    bad = [s for s in scopes if not _SCOPE.fullmatch(str(s))]
    if bad:
        raise InputError(
            f"scope {bad[0]!r} is not a code prefix of 6, 9, 12, 15 or 18 digits "
            "(district, street, community, grid, micro-grid)",
            where="scope",
        )
    if role == "planner" and not scopes:
        raise InputError(
            "a planner needs at least one scope (--scope STREET_OR_COMMUNITY_CODE)",
            where="scope",
        )
    now = datetime.now(UTC)
    expires = None if expires_days is None else (now + timedelta(days=expires_days)).isoformat()
    return Account(name, role, tuple(sorted(set(map(str, scopes)))), now.isoformat(), expires)


# storage: one implementation for both stores, through SQLAlchemy Core ---------------------
_meta = sa.MetaData()
accounts_table = sa.Table(
    "wg_accounts",
    _meta,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list of code prefixes
    sa.Column("key_digest", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Text),
    sa.Column("revoked_at", sa.Text),
)
audit_table = sa.Table(
    "wg_audit",
    _meta,
    sa.Column("seq", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("plan_id", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("base_version", sa.Integer),
    sa.Column("detail", sa.Text, nullable=False),  # JSON: units and grids changed, ...
)
#: The audit log refuses UPDATE and DELETE in the database itself, whoever connects.
_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS wg_audit_no_update BEFORE UPDATE ON wg_audit "
        "BEGIN SELECT RAISE(ABORT, 'wg_audit is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS wg_audit_no_delete BEFORE DELETE ON wg_audit "
        "BEGIN SELECT RAISE(ABORT, 'wg_audit is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION wg_audit_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'wg_audit is append-only'; END $$ LANGUAGE plpgsql",
        "DROP TRIGGER IF EXISTS wg_audit_append_only ON wg_audit",
        "CREATE TRIGGER wg_audit_append_only BEFORE UPDATE OR DELETE ON wg_audit "
        "FOR EACH ROW EXECUTE FUNCTION wg_audit_append_only()",
    ],
}


def _has_append_only(conn: sa.Connection) -> bool:
    if conn.dialect.name == "postgresql":
        query = "SELECT 1 FROM pg_trigger WHERE tgname = 'wg_audit_append_only'"
    else:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'wg_audit_no_delete'"
    return conn.execute(sa.text(query)).first() is not None


class AccountBook:
    """Accounts and the audit log of one store (GeoPackage file or PostGIS database)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(20261130)"))
            _meta.create_all(conn)
            # once per database: re-making a trigger would lock the table from its readers
            if not _has_append_only(conn):
                for statement in _APPEND_ONLY.get(engine.dialect.name, []):
                    conn.execute(sa.text(statement))

    def add(self, account: Account, key: str) -> None:
        """Store a new account under ``key``'s digest; an active account of that name is
        an error (revoke it first)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(accounts_table).where(accounts_table.c.name == account.name)
            ).first()
            if row is not None and _account(row).active():
                raise InputError(f"account {account.name!r} exists; revoke it first", where="name")
            if row is not None:
                conn.execute(accounts_table.delete().where(accounts_table.c.name == account.name))
            conn.execute(
                accounts_table.insert().values(
                    name=account.name,
                    role=account.role,
                    scopes=json.dumps(list(account.scopes)),
                    key_digest=key_digest(key),
                    created_at=account.created_at,
                    expires_at=account.expires_at,
                    revoked_at=None,
                )
            )

    def all(self) -> list[Account]:
        """Every account, by name (revoked ones too, marked)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(accounts_table).order_by(accounts_table.c.name))
            return [_account(r) for r in rows]

    def find(self, key: str) -> Account | None:
        """The active account a key stands for, None for an unknown, revoked or expired key."""
        digest = key_digest(key)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(accounts_table).where(accounts_table.c.key_digest == digest)
            ).first()
        if row is None or not same_digest(row.key_digest, digest):
            return None
        account = _account(row)
        return account if account.active() else None

    def revoke(self, name: str) -> Account:
        """Revoke an account's key from now on."""
        from wangge.errors import NotFound

        at = datetime.now(UTC).isoformat()
        with self.engine.begin() as conn:
            done = conn.execute(
                accounts_table.update()
                .where(accounts_table.c.name == name, accounts_table.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if done.rowcount == 0:
                raise NotFound(f"no active account {name!r}", where="name")
        return next(a for a in self.all() if a.name == name)

    def append(self, entry: dict) -> None:
        """Append one entry (:func:`audit_entry`) to the audit log, on its own: for writes
        that make no plan version (accounts, the roster)."""
        with self.engine.begin() as conn:
            append_audit(conn, entry)

    def log(self, plan_id: str | None = None) -> pd.DataFrame:
        """The audit log, oldest first (one plan's, or all)."""
        stmt = sa.select(audit_table).order_by(audit_table.c.seq)
        if plan_id is not None:
            stmt = stmt.where(audit_table.c.plan_id == plan_id)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(stmt).mappings().all(), columns=audit_table.c.keys())


def audit_entry(
    account: str,
    action: str,
    plan_id: str | None = None,
    base_version: int | None = None,
    **detail,
) -> dict:
    """One audit log entry: who, when, what (``detail``: units, grids, codes changed) and
    from which base. Callers never put names or phones in ``detail``."""
    return {
        "at": datetime.now(UTC).isoformat(),
        "account": account,
        "action": action,
        "plan_id": plan_id,
        "base_version": base_version,
        "detail": json.dumps(detail, ensure_ascii=False, default=str),
    }


def append_audit(conn, entry: dict, version: int | None = None) -> None:
    """Insert ``entry`` with the connection of the transaction that makes the change: a
    SQLAlchemy connection, or the GeoPackage store's sqlite3 one."""
    row = {**entry, "version": version}
    if isinstance(conn, sa.Connection):
        conn.execute(audit_table.insert().values(**row))
        return
    cols = ("at", "account", "action", "plan_id", "version", "base_version", "detail")
    conn.execute(
        f"INSERT INTO wg_audit ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        tuple(row[c] for c in cols),
    )


def local_actor() -> str:
    """Who writes from the command line: the operating-system user, marked as local."""
    import getpass

    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:unknown"


def _account(row) -> Account:
    return Account(
        row.name,
        row.role,
        tuple(json.loads(row.scopes)),
        row.created_at,
        row.expires_at,
        row.revoked_at,
    )
