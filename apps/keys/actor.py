"""An API key standing in for a user during one request.

The REST API and the gateway put a :class:`KeyActor` where a session call has
``request.user``, so services, selectors and :mod:`apps.teams.permissions`
serve both callers through the same code: ``can`` asks the key's scopes,
``user_of`` gives None for ``created_by`` columns and ``api_key_of`` gives the
key for the columns that record it.
"""

from apps.keys.auth import scope_allows
from apps.keys.models import ApiKey


class KeyActor:
    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}…"

    @property
    def email(self) -> str:
        return ""

    def key_allows(self, team, action) -> bool:
        return team.pk == self.api_key.team_id and scope_allows(self.api_key, action)

    def may_use(self, *, assistant=None, model: str | None = None) -> str:
        """Why this key may not use the assistant or raw model, or "" when it may.

        A key bound to an assistant uses that one only and no raw model. A
        non-empty ``allowed_models`` lists assistant slugs and model ids; an
        assistant passes when its slug or its model is listed.
        """
        key = self.api_key
        if key.assistant_id is not None:
            if assistant is None or assistant.pk != key.assistant_id:
                return "This API key is bound to another assistant."
            return ""
        allowed = set(key.allowed_models or ())
        if not allowed:
            return ""
        if assistant is not None:
            if assistant.slug in allowed or assistant.model in allowed:
                return ""
            return f"This API key may not use the assistant {assistant.slug!r}."
        if model is not None and model not in allowed:
            return f"This API key may not use the model {model!r}."
        return ""
