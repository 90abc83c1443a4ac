class NotFound(LookupError):
    """The one "not found": a missing object, another tenant's, or a malformed id alike —
    never told apart, so nobody learns what another tenant has. Services raise it; one
    handler (portal/errors.py) answers 404, as a page or as JSON. `message` and `title`,
    when given, say what was not found in words fit for the person asking."""

    def __init__(self, what="", message=None, title=None):
        super().__init__(what)
        self.message, self.title = message, title


class Refused(Exception):
    """An operation refused for bad input or a rule. `field` names the form field the
    message belongs beside (None: a message for the page)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field
