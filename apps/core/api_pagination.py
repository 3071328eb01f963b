"""One way to page, filter and order every list of the REST API.

A list endpoint is decorated with ``@paginated`` and declares ``response=list[ItemOut]``;
ninja then adds the ``limit`` and ``offset`` query parameters and documents the
answer as ``{"items": [...], "count": <total>, "next_offset": <int or null>}``.
The view returns the whole (filtered, ordered) queryset, or ``Rows(queryset, ...)``
when its rows need turning into schemas: only the requested slice is fetched and
rendered, and ``count`` is one ``COUNT`` in the database.

``Ordering`` is the ``order`` query parameter: a whitelist of fields, each
ascending or (with a leading ``-``) descending, always followed by the primary key
so pages never overlap or skip rows that tie. Bad values of any of these
parameters fail validation: 422 in the API's error schema, naming the parameter.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.db.models import F, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination, paginate

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Far beyond any real list, and well inside PostgreSQL's bigint OFFSET.
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class Rows:
    """What a paginated view returns when its rows need rendering.

    ``each`` turns one model into its schema; ``batch`` turns the whole page at once
    (for lists that look up related data for all rows in one query).
    """

    source: QuerySet | Sequence
    each: Callable[[Any], Any] | None = None
    batch: Callable[[list], list] | None = None
    total: int | None = None  # when the caller knows the count more cheaply than COUNT(*)

    def count(self) -> int:
        if self.total is not None:
            return self.total
        if isinstance(self.source, QuerySet):
            return self.source.count()
        return len(self.source)

    def render(self, page: list) -> list:
        if self.batch is not None:
            return list(self.batch(page))
        if self.each is not None:
            return [self.each(row) for row in page]
        return page


class Pagination(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(
            DEFAULT_LIMIT,
            ge=1,
            le=MAX_LIMIT,
            description=f"How many items to return (1 to {MAX_LIMIT}).",
        )
        offset: int = Field(
            0,
            ge=0,
            le=MAX_OFFSET,
            description="How many items to skip; take it from `next_offset` of the last page.",
        )

    class Output(Schema):
        items: list[Any]
        count: int = Field(description="How many items match in total.", examples=[120])
        next_offset: int | None = Field(
            description="The `offset` of the next page; null on the last page.", examples=[50]
        )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)

    def paginate_queryset(
        self, queryset: Any, pagination: Input, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        rows = queryset if isinstance(queryset, Rows) else Rows(queryset)
        offset, limit = pagination.offset, min(pagination.limit, self.max_limit)
        count = rows.count()
        page = list(rows.source[offset : offset + limit]) if offset < count else []
        end = offset + len(page)
        return {
            "items": rows.render(page),
            "count": count,
            "next_offset": end if page and end < count else None,
        }

    async def apaginate_queryset(
        self, queryset: Any, pagination: Input, request: HttpRequest, **params: Any
    ) -> dict[str, Any]:
        return await sync_to_async(self.paginate_queryset)(queryset, pagination, request)


paginated = paginate(Pagination)


class Ordering:
    """The ``order`` query parameter of one list.

    ``Ordering("name", name="name", created_at="created_at")`` accepts ``name``,
    ``-name``, ``created_at`` and ``-created_at``; the keyword values are the model
    fields (or lookups) they sort by. Empty values sort last either way.
    """

    def __init__(self, default: str, **fields: str) -> None:
        self.fields = fields
        self.values = tuple(value for name in fields for value in (name, f"-{name}"))
        if default not in self.values:
            raise ValueError(f"default order {default!r} is not one of {self.values}")
        self.default = default
        self.type = Literal[self.values]

    def field(self, description: str = "") -> Any:
        """The pydantic field for a query schema: ``order: ORDER.type = ORDER.field()``."""
        names = ", ".join(f"`{name}`" for name in self.fields)
        text = f"Sort by {names}; a leading `-` sorts descending."
        # No ``examples``: ninja copies them onto the parameter as a list, which
        # OpenAPI doesn't allow there; the enum says it all.
        return Field(self.default, description=f"{description} {text}".strip())

    def apply(self, queryset: QuerySet, value: str | None) -> QuerySet:
        value = value or self.default
        descending = value.startswith("-")
        path = self.fields[value.removeprefix("-")]
        if descending:
            keys = [F(path).desc(nulls_last=True), F("pk").desc()]
        else:
            keys = [F(path).asc(nulls_last=True), F("pk").asc()]
        return queryset.order_by(*keys)
