"""Async client for NATS Tower's PocketBase records API.

Two layers in one class:

* record level (``list_records``, ``get_record``, ``create_record``, ``update_record``,
  ``delete_record``): HTTP, the ``X-Token`` header, retries with capped exponential
  backoff and full jitter, translation of failures into :mod:`.errors` types;
* domain level (``get_installation``, ``find_users``, ...): one request each, filters
  built with :mod:`.filter` (within PocketBase's length and comparison limits), answers
  parsed into :mod:`.models` and re-checked against what was asked, so a server that
  ignores a filter can never hand back a wrong record.

NATS Tower checks the API token in its API rules, so a wrong token is never a 401: lists
come back empty, views and deletes 404, creates 400 with no field errors. Every such
negative answer ("no such installation", "not linked", "user gone", "already deleted") is
therefore proven before it is returned: the same token must still see at least one
installation (:meth:`TowerClient.token_works`); if it sees none, the answer was the wrong
token's and :class:`~.errors.TowerUnauthorized` is raised instead.

Nothing is cached here; see :mod:`.credentials` for caching and batching.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

import httpx

from . import filter as f
from .errors import (
    AccountNotFound,
    InstallationNotFound,
    InvalidRecordId,
    TowerBadRequest,
    TowerBadResponse,
    TowerError,
    TowerNotFound,
    TowerUnauthorized,
    TowerUnavailable,
    redact,
)
from .models import (
    ACCESS,
    ACCOUNTS,
    INSTALLATIONS,
    ROLES,
    USERS,
    Account,
    Installation,
    K8sAccess,
    Role,
    User,
    UserSummary,
    is_record_id,
)

__all__ = ["FIND_USERS_CHUNK", "RequestObserver", "TokenSource", "TowerClient"]

log = logging.getLogger(__name__)

#: A fixed API token, or a function returning the current one (e.g. re-reading a file).
TokenSource = str | Callable[[], str]

USER_AGENT = "nats-tower-operator"
#: How many user names one ``find_users`` request asks for.
FIND_USERS_CHUNK = 40
#: The longest Retry-After the client honours, in seconds.
MAX_RETRY_AFTER = 60.0
#: A guard against a server whose paging never ends.
MAX_PAGES = 10_000

_COLLECTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class RequestObserver(Protocol):
    """Called after every HTTP attempt (for metrics); ``status`` is None on transport errors."""

    def __call__(self, method: str, collection: str, status: int | None, seconds: float) -> None:
        """Record one attempt."""


class TowerClient:
    """Async client for one Tower server; use as an async context manager or ``aclose()``.

    ``observer`` is told about every HTTP attempt (retries included), e.g. for metrics;
    ``transport`` replaces the HTTP transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(  # noqa: PLR0913 - keyword-only client options
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        max_connections: int = 50,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("Tower URL must be an absolute http(s) URL")
        if max_retries < 0 or backoff_base < 0 or backoff_cap < 0 or timeout <= 0:
            raise ValueError("timeout must be > 0 and retry settings >= 0")
        self._token_source = token
        self._token = ""
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._observer = observer
        self._http = httpx.AsyncClient(
            base_url=str(url).rstrip("/"),
            # Waiting for a free connection is not a Tower failure; every request in
            # flight has its own timeout, so a slot always frees up.
            timeout=httpx.Timeout(timeout, pool=None),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
            # Named, so Tower's request log tells the operator's requests apart.
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )

    def __repr__(self) -> str:
        return f"TowerClient({str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport

    def current_token(self) -> str:
        """The API token as of now (re-read from its source)."""
        source = self._token_source
        try:
            token = source() if callable(source) else source
        except OSError as exc:
            raise TowerUnauthorized(f"cannot read the Tower API token: {exc}") from exc
        self._token = token.strip()
        return self._token

    async def token_works(self, token: str | None = None) -> bool:
        """Whether ``token`` (default: the current one) sees at least one installation.

        With a wrong token real Tower answers every list with no items, so this is the
        positive proof a negative answer needs.
        """
        response = await self._request(
            "GET",
            INSTALLATIONS,
            params={"page": 1, "perPage": 1, "skipTotal": 1, "fields": "id"},
            token=token,
        )
        items, _ = _parse_page(INSTALLATIONS, self._json("GET", INSTALLATIONS, response))
        return bool(items)

    async def _prove_token(self, token: str) -> None:
        """Raise :class:`TowerUnauthorized` unless ``token`` is proven to work."""
        if not await self.token_works(token):
            raise TowerUnauthorized(
                "NATS Tower answered as if the API token were wrong: with it, not a single "
                "installation is visible. Check NATS_TOWER_API_TOKEN against Tower's API_TOKEN"
            )

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self._backoff_cap, self._backoff_base * (2.0**attempt))
        return random.uniform(0.0, ceiling)

    def _path(self, collection: str, record_id: str | None) -> str:
        if not collection or not set(collection) <= _COLLECTION_CHARS:
            raise ValueError(f"invalid collection name {collection!r}")
        path = f"/api/collections/{collection}/records"
        if record_id is None:
            return path
        if not is_record_id(record_id):
            raise InvalidRecordId(f"the {collection} id")
        return f"{path}/{record_id}"

    async def _request(  # noqa: PLR0913 - keyword-only parts of one records API request
        self,
        method: str,
        collection: str,
        *,
        record_id: str | None = None,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        retry_safe: bool = False,
        token: str | None = None,
    ) -> httpx.Response:
        """Send one logical request with retries; return a response with status < 400.

        Every attempt sends ``token`` (default: the current token, read once).
        """
        path = self._path(collection, record_id)
        token = token if token is not None else self.current_token()
        # A POST may have been processed once the request was written; repeat it only
        # when the caller says a duplicate is harmless (e.g. it handles "not unique").
        repeatable = method != "POST" or retry_safe
        key = f"{method} {collection}"
        attempt = 0
        while True:
            outcome = await self._attempt(
                method, collection, path, params, body, token, repeatable=repeatable
            )
            if isinstance(outcome, httpx.Response):
                return outcome
            if not outcome.retry or attempt >= self._max_retries:
                tried = f" after {attempt + 1} attempts" if attempt else ""
                raise TowerUnavailable(
                    redact(f"{key} failed{tried}: {outcome.failure}", token), status=outcome.status
                ) from outcome.cause
            delay = (
                outcome.retry_after if outcome.retry_after is not None else self._backoff(attempt)
            )
            attempt += 1
            log.debug(
                "Tower %s failed (%s); retry %d/%d in %.2fs",
                key,
                redact(outcome.failure, token),
                attempt,
                self._max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    async def _attempt(  # noqa: PLR0913 - one attempt of _request, with its parts
        self,
        method: str,
        collection: str,
        path: str,
        params: Mapping[str, str | int] | None,
        body: Mapping[str, Any] | None,
        token: str,
        *,
        repeatable: bool,
    ) -> httpx.Response | _Failed:
        """One HTTP exchange: a good response, a typed error raised, or a retryable failure."""
        started = time.monotonic()
        try:
            response = await self._http.request(
                method, path, params=dict(params or {}), json=body, headers={"X-Token": token}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached Tower: safe to repeat whatever the method.
            self._observe(method, collection, None, started)
            return _Failed(f"{type(exc).__name__}: {exc}", retry=True, cause=exc)
        except httpx.TransportError as exc:
            self._observe(method, collection, None, started)
            return _Failed(f"{type(exc).__name__}: {exc}", retry=repeatable, cause=exc)
        status = response.status_code
        self._observe(method, collection, status, started)
        if status < 300:
            return response
        if status == 429 or status >= 500:
            return _Failed(
                f"HTTP {status}",
                retry=status == 429 or repeatable,
                status=status,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        raise self._error(method, collection, response, token)

    def _observe(self, method: str, collection: str, status: int | None, started: float) -> None:
        if self._observer is not None:
            self._observer(method, collection, status, time.monotonic() - started)

    def _error(
        self, method: str, collection: str, response: httpx.Response, token: str
    ) -> TowerError:
        """Translate a non-retryable error answer (3xx/4xx) into a typed error."""
        status = response.status_code
        server_message, field_errors = _pocketbase_error(response)
        text = f"{method} {collection}: HTTP {status}"
        if server_message:
            text += f": {server_message}"
        if field_errors:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(field_errors.items())) + ")"
        text = redact(text, token)
        if status == 400:
            return TowerBadRequest(text, status=status, field_errors=field_errors)
        if status in (401, 403):
            return TowerUnauthorized(text + "; check the Tower API token", status=status)
        if status == 404:
            return TowerNotFound(text, status=status)
        return TowerError(text, status=status)

    def _json(self, method: str, collection: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise TowerBadResponse(
                f"{method} {collection}: the answer is not valid JSON", status=response.status_code
            ) from exc

    def _object(self, method: str, collection: str, response: httpx.Response) -> dict[str, Any]:
        data = self._json(method, collection, response)
        if not isinstance(data, dict):
            raise TowerBadResponse(
                f"{method} {collection}: the answer is not a JSON object",
                status=response.status_code,
            )
        return data

    # ------------------------------------------------------------------ records

    async def list_records(  # noqa: PLR0913 - keyword-only options of PocketBase's list API
        self,
        collection: str,
        *,
        filter: str | None = None,
        per_page: int = 200,
        page: int = 1,
        fields: str | None = None,
        sort: str | None = None,
        all_pages: bool = False,
        token: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records of ``collection`` matching ``filter``: one page, or every page from ``page``.

        An empty answer may mean a wrong token: callers that act on "nothing found" prove
        the token first (see the module docstring).
        """
        if per_page < 1 or page < 1:
            raise ValueError("per_page and page must be >= 1")
        if filter is not None:
            f.check_limits(filter)
        token = token if token is not None else self.current_token()
        query = {k: v for k, v in (("filter", filter), ("fields", fields), ("sort", sort)) if v}
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {"page": page, "perPage": per_page, **query}
            response = await self._request("GET", collection, params=params, token=token)
            page_items, total_pages = _parse_page(
                collection, self._json("GET", collection, response)
            )
            items.extend(_unseen(page_items, seen))
            if not all_pages or _last_page(page_items, page, per_page, total_pages):
                return items
            page += 1
        raise TowerBadResponse(f"GET {collection}: more than {MAX_PAGES} pages")

    async def get_record(
        self, collection: str, record_id: str, *, fields: str | None = None
    ) -> dict[str, Any]:
        """One record by id; :class:`TowerNotFound` only once the token is proven to work."""
        params = {"fields": fields} if fields else None
        token = self.current_token()
        try:
            response = await self._request(
                "GET", collection, record_id=record_id, params=params, token=token
            )
        except TowerNotFound:
            await self._prove_token(token)
            raise
        return self._object("GET", collection, response)

    async def create_record(
        self,
        collection: str,
        data: Mapping[str, Any],
        *,
        fields: str | None = None,
        retry_safe: bool = False,
    ) -> dict[str, Any]:
        """Create a record and return it.

        Retried after the request may have reached the server only when ``retry_safe``
        (the caller handles a duplicate, e.g. via ``validation_not_unique``). A 400 without
        field errors is what a wrong token gets, so it is proven before it is raised.
        """
        params = {"fields": fields} if fields else None
        token = self.current_token()
        try:
            response = await self._request(
                "POST", collection, params=params, body=data, retry_safe=retry_safe, token=token
            )
        except TowerBadRequest as exc:
            if not exc.field_errors:
                await self._prove_token(token)
            raise
        return self._object("POST", collection, response)

    async def update_record(
        self,
        collection: str,
        record_id: str,
        data: Mapping[str, Any],
        *,
        fields: str | None = None,
    ) -> dict[str, Any]:
        """PATCH fields of one record and return it."""
        params = {"fields": fields} if fields else None
        token = self.current_token()
        try:
            response = await self._request(
                "PATCH", collection, record_id=record_id, params=params, body=data, token=token
            )
        except TowerNotFound:
            await self._prove_token(token)
            raise
        return self._object("PATCH", collection, response)

    async def delete_record(self, collection: str, record_id: str) -> bool:
        """Delete one record; False when it does not exist (proven: the token works)."""
        token = self.current_token()
        try:
            await self._request("DELETE", collection, record_id=record_id, token=token)
        except TowerNotFound:
            await self._prove_token(token)
            return False
        return True

    # ------------------------------------------------------------------ domain

    async def get_installation(self, public_key: str) -> Installation:
        """The installation (Tower operator) with this public key."""
        token = self.current_token()
        records = await self.list_records(
            INSTALLATIONS,
            filter=f.eq("public_key", public_key),
            per_page=1,
            fields=Installation.FIELDS,
            token=token,
        )
        for record in records:
            installation = Installation.from_record(record)
            if installation.public_key == public_key:
                return installation
        await self._prove_token(token)
        raise InstallationNotFound(public_key)

    async def get_account(self, installation_id: str, name: str) -> Account:
        """The account ``name`` of the installation with record id ``installation_id``."""
        token = self.current_token()
        records = await self.list_records(
            ACCOUNTS,
            filter=f.and_(f.eq("operator", installation_id), f.eq("name", name)),
            per_page=1,
            fields=Account.FIELDS,
            token=token,
        )
        for record in records:
            account = Account.from_record(record)
            if account.installation_id == installation_id and account.name == name:
                return account
        await self._prove_token(token)
        raise AccountNotFound(installation_id, name)

    async def has_access(self, account_id: str, cluster: str, namespace: str) -> bool:
        """Whether a k8s access record links ``cluster``/``namespace`` to the account.

        False is proven: the same token sees Tower's installations.
        """
        token = self.current_token()
        records = await self.list_records(
            ACCESS,
            filter=f.and_(
                f.eq("account", account_id), f.eq("cluster", cluster), f.eq("namespace", namespace)
            ),
            per_page=1,
            fields=K8sAccess.FIELDS,
            token=token,
        )
        if any(
            (a.account_id, a.cluster, a.namespace) == (account_id, cluster, namespace)
            for a in map(K8sAccess.from_record, records)
        ):
            return True
        await self._prove_token(token)
        return False

    async def list_access(self, cluster: str, namespace: str | None = None) -> list[K8sAccess]:
        """Every access link of ``cluster`` (optionally of one namespace), all pages."""
        parts = [f.eq("cluster", cluster)]
        if namespace is not None:
            parts.append(f.eq("namespace", namespace))
        records = await self.list_records(
            ACCESS, filter=f.and_(*parts), fields=K8sAccess.FIELDS, all_pages=True
        )
        links = [K8sAccess.from_record(r) for r in records]
        return [
            a
            for a in links
            if a.cluster == cluster and (namespace is None or a.namespace == namespace)
        ]

    async def find_users(self, account_id: str, names: Sequence[str]) -> dict[str, User]:
        """Users of the account by name: a request per :data:`FIND_USERS_CHUNK` names at
        most, fewer when long names would take a filter over PocketBase's limits.

        Absent names are simply missing from the answer (creating them proves the token).
        """
        found: dict[str, User] = {}
        chunks = f.any_of_chunks(
            f.eq("account", account_id), "name", names, max_values=FIND_USERS_CHUNK
        )
        for expr, chunk in chunks:
            records = await self.list_records(
                USERS,
                filter=expr,
                per_page=max(100, 2 * len(chunk)),
                fields=User.FIELDS,
                all_pages=True,
            )
            chunk_names = set(chunk)
            for record in records:
                user = User.from_record(record)
                if user.account_id == account_id and user.name in chunk_names:
                    found.setdefault(user.name, user)
        return found

    async def get_user(self, user_id: str) -> User | None:
        """The user with this record id, or None (proven: the token works)."""
        try:
            record = await self.get_record(USERS, user_id, fields=User.FIELDS)
        except TowerNotFound:
            return None
        return User.from_record(record)

    async def create_user(
        self,
        account_id: str,
        *,
        name: str,
        description: str,
        signing_key_id: str | None,
        retry_safe: bool = False,
    ) -> User:
        """Create a user (Tower issues its keys, JWT and creds) and return it."""
        body: dict[str, Any] = {"account": account_id, "name": name, "description": description}
        if signing_key_id:
            body["signing_key"] = signing_key_id
        record = await self.create_record(USERS, body, fields=User.FIELDS, retry_safe=retry_safe)
        user = User.from_record(record)
        if user.account_id != account_id or user.name != name:
            raise TowerBadResponse("POST nats_auth_users: the answer is a different user")
        return user

    async def delete_user(self, user_id: str) -> bool:
        """Delete a user (Tower revokes it); False when it was already gone (proven)."""
        return await self.delete_record(USERS, user_id)

    async def find_role(self, account_id: str, role: str) -> Role | None:
        """The role (scoped signing key) ``role`` of the account, or None (proven)."""
        token = self.current_token()
        records = await self.list_records(
            ROLES,
            filter=f.and_(f.eq("account", account_id), f.eq("role", role)),
            per_page=1,
            fields=Role.FIELDS,
            token=token,
        )
        for record in records:
            found = Role.from_record(record)
            if found.account_id == account_id and found.role == role:
                return found
        await self._prove_token(token)
        return None

    async def create_role(
        self,
        account_id: str,
        *,
        role: str,
        publish: Sequence[str],
        subscribe: Sequence[str],
        retry_safe: bool = False,
    ) -> Role:
        """Create a role with these permissions and return it."""
        body = {
            "account": account_id,
            "role": role,
            "publish": list(publish),
            "subscribe": list(subscribe),
        }
        record = await self.create_record(ROLES, body, fields=Role.FIELDS, retry_safe=retry_safe)
        created = Role.from_record(record)
        if created.account_id != account_id or created.role != role:
            raise TowerBadResponse("POST nats_auth_signing_keys: the answer is a different role")
        return created

    def _prefix_filter(self, account_id: str, name_prefix: str) -> str:
        parts = [f.eq("account", account_id)]
        # "~" is SQL LIKE '%value%' ("_" matching any character), so it only narrows and
        # names are compared exactly on this side. A value with "%" is taken by PocketBase as
        # the whole pattern (no surrounding wildcards): such prefixes are not sent.
        if name_prefix and f.expressible(name_prefix) and "%" not in name_prefix:
            parts.append(f.like("name", name_prefix))
        return f.and_(*parts)

    async def list_users(self, account_id: str, *, name_prefix: str = "") -> list[UserSummary]:
        """Every user of the account whose name starts with ``name_prefix`` (no secrets)."""
        records = await self.list_records(
            USERS,
            filter=self._prefix_filter(account_id, name_prefix),
            fields=UserSummary.FIELDS,
            all_pages=True,
            per_page=500,
        )
        users = [UserSummary.from_record(r) for r in records]
        return [u for u in users if u.account_id == account_id and u.name.startswith(name_prefix)]

    async def list_user_names(self, account_id: str, *, name_prefix: str) -> dict[str, str]:
        """Names -> ids of the account's users whose name starts with ``name_prefix``.

        A light listing (no creds, no JWTs): one request per page of 500 users.
        """
        records = await self.list_records(
            USERS,
            filter=self._prefix_filter(account_id, name_prefix),
            fields="id,account,name",
            all_pages=True,
            per_page=500,
        )
        names: dict[str, str] = {}
        for record in records:
            user_id, account, name = (record.get(k) for k in ("id", "account", "name"))
            if not is_record_id(user_id) or not isinstance(name, str):
                raise TowerBadResponse("nats_auth_users answered a record without id/name")
            if account == account_id and name.startswith(name_prefix):
                names[name] = str(user_id)
        return names


@dataclass(frozen=True, slots=True)
class _Failed:
    """A failed attempt of a request: why, and whether repeating it is safe."""

    failure: str
    retry: bool
    status: int | None = None
    retry_after: float | None = None
    cause: BaseException | None = None


def _unseen(items: list[dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """Records not seen on an earlier page (an insert while paging shifts records)."""
    fresh = []
    for item in items:
        record_id = item.get("id")
        if isinstance(record_id, str):
            if record_id in seen:
                continue
            seen.add(record_id)
        fresh.append(item)
    return fresh


def _last_page(items: list[dict[str, Any]], page: int, per_page: int, total: int | None) -> bool:
    if not items:
        return True
    return len(items) < per_page if total is None else page >= total


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _pocketbase_error(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The message and per-field codes of a PocketBase error body (tolerant of junk)."""
    try:
        data = response.json()
    except ValueError:
        return "", {}
    if not isinstance(data, dict):
        return "", {}
    message = data.get("message")
    fields: dict[str, str] = {}
    details = data.get("data")
    if isinstance(details, dict):
        for name, detail in details.items():
            if isinstance(detail, dict) and isinstance(detail.get("code"), str):
                fields[str(name)] = detail["code"]
            elif isinstance(detail, str):
                fields[str(name)] = detail
    return (message if isinstance(message, str) else ""), fields


def _parse_page(collection: str, data: object) -> tuple[list[dict[str, Any]], int | None]:
    """Items and totalPages (None when unknown) of a PocketBase list answer."""
    if not isinstance(data, dict):
        raise TowerBadResponse(f"GET {collection}: the list answer is not a JSON object")
    items = data.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TowerBadResponse(f"GET {collection}: the list answer has no 'items' list of objects")
    total = data.get("totalPages")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        total = None
    return items, total
