from __future__ import annotations

from asgi_kit import Session
from fastapi_users.extensions.session_manager import EndReason, SessionManager

security_notices: list[tuple[str, str]] = []  # stands in for your mailer or event bus


class AuditedSessionManager(SessionManager):
    async def on_after_create(self, session: Session) -> None:
        await super().on_after_create(session)  # keeps the default audit log line
        where = session.device.label if session.device else "an unknown device"
        security_notices.append((str(session.user_id), f"New sign-in from {where}"))

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        await super().on_after_end(session, reason)
        if reason in (EndReason.EVICTED, EndReason.REVOKED_BY_ADMIN):
            security_notices.append((str(session.user_id), f"A session ended: {reason.value}"))


manager = AuditedSessionManager()
