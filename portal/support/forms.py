from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.form_fields import WholeNumberField
from portal.support.services import MAX_MINUTES, NO_REASON, NO_TICKET


class StartImpersonationForm(FlaskForm):
    # Not checked against its choices: a user not of this tenant is a 404 (the service's
    # lookup), not a form error that would confirm or deny anything.
    user = SelectField("User", choices=[], validate_choice=False)
    reason = TextAreaField("Reason", validators=[DataRequired(NO_REASON), Length(max=500)],
                           description="Shown in the tenant's own audit log.")
    ticket = StringField("Ticket", validators=[DataRequired(NO_TICKET), Length(max=64)])
    minutes = WholeNumberField("Minutes", default=15, low=1, high=MAX_MINUTES, unit="minutes",
                               description=f"At most {MAX_MINUTES}; it ends by itself then.")
    write = BooleanField("Allow changes (write access)")
    write_reason = TextAreaField("Why changes are needed", validators=[Optional(), Length(max=500)],
                                 description="Required with write access; without it the impersonation is read-only.")
    override_reason = TextAreaField("Reason for overriding the tenant's choice",
                                    validators=[Optional(), Length(max=500)],
                                    description="The tenant has turned support access off; its audit log will say "
                                                "that you went in anyway, and why.")
