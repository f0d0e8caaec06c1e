"""User ids: opaque, as the app's user model has them (a UUID, a string or an int).

The one rule, used by every entry point and every store:

- a ``UUID`` stays that ``UUID``;
- a string holding a UUID in its canonical form (``str(uuid)``: lower-case, hyphenated)
  becomes that ``UUID``, so a user given as a UUID or as its string is one user;
- any other string (``"alice"``, ``"auth0|5f7c..."``, ``"42"``, a UUID in upper case or
  without hyphens) stays that string: 1 to 255 characters, no control characters;
- an ``int`` (not a ``bool``) becomes its decimal string, so ``42`` and ``"42"`` are one
  user and every store keeps it exactly (parse it back with the app's own ``parse_id``).

Whatever the input, ``str(coerce_user_id(x)) == str(x)``.
"""

from __future__ import annotations

import re
from typing import TypeAlias
from uuid import UUID

from ._errors import InvalidUserIdError

UserId: TypeAlias = "UUID | str"
"""A session's user id, as ``coerce_user_id`` makes it."""

#: Longest user id kept (the SQL store's column length).
MAX_USER_ID_LENGTH = 255

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# C0 and C1 control characters and DEL (Unicode category Cc).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ACCEPTED = "a UUID, an int, or a string of 1 to 255 characters without control characters"


def coerce_user_id(value: object) -> UserId:
    """Return ``value`` as a user id by the module's rule; raise ``InvalidUserIdError`` if not one.

    A ``UUID`` stays that ``UUID``; a string holding a UUID in its canonical form
    (``str(uuid)``) becomes that ``UUID``; any other string (1 to 255 characters, no
    control characters) stays that string; an ``int`` (not a ``bool``) becomes its decimal
    string. Whatever the input, ``str(coerce_user_id(x)) == str(x)``.

    Examples:
        >>> coerce_user_id("6a1ef8b0-61f1-4d0c-9f7c-3f1e2d6b9a10")
        UUID('6a1ef8b0-61f1-4d0c-9f7c-3f1e2d6b9a10')
        >>> coerce_user_id(42), coerce_user_id("auth0|5f7c8ec7")
        ('42', 'auth0|5f7c8ec7')
    """
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        if not value or len(value) > MAX_USER_ID_LENGTH or _CONTROL.search(value):
            raise InvalidUserIdError(f"user id must be {_ACCEPTED}, got {_shown(value)}")
        return stored_user_id(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidUserIdError(
        f"user id must be {_ACCEPTED}, got {type(value).__name__} {_shown(value)}"
    )


def stored_user_id(text: str) -> UserId:
    """The user id a store kept as ``text`` (``str`` of a ``coerce_user_id`` result).

    Stores call this for every session they read back, so it skips the validation
    ``coerce_user_id`` did when the id was written.
    """
    return UUID(text) if len(text) == 36 and _CANONICAL_UUID.fullmatch(text) else text


def _shown(value: object) -> str:
    # Enough of the value to recognise it, never a wall of text in an error message.
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
