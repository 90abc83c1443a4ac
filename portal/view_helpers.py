"""Helpers shared by the views of the staff console and the tenant pages (no views of its own)."""
from flask import abort, flash, request, session, url_for
from flask_wtf import FlaskForm

from portal.services.errors import Refused


def show_refusal(form, exc, default_field=None):
    """Put a refused operation's message (portal.services.errors.Refused) beside the field
    it names, else beside `default_field`; with neither, flash it for the page."""
    name = exc.field or default_field
    field = getattr(form, name, None) if name else None
    if field is not None:
        field.errors = list(field.errors) + [exc.message]
    else:
        flash(exc.message, "error")


def confirmed_action(action, done):
    """The body of a POST whose form holds nothing but its CSRF token: run `action()`;
    flash its refusal, or `done` (a message, or a function of the result, for it).
    Returns whether it was done. (An unknown object is NotFound: 404, by its handler.)"""
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        result = action()
    except Refused as exc:
        flash(exc.message, "error")
        return False
    flash(done(result) if callable(done) else done, "success")
    return True


MAX_PAGE = 100_000


def page_number():
    """The `page` query argument, from 1 to MAX_PAGE: anything else is page 1, and a page
    past the end of a list shows as its last page does — empty — not as an error."""
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        return 1
    return min(max(1, int(raw)), MAX_PAGE)


def tenant_path(tenant, endpoint, **values):
    """A path on `tenant`'s own pages, by its /t/<slug>/ prefix, built from the staff
    console (where url_for knows no tenant). This host serves every tenant's pages."""
    return f"/t/{tenant.slug}" + url_for(endpoint, **values)


def keep_for_next_page(key, value):
    """Hand `value` (JSON-able) to the page a POST redirects to: the POST answers 302
    (a reload does not make the thing again) and the next page shows what it made, once."""
    session[f"once:{key}"] = value


def take_from_last_page(key):
    """What keep_for_next_page left under `key`, removed as it is read: None on a reload,
    on a second tab, or when nothing was made."""
    return session.pop(f"once:{key}", None)


def no_store(response):
    """A page that shows a secret once: the browser keeps no copy of it (no cache, no
    back-forward copy)."""
    response.headers["Cache-Control"] = "no-store"
    return response
