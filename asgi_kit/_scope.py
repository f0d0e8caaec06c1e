"""What the request path leaves on a request's scope: the key, and Starlette's user."""

from __future__ import annotations

from starlette.authentication import BaseUser

from ._models import Session

SCOPE_KEY = "asgi_kit.auth"
"""The scope key under which the request path leaves the ``Session``, or the ``AnonymousReason``
saying why there is none (read it with ``request_session``)."""


class SessionUser(BaseUser):
    """The Starlette user of an authenticated request; ``identity`` is the user id."""

    def __init__(self, session: Session) -> None:
        self.session = session
        """The request's session."""

    @property
    def is_authenticated(self) -> bool:
        """Always True."""
        return True

    @property
    def display_name(self) -> str:
        """The user id as a string."""
        return str(self.session.user_id)

    @property
    def identity(self) -> str:
        """The user id as a string."""
        return str(self.session.user_id)
