"""Checks of user input shared by several services; each raises Refused."""
from email_validator import EmailNotValidError, validate_email

from portal.services.errors import Refused


def normalise_email(email, field="email"):
    try:
        return validate_email(email or "", check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Refused(f"Enter a valid email address ({exc}).", field) from None


def check_name(name, field="name", required=True):
    name = (name or "").strip()
    if required and not name:
        raise Refused("Enter a name.", field)
    if len(name) > 120:
        raise Refused("A name is at most 120 characters.", field)
    return name
