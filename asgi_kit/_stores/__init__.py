"""The session stores: one protocol (``base``) and its implementations.

``memory`` needs nothing but the core; ``sql`` and ``redis`` need their extras and are
loaded on first use (``optional``); ``server`` is what those two share; ``urls`` picks a
store from a configuration string.
"""

from __future__ import annotations

from .base import ReauthenticatingSessionDatabase, RotatingSessionDatabase, SessionDatabase
from .memory import InMemorySessionDatabase
from .optional import OPTIONAL, load_optional
from .server import purge_periodically
from .urls import session_database_from_url

__all__ = [
    "OPTIONAL",
    "InMemorySessionDatabase",
    "ReauthenticatingSessionDatabase",
    "RotatingSessionDatabase",
    "SessionDatabase",
    "load_optional",
    "purge_periodically",
    "session_database_from_url",
]
