"""Writes for user accounts."""

from django.contrib.auth import get_user_model
from django.db import transaction

User = get_user_model()


@transaction.atomic
def user_create(*, email: str, password: str, display_name: str = "") -> User:
    return User.objects.create_user(email=email, password=password, display_name=display_name)
