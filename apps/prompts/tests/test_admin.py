import pytest
from django.urls import reverse

from apps.accounts.tests.factories import UserFactory
from apps.prompts import services
from apps.prompts.tests.factories import add_version, make_prompt, team_with_editor

pytestmark = pytest.mark.django_db


def test_admin_pages_browse_prompts_but_do_not_edit_history(client):
    team, editor = team_with_editor()
    prompt = make_prompt(team, editor)
    v2 = add_version(prompt, editor, "v2")
    label = services.label_move(prompt=prompt, actor=editor, label="production", version=v2)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for name in ("prompt", "promptversion", "promptlabel", "labelmove"):
        assert client.get(reverse(f"admin:prompts_{name}_changelist")).status_code == 200, name
    page = client.get(reverse("admin:prompts_prompt_change", args=[prompt.pk]))
    assert page.status_code == 200 and "Initial version" in page.content.decode()
    version_page = client.get(reverse("admin:prompts_promptversion_change", args=[v2.pk]))
    assert version_page.status_code == 200
    assert client.get(reverse("admin:prompts_promptversion_add")).status_code == 403
    assert client.get(reverse("admin:prompts_labelmove_add")).status_code == 403
    changed = client.post(
        reverse("admin:prompts_promptlabel_change", args=[label.pk]), {"name": "hacked"}
    )
    assert changed.status_code == 403
    label.refresh_from_db()
    assert label.name == "production"
