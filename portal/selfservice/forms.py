from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from portal.form_fields import WholeNumberField
from portal.services.tenant_settings import SESSION_MINUTES


class SettingsForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    display_colour = StringField("Display colour", validators=[DataRequired(), Length(max=7)],
                                 description="# and six hexadecimal digits, shown along the top of your pages.")
    support_access = BooleanField("Our support staff may look into this account when you ask them to")
    session_minutes = WholeNumberField("A sign-in lasts (minutes)", low=SESSION_MINUTES[0], high=SESSION_MINUTES[1],
                                       unit="minutes", description="From 5 minutes to 7 days (10080 minutes).")
