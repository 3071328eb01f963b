"""The assistant form offers the models each backend serves; a name a backend
doesn't list is refused, and only a backend that lists none takes a typed name."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.assistants.models import Assistant
from apps.inference.tests.factories import (
    azure_backend,
    compatible_backend,
    local_backend,
    team_with_admin,
)


def form_data(backend, model, **extra):
    return {
        "name": "Writer",
        "backend": backend.pk,
        "model": model,
        "instructions_source": "inline",
        "instructions": "Write.",
        "memory_messages": 10,
        **extra,
    }


@pytest.mark.django_db
def test_the_form_lists_each_backends_models_and_refuses_others(client):
    team, admin = team_with_admin()
    local = local_backend(team, admin)
    compatible_backend(team, admin, name="Sim", models=["sim-small", "sim-large"])
    azure_backend(team, admin)
    client.force_login(admin)
    url = reverse("assistants:list", args=[team.slug])
    page = client.get(url).content.decode()
    assert f'data-backend="{local.pk}"' in page and 'value="local-echo"' in page
    assert 'value="sim-small"' in page and 'value="__other__"' in page
    assert page.count('value="__other__"') == 1  # only the backend that lists nothing

    refused = client.post(url, form_data(local, "gpt-4o"))
    assert refused.status_code == 400
    assert "does not serve the model" in refused.content.decode()
    assert not Assistant.objects.exists()


@pytest.mark.django_db
def test_a_backend_without_a_list_takes_the_typed_name(client):
    team, admin = team_with_admin()
    azure = azure_backend(team, admin)
    client.force_login(admin)
    url = reverse("assistants:list", args=[team.slug])
    missing = client.post(url, form_data(azure, "__other__"))
    assert missing.status_code == 400 and "Type the model" in missing.content.decode()
    created = client.post(url, form_data(azure, "__other__", model_other="gpt-4o-prod"))
    assert created.status_code == 302
    assistant = Assistant.objects.get()
    assert assistant.model == "gpt-4o-prod"
    settings_page = client.get(
        reverse("assistants:settings", args=[team.slug, assistant.slug])
    ).content.decode()
    assert 'value="gpt-4o-prod"' in settings_page  # the typed name comes back in its box


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_model_list_follows_the_backend_in_the_browser(page):
    team, admin = team_with_admin()
    local = local_backend(team, admin)
    sim = compatible_backend(team, admin, name="Sim", models=["sim-small", "sim-large"])
    azure = azure_backend(team, admin)
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    page.goto(f"/t/{team.slug}/assistants/")
    backend, model = (
        page.get_by_label("Backend", exact=True),
        page.get_by_label("Model", exact=True),
    )
    name_box = page.get_by_label("Model name", exact=True)

    def enabled_models():
        return model.evaluate(
            "s => [...s.options].filter(o => !o.disabled && !o.parentElement.disabled).map(o => o.value)"
        )

    backend.select_option(str(sim.pk))
    assert enabled_models() == ["sim-large", "sim-small"] and model.input_value() == "sim-large"
    expect(name_box).to_be_hidden()
    backend.select_option(str(local.pk))
    assert enabled_models() == ["local-echo"]
    backend.select_option(str(azure.pk))
    assert enabled_models() == ["__other__"]
    expect(name_box).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Azure bot")
    name_box.fill("gpt-4o-prod")
    page.get_by_role("button", name="Create assistant").click()
    expect(page).to_have_url(re.compile(rf"/t/{team.slug}/assistants/azure-bot/$"))
    assert Assistant.objects.get().model == "gpt-4o-prod"
