"""Form fields shared by the portal's forms (Flask-WTF), with one precise message each.

`WholeNumberField`: WTForms' IntegerField with DataRequired says "This field is required"
for 0 (a falsy value) and for text (no value), and with NumberRange it adds a second error
("Not a valid integer value." and "Number must be between …"). This field gives exactly
one message for every wrong input, naming the bounds: "Enter a whole number of minutes
from 5 to 10080." The services check the same bounds again (forms, CLI and API agree).
"""
import re

from wtforms import IntegerField
from wtforms.validators import StopValidation

_WHOLE = re.compile(r"^[+-]?[0-9]{1,18}$")  # ASCII digits only; beyond 18 is out of every range anyway


def whole_number_message(low, high, unit=None, optional=False):
    """"Enter a whole number [of <unit>] from <low> to <high>[, or leave it blank].\""""
    of = f" of {unit}" if unit else ""
    blank = ", or leave it blank" if optional else ""
    return f"Enter a whole number{of} from {low} to {high}{blank}."


class WholeNumberField(IntegerField):
    """A whole number from `low` to `high` (inclusive); blank allowed when `optional`
    (its data is then None). Any other input — text, a decimal, out of range, blank when
    required — gets the one `message` (by default `whole_number_message`), and the input
    stays in the field as typed."""

    def __init__(self, label=None, validators=None, *, low, high, unit=None, optional=False, message=None,
                 **kwargs):
        super().__init__(label, validators, **kwargs)
        self.low, self.high, self.optional = low, high, optional
        self.message = message or whole_number_message(low, high, unit, optional)
        self._unreadable = False

    def process_formdata(self, valuelist):
        self._unreadable = False
        if not valuelist:  # not in the submitted form at all: the default stays, as IntegerField does
            return
        raw = valuelist[0].strip() if isinstance(valuelist[0], str) else ""
        if not raw:
            self.data = None
        elif _WHOLE.match(raw):
            self.data = int(raw)
        else:
            self.data, self._unreadable = None, True

    def pre_validate(self, form):
        if self._unreadable or (self.data is None and not self.optional) or (
                self.data is not None and not self.low <= self.data <= self.high):
            raise StopValidation(self.message)
        if self.data is None:  # blank and optional: nothing more to check
            raise StopValidation()
