from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from portal.services import entitlements


class OverrideForm(FlaskForm):
    key = SelectField("Override", choices=[])
    value = StringField("Value", validators=[Length(max=20)],
                        description="A feature: on or off. A limit: a number, or blank for unlimited.")
    until = DateField("Until (optional: a trial)", validators=[Optional()])
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=500)])


def override_form(form=None):
    form = form or OverrideForm()
    form.key.choices = [SelectChoice(f"feature:{k}", f"Feature: {v}") for k, v in entitlements.FEATURES.items()] + [
        SelectChoice(f"limit:{k}", f"Limit: {v}") for k, v in entitlements.LIMITS.items()]
    return form


class AskForm(FlaskForm):
    plan = SelectField("Move to", choices=[])
