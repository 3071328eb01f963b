"""A team set up the way a newcomer's checklist asks, with a bit of history, made
through the services; and signing a browser in without the login form."""

from concurrent.futures import ThreadPoolExecutor

from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from apps.assistants import services as assistant_services
from apps.inference import executor
from apps.inference import services as inference_services
from apps.inference.tests.factories import local_backend
from apps.keys.tests.factories import make_key
from apps.prompts import services as prompt_services
from apps.prompts.tests.factories import add_version, make_prompt
from apps.quotas import services as quota_services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of


def sign_in(page, server_url: str, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": server_url,
            }
        ]
    )


def in_thread(fn, *args):
    """Run ``fn`` in a fresh thread: the executor's channel-layer sends use async_to_sync,
    which refuses the main thread once Playwright keeps a loop running there."""

    def call():
        try:
            return fn(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def set_up_team(*, name: str = "Set Up", long_names: bool = True) -> dict:
    """A team with a prompt of several versions and labels, an assistant on it, a key,
    a finished run (so usage, events and a run page exist) and a quota."""
    team = TeamFactory(name=name)
    owner = member_of(team, Role.OWNER)
    backend = local_backend(team, owner)
    long = " and a rather long commit message that does not fit a phone" if long_names else ""
    prompt = make_prompt(team, owner, name="Support reply", system="You help {{ company }}.")
    versions = [
        add_version(prompt, owner, f"Version {n}: help {{{{ company }}}} in {{{{ language }}}}.")
        for n in range(2, 6)
    ]
    prompt_services.version_create(
        prompt=prompt,
        actor=owner,
        system="Be brief with {{ company }} customers about {{ product_name_variable }}.",
        messages=[{"role": "user", "content": "Question about {{ product_name_variable }}"}],
        parameters={"temperature": 0.2, "max_tokens": 300},
        commit_message="v6" + long,
    )
    for label, version in [
        ("production", versions[0]),
        ("staging", versions[2]),
        ("canary-eu-west", versions[3]),
    ]:
        prompt_services.label_move(prompt=prompt, actor=owner, label=label, version=version)
    prompt_services.label_move(prompt=prompt, actor=owner, label="production", version=versions[1])
    assistant = assistant_services.assistant_create(
        team=team,
        actor=owner,
        name="Helpdesk",
        description="Answers questions about the portal" + long,
        backend=backend.pk,
        model="local-echo",
        instructions_source="label",
        prompt=prompt.slug,
        prompt_label="production",
    )
    key, raw = make_key(team, owner, name="ci-bot", scopes=["chat", "read"])
    run = inference_services.run_create(
        team=team,
        actor=owner,
        backend_id=backend.pk,
        model="local-echo",
        messages=[{"role": "user", "content": "Hello" + long}],
        assistant=assistant,
    )
    assert in_thread(executor.execute, run.pk) == "succeeded"
    quota_services.quota_create(team=team, actor=owner, token_budget=100000, requests_per_minute=60)
    return {
        "team": team,
        "owner": owner,
        "backend": backend,
        "prompt": prompt,
        "assistant": assistant,
        "key": key,
        "raw": raw,
        "run": run,
    }
