import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.tests.factories import PASSWORD, UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db


def signup(client, email="new@example.com", password="a-long-unusual-passphrase", **extra):
    data = {
        "email": email,
        "display_name": "New Person",
        "password1": password,
        "password2": password,
    }
    data.update(extra)
    return client.post(reverse("accounts:signup"), data)


def test_signup_creates_account_with_argon2_and_signs_in(client):
    response = signup(client)
    assert response.status_code == 302
    assert response.url == reverse("dashboard:home")
    user = User.objects.get(email="new@example.com")
    assert user.password.startswith("argon2")
    assert client.get(reverse("dashboard:home")).url == reverse("teams:create")


def test_signup_with_taken_email_is_refused_case_insensitively(client):
    UserFactory(email="taken@example.com")
    response = signup(client, email="Taken@Example.com")
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "too short"), ("password123", "too common"), ("8734629105723", "entirely numeric")],
)
def test_signup_with_weak_password_is_refused(client, password, message):
    response = signup(client, password=password)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()


def test_signup_with_mismatched_passwords(client):
    response = signup(client, password2="something-else-entirely")
    assert response.status_code == 400
    assert "differ" in response.content.decode()


def test_login_and_logout(client):
    user = UserFactory()
    response = client.post(
        reverse("accounts:login"), {"username": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard:home")).status_code == 302  # to team creation
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("dashboard:home")).url.startswith(reverse("accounts:login"))


def test_login_with_wrong_password_is_400(client):
    user = UserFactory()
    response = client.post(reverse("accounts:login"), {"username": user.email, "password": "nope"})
    assert response.status_code == 400
    assert "correct" in response.content.decode()


def test_login_is_throttled_after_repeated_failures_even_with_right_password(client, settings):
    settings.LOGIN_THROTTLE_MAX_FAILURES = 3
    user = UserFactory()
    for _ in range(3):
        assert (
            client.post(
                reverse("accounts:login"), {"username": user.email, "password": "wrong"}
            ).status_code
            == 400
        )
    response = client.post(
        reverse("accounts:login"), {"username": user.email, "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_throttle_counts_per_address_across_accounts(client, settings):
    settings.LOGIN_THROTTLE_MAX_FAILURES = 2
    victim = UserFactory()
    for n in range(2):
        client.post(
            reverse("accounts:login"), {"username": f"guess{n}@example.com", "password": "x"}
        )
    response = client.post(
        reverse("accounts:login"), {"username": victim.email, "password": PASSWORD}
    )
    assert response.status_code == 429


def test_password_change(client):
    user = UserFactory()
    client.force_login(user)
    new = "another-long-passphrase-42"
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)


def test_password_change_with_wrong_old_password(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": "wrong",
            "new_password1": "x-long-pass-99",
            "new_password2": "x-long-pass-99",
        },
    )
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_open_redirect_is_ignored(client):
    response = signup(client, next="https://evil.example/")
    assert response.url == reverse("dashboard:home")
