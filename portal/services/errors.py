class Refused(Exception):
    """An operation refused for bad input or a rule. `field` names the form field the
    message belongs beside (None: a message for the page)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field
