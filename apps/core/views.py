"""Liveness and readiness endpoints for orchestrators and load balancers, and the favicon."""

from django.http import HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from apps.core.health import run_checks


@never_cache
@require_GET
def healthz(request):
    """The process is up and serving; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Ready only when every configured backing service answers; 503 names the failures."""
    checks = run_checks()
    failed = sorted(name for name, result in checks.items() if result not in {"ok", "skipped"})
    status = 503 if failed else 200
    body = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=status)


@cache_control(public=True, max_age=86400)
@require_GET
def favicon(request):
    """Browsers and tools ask for ``/favicon.ico`` whatever the pages link: send them to
    the static icon (its hashed name in production, so a new icon is picked up)."""
    return HttpResponseRedirect(static("favicon.svg"))
