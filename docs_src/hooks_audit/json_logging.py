from __future__ import annotations

import json
import logging

FIELDS = ("session_id", "user_id", "reason", "account_event", "count")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        line.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        return json.dumps(line)


handler = logging.StreamHandler()
handler.setFormatter(JsonFormatter())
audit_log = logging.getLogger("asgi_kit.sessions")
audit_log.addHandler(handler)
audit_log.setLevel(logging.INFO)
