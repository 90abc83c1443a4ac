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


def check_text(text, field, what, max_length, required=True, multiline=False, missing=None):
    """`text` stripped, as a field may hold it: present when `required` (else `missing`,
    or "Enter <what>."), at most `max_length` characters, and no control characters — nor,
    unless `multiline`, a line break or a tab."""
    text = (text or "").strip()
    if required and not text:
        raise Refused(missing or f"Enter {what}.", field)
    if len(text) > max_length:
        raise Refused(f"{what[0].upper()}{what[1:]} is at most {max_length:,} characters.", field)
    allowed = "\n\t" if multiline else ""
    if any(not ch.isprintable() and ch not in allowed for ch in text.replace("\r\n", "\n")):
        line = "" if multiline else ", line breaks or tabs"
        raise Refused(f"{what[0].upper()}{what[1:]} may not hold control characters{line}.", field)
    return text


def check_name(name, field="name", required=True):
    return check_text(name, field, "a name", 120, required)


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
