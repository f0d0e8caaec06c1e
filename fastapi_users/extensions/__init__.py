"""Extensions in the FastAPI Users style; see ``fastapi_users.extensions.session_manager``."""
