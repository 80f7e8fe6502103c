from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm

from . import services
from .models import Member


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self):
        return services.normalize_email(self.cleaned_data["username"])


class SignUpForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    first_name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"autocomplete": "given-name"})
    )
    last_name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"autocomplete": "family-name"})
    )
    password1 = forms.CharField(
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    referral_code = forms.CharField(label="Referral code (optional)", max_length=12, required=False)
    marketing_consent = forms.BooleanField(
        label="Send me offers and news by email (you can withdraw this at any time)", required=False
    )

    def clean_email(self):
        email = services.normalize_email(self.cleaned_data["email"])
        if services.find_existing_member(email=email, external_id=None):
            raise forms.ValidationError(
                "This email is already enrolled. Log in, or reset your password "
                "to claim the account."
            )
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError("This email cannot be used. Please choose another one.")
        return email

    def clean_referral_code(self):
        code = self.cleaned_data["referral_code"].strip().upper()
        if code and not Member.objects.filter(referral_code=code).exists():
            raise forms.ValidationError("This referral code is not known.")
        return code

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords do not match.")
        elif p1:
            user = get_user_model()(
                username=data.get("email") or "",
                email=data.get("email") or "",
                first_name=data.get("first_name") or "",
                last_name=data.get("last_name") or "",
            )
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class ProfileForm(forms.ModelForm):
    email = forms.EmailField()
    country = forms.CharField(label="Country (two-letter code)", max_length=60, required=False)

    class Meta:
        model = Member
        fields = [
            "email",
            "first_name",
            "last_name",
            "phone",
            "birth_date",
            "country",
            "city",
            "preferred_channel",
            "locale",
        ]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"})}

    def clean_email(self):
        email = services.normalize_email(self.cleaned_data["email"])
        other = services.find_existing_member(email=email, external_id=None)
        if other and other.pk != self.instance.pk:
            raise forms.ValidationError("Another account already uses this email.")
        return email

    def clean_country(self):
        country = self.cleaned_data["country"].strip().upper()
        if country and (len(country) != 2 or not country.isalpha()):
            raise forms.ValidationError("Use the two-letter country code, e.g. NL or DE.")
        return country


class ConsentForm(forms.Form):
    marketing_consent = forms.BooleanField(
        label="Send me offers and news (you can withdraw this at any time)", required=False
    )


class CloseAccountForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        label="I understand that my account is closed for good and my points are lost."
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("The password is not correct.")
        return password


class ClaimablePasswordResetForm(PasswordResetForm):
    """Also lets a member enrolled at a till or by API (no password yet) set one."""

    def get_users(self, email):
        email = services.normalize_email(email)
        return get_user_model().objects.filter(
            email__iexact=email, is_active=True, member__isnull=False
        )
