"""The demo's two accounts, a password check that takes as long for unknown users, and
the accounts as FastAPI Users' user manager shows them (for ``POST /reauthenticate``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread

if TYPE_CHECKING:
    from fastapi.security import OAuth2PasswordRequestForm

#: Every demo account's password.
DEMO_PASSWORD = "demo"

# scrypt at n=2**14, r=8: 16 MiB and a few tens of milliseconds per check.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 2**20, "dklen": 32}


@dataclass(frozen=True)
class Account:
    """A demo user: fixed id, name, admin flag, and the scrypt hash of the password."""

    id: uuid.UUID
    username: str
    is_admin: bool
    salt: bytes
    password_hash: bytes


def hash_password(password: str, salt: bytes) -> bytes:
    """The scrypt hash of ``password`` with ``salt``."""
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, **_SCRYPT)


def _account(user_id: str, username: str, *, is_admin: bool = False) -> Account:
    salt = secrets.token_bytes(16)
    digest = hash_password(DEMO_PASSWORD, salt)
    return Account(uuid.UUID(user_id), username, is_admin, salt, digest)


class Accounts:
    """The demo accounts (``alice`` is the admin, ``bob`` is not), hashed at start-up.

    ``verify`` hashes the candidate password exactly once whether or not the user
    exists (against a dummy account when it does not), so a wrong user name costs the
    same time as a wrong password and the response does not tell them apart.
    """

    def __init__(self) -> None:
        self.by_name = {
            a.username: a
            for a in (
                _account("a11ce000-0000-4000-8000-000000000001", "alice", is_admin=True),
                _account("b0b00000-0000-4000-8000-000000000002", "bob"),
            )
        }
        self.by_id = {a.id: a for a in self.by_name.values()}
        self._dummy = _account("00000000-0000-4000-8000-000000000000", "")

    def of_user(self, user_id: object) -> Account | None:
        """The account whose id is ``user_id`` (a session's: a UUID here), else None."""
        return self.by_id.get(user_id) if isinstance(user_id, uuid.UUID) else None

    def verify(self, username: str, password: str) -> Account | None:
        """The account if ``password`` is right for ``username``, else None (same cost)."""
        account = self.by_name.get(username)
        candidate = account or self._dummy
        digest = hash_password(password, candidate.salt)
        matches = hmac.compare_digest(digest, candidate.password_hash)
        return account if matches and account is not None else None

    async def verify_in_thread(self, username: str, password: str) -> Account | None:
        """``verify`` in a worker thread: scrypt would hold the event loop up meanwhile."""
        return await anyio.to_thread.run_sync(self.verify, username, password)


@dataclass(frozen=True)
class AccountUser:
    """An account as a FastAPI Users user: its ``email`` is the demo's user name."""

    id: uuid.UUID
    email: str
    is_active: bool = True

    @classmethod
    def of(cls, account: Account) -> AccountUser:
        """``account`` as a user (demo accounts are always active)."""
        return cls(account.id, account.username)


class AccountsUserManager:
    """``Accounts`` shaped like FastAPI Users' user manager (the ``PasswordUserManager``
    protocol), for ``manager.get_reauthenticate_router``: an app with FastAPI Users
    passes its own ``get_user_manager`` instead.

    >>> users = AccountsUserManager(Accounts())  # doctest: +SKIP
    >>> app.include_router(  # doctest: +SKIP
    ...     manager.get_reauthenticate_router(lambda: users), prefix="/auth/sessions"
    ... )
    """

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def parse_id(self, value: Any) -> uuid.UUID:
        """``value`` as an account id (``ValueError`` if it is not a UUID)."""
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    async def get(self, id: uuid.UUID) -> AccountUser:
        """The user of account ``id`` (``LookupError`` if there is none)."""
        account = self.accounts.of_user(id)
        if account is None:
            raise LookupError(f"no account {id}")
        return AccountUser.of(account)

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> AccountUser | None:
        """The user whose name (``username``) and password ``credentials`` carry, else None."""
        account = await self.accounts.verify_in_thread(credentials.username, credentials.password)
        return None if account is None else AccountUser.of(account)
