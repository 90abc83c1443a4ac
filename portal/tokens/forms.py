from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.form_fields import WholeNumberField
from portal.tokens import services


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    scopes = SelectMultipleField("Scopes", choices=[SelectChoice(k, v) for k, v in services.SCOPES.items()],
                                 option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False))
    days = WholeNumberField("Lasts (days; blank: until revoked)", low=services.DAYS[0], high=services.DAYS[1],
                            unit="days", optional=True)
