"""The demo's two accounts and a password check that takes as long for unknown users."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

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

    def verify(self, username: str, password: str) -> Account | None:
        """The account if ``password`` is right for ``username``, else None (same cost)."""
        account = self.by_name.get(username)
        candidate = account or self._dummy
        digest = hash_password(password, candidate.salt)
        matches = hmac.compare_digest(digest, candidate.password_hash)
        return account if matches and account is not None else None
