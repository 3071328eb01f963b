"""``Authorization: Bearer aip_...`` for the REST API, next to session auth.

A valid key becomes ``request.user`` as a :class:`~apps.keys.actor.KeyActor`,
so the routers need not know which kind of caller they serve. A bearer header
that is present but wrong is refused outright (401) rather than falling back
to a session cookie, so a program never acts as whoever is signed in.
"""

from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from apps.keys import auth, limits
from apps.keys.actor import KeyActor


class KeyRejected(AuthenticationError):
    """A bearer key that is malformed, unknown, revoked or expired."""

    def __init__(self, message: str):
        super().__init__(status_code=401, message=message)


def actor_for_header(header: str) -> KeyActor:
    """The actor for an ``Authorization`` header value; KeyRejected otherwise."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise KeyRejected("Send the API key as 'Authorization: Bearer <key>'.")
    key, reason = auth.check(token.strip())
    if key is None:
        raise KeyRejected(reason)
    return KeyActor(key)


class ApiKeyBearer(HttpBearer):
    openapi_description = "A team API key: `Authorization: Bearer aip_<public id>_<secret>`."
    openapi_bearerFormat = "aip_<public id>_<secret>"

    def __call__(self, request):
        header = request.headers.get("Authorization")
        if header is None:
            return None  # let session auth try
        actor = actor_for_header(header)
        limits.require_request(actor.api_key)
        request.user = actor
        return actor

    def authenticate(self, request, token):  # pragma: no cover - __call__ decides
        return None
