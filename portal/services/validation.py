"""Checks of user input shared by several services; each raises Refused."""
import unicodedata

from confusable_homoglyphs import confusables
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


def skeleton(text):
    """How `text` reads, for telling names apart: NFKC-normalised, invisible characters
    dropped, case folded, and every letter that looks like a Latin one (a Cyrillic "А",
    a Greek "ο") taken as that Latin letter. "Аdmin" and "admin" have one skeleton."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", text or "") if unicodedata.category(ch) != "Cf")
    out = []
    for ch in text:
        found = confusables.is_confusable(ch, preferred_aliases=["latin"]) if not ch.isascii() else False
        latin = [g["c"] for hit in found or () for g in hit["homoglyphs"] if g["c"].isascii()]
        out.append(latin[0] if latin else ch)
    return "".join(out).casefold().strip()
