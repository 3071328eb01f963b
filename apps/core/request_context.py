"""The id of the request being served, visible to logging in any thread or task."""

import contextvars

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
