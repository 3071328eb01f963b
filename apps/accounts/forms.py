"""Sign-up and sign-in forms; the messages here are what a user sees on bad input."""

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts import throttle

User = get_user_model()


class SignupForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    display_name = forms.CharField(label="Your name", max_length=150, required=False)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail already exists. Sign in instead.", code="email_taken"
            )
        return email

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            candidate = User(
                email=cleaned.get("email") or "", display_name=cleaned.get("display_name") or ""
            )
            try:
                password_validation.validate_password(password1, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing to even try once the failure budget is spent."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins. Try again in %(minutes)s minutes.",
    }

    def clean(self):
        email = (self.data.get("username") or "").strip()
        ip = _client_ip(self.request)
        if throttle.login_blocked(email=email, ip=ip):
            raise forms.ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": throttle.lockout_minutes()},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.login_failure_record(email=email, ip=ip)
            raise
        throttle.login_success_record(email=email)
        return cleaned


def _client_ip(request) -> str:
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"
