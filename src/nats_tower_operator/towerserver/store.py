"""SQLite persistence: the only module that speaks SQL.

SQL text is built only from table and column names checked against the known schema
(:func:`_table`, :func:`_column`) and from filters compiled by :mod:`.filter`; every value is a
bound parameter (hence the ``noqa: S608`` markers).

One connection, owned by one dedicated thread, in WAL mode with ``synchronous=FULL``: a commit
that returned is on disk, and a process killed mid-write loses nothing committed and leaves no
half-written record. Callers run a plain function against a :class:`Tx` through
:meth:`Store.write` (one ``BEGIN IMMEDIATE`` transaction) or :meth:`Store.read`; the event loop
never blocks on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sqlite3
import string
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from nats_tower_operator.towerserver.filter import CompiledFilter
from nats_tower_operator.towerserver.model import COLLECTIONS

__all__ = [
    "ForeignKeyViolation",
    "Row",
    "Store",
    "StoreError",
    "Tx",
    "UniqueViolation",
    "new_record_id",
    "now_timestamp",
]

Row = dict[str, Any]
T = TypeVar("T")

_ID_ALPHABET = string.ascii_lowercase + string.digits
_TABLES = frozenset({*COLLECTIONS, "nats_auth_revocations", "nats_auth_api_tokens"})
_UNIQUE_RE = re.compile(r"UNIQUE constraint failed: (.+)")


def new_record_id() -> str:
    """A PocketBase-style record id: 15 random lowercase alphanumeric characters."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15))


def now_timestamp() -> str:
    """The current UTC time in PocketBase's format, e.g. ``2024-01-01 12:00:00.000Z``."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class StoreError(Exception):
    """A write broke a database constraint."""


class UniqueViolation(StoreError):
    """A unique constraint failed; ``columns`` names the constrained columns."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        super().__init__(f"unique constraint failed on {table} ({', '.join(columns)})")
        self.table = table
        self.columns = tuple(columns)


class ForeignKeyViolation(StoreError):
    """A write referenced a missing record or left a dangling reference."""


def _table(name: str) -> str:
    if name not in _TABLES:
        raise ValueError("unknown table")
    return f'"{name}"'


def _column(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError("bad column name")
    return f'"{name}"'


@dataclass(frozen=True)
class ListResult:
    """One page of rows and, unless skipped, the total number of matching rows."""

    rows: list[Row]
    total: int | None


class Tx:
    """Record operations inside one transaction; used only on the store's thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # --- conversion --------------------------------------------------------------------------

    @staticmethod
    def _decode(table: str, row: sqlite3.Row) -> Row:
        out: Row = dict(row)
        collection = COLLECTIONS.get(table)
        if collection is not None:
            for name in collection.json_fields:
                if name in out and isinstance(out[name], str):
                    out[name] = json.loads(out[name])
        return out

    @staticmethod
    def _encode(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(values)
        collection = COLLECTIONS.get(table)
        if collection is not None:
            for name in collection.json_fields:
                if name in out:
                    out[name] = json.dumps(out[name])
        return out

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.IntegrityError as exc:
            message = str(exc)
            match = _UNIQUE_RE.search(message)
            if match:
                qualified = [c.strip() for c in match.group(1).split(",")]
                table = qualified[0].split(".")[0]
                raise UniqueViolation(table, [q.split(".")[-1] for q in qualified]) from None
            if "FOREIGN KEY" in message:
                raise ForeignKeyViolation("a referenced record is missing or still used") from None
            raise StoreError("constraint failed") from None

    # --- records -----------------------------------------------------------------------------

    def insert(self, table: str, values: Mapping[str, Any]) -> Row:
        """Insert a record; ``id``, ``created`` and ``updated`` are filled when absent."""
        stamp = now_timestamp()
        record = {"id": new_record_id(), "created": stamp, "updated": stamp, **values}
        encoded = self._encode(table, record)
        cols = ", ".join(_column(c) for c in encoded)
        marks = ", ".join("?" for _ in encoded)
        sql = f"INSERT INTO {_table(table)} ({cols}) VALUES ({marks})"  # noqa: S608
        self._execute(sql, list(encoded.values()))
        row = self.get(table, str(record["id"]))
        assert row is not None
        return row

    def get(self, table: str, record_id: str) -> Row | None:
        """The record with ``record_id``, or None."""
        return self.find_one(table, id=record_id)

    def find_one(self, table: str, **equals: Any) -> Row | None:
        """The first record whose columns equal the given values, or None."""
        rows = self.find(table, limit=1, **equals)
        return rows[0] if rows else None

    def find(self, table: str, *, limit: int | None = None, **equals: Any) -> list[Row]:
        """All records whose columns equal the given values, in insertion order."""
        where = " AND ".join(f"{_column(c)} = ?" for c in equals) or "1=1"
        sql = f"SELECT * FROM {_table(table)} WHERE {where} ORDER BY rowid"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cursor = self._execute(sql, list(equals.values()))
        return [self._decode(table, row) for row in cursor.fetchall()]

    def update(self, table: str, record_id: str, values: Mapping[str, Any]) -> Row | None:
        """Set columns of one record (and ``updated``); the new record, or None if absent."""
        record = {**values, "updated": now_timestamp()}
        encoded = self._encode(table, record)
        sets = ", ".join(f"{_column(c)} = ?" for c in encoded)
        sql = f"UPDATE {_table(table)} SET {sets} WHERE id = ?"  # noqa: S608
        self._execute(sql, [*encoded.values(), record_id])
        return self.get(table, record_id)

    def delete(self, table: str, record_id: str) -> bool:
        """Delete one record; whether it existed."""
        sql = f"DELETE FROM {_table(table)} WHERE id = ?"  # noqa: S608
        cursor = self._execute(sql, [record_id])
        return cursor.rowcount > 0

    def delete_where(self, table: str, **equals: Any) -> int:
        """Delete every record whose columns equal the given values; how many."""
        if not equals:
            raise ValueError("delete_where needs a condition")
        where = " AND ".join(f"{_column(c)} = ?" for c in equals)
        sql = f"DELETE FROM {_table(table)} WHERE {where}"  # noqa: S608
        cursor = self._execute(sql, list(equals.values()))
        return cursor.rowcount

    def list_page(
        self,
        table: str,
        *,
        where: CompiledFilter | None,
        order: str,
        limit: int,
        offset: int,
        count: bool,
    ) -> ListResult:
        """One page of records matching a compiled filter, sorted by a compiled sort clause."""
        clause = f"WHERE {where.sql}" if where is not None else ""
        params: tuple[Any, ...] = where.params if where is not None else ()
        order_sql = f"ORDER BY {order + ', ' if order else ''}rowid ASC"
        sql = f"SELECT * FROM {_table(table)} {clause} {order_sql} LIMIT ? OFFSET ?"  # noqa: S608
        rows = self._execute(sql, [*params, limit, offset]).fetchall()
        total: int | None = None
        if count:
            count_sql = f"SELECT COUNT(*) FROM {_table(table)} {clause}"  # noqa: S608
            total = int(self._execute(count_sql, params).fetchone()[0])
        return ListResult(rows=[self._decode(table, r) for r in rows], total=total)

    # --- revocations and tokens ----------------------------------------------------------

    def add_revocation(self, account_id: str, public_key: str, revoked_at: int) -> None:
        """Record that ``public_key``'s JWTs issued at or before ``revoked_at`` are revoked."""
        self._execute(
            "INSERT OR REPLACE INTO nats_auth_revocations (account, public_key, revoked_at) "
            "VALUES (?, ?, ?)",
            [account_id, public_key, revoked_at],
        )

    def revocations(self, account_id: str) -> dict[str, int]:
        """Revoked user public key -> unix time, for one account."""
        cursor = self._execute(
            "SELECT public_key, revoked_at FROM nats_auth_revocations WHERE account = ?",
            [account_id],
        )
        return {str(pk): int(at) for pk, at in cursor.fetchall()}

    def api_token_exists(self, token: str) -> bool:
        """Whether ``token`` is one of the stored API tokens."""
        cursor = self._execute("SELECT 1 FROM nats_auth_api_tokens WHERE token = ?", [token])
        return cursor.fetchone() is not None


class Store:
    """Owns the SQLite database file; every call runs on the store's single thread."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="towerserver-db")
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> str:
        """The database file path."""
        return self._path

    async def open(self) -> None:
        """Open (and if needed create) the database."""
        await self._call(self._open_sync)

    def _open_sync(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        schema = resources.files(__package__).joinpath("schema.sql").read_text()
        conn.executescript(schema)
        self._conn = conn

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    def _run(self, fn: Callable[[Tx], T], begin: str) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        conn.execute(begin)
        try:
            result = fn(Tx(conn))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one write transaction: all of its changes commit, or none."""
        return await self._call(lambda: self._run(fn, "BEGIN IMMEDIATE"))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot)."""
        return await self._call(lambda: self._run(fn, "BEGIN DEFERRED"))
