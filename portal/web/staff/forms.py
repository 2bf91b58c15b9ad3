"""Forms for the staff portal's sign-in."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from portal.services.staff import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    """Email and password; ``next`` carries the page to return to (checked by the view)."""

    # No format validator: a malformed email is just an unknown account, answered the same way.
    email = EmailField(
        "Email", validators=[DataRequired("Enter your email."), Length(max=MAX_EMAIL_LENGTH)]
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=MAX_PASSWORD_LENGTH)],
    )
    next = HiddenField()
