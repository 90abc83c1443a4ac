from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.tokens import services


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    scopes = SelectMultipleField("Scopes", choices=[SelectChoice(k, v) for k, v in services.SCOPES.items()],
                                 option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False))
    days = IntegerField("Lasts (days; blank: until revoked)", validators=[Optional(), NumberRange(1, 365)])
