from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.form_fields import WholeNumberField
from portal.lifecycle.placements import CAPACITY


class PlacementForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=63)])
    url_env = StringField("Environment variable with the owner URL", validators=[Optional(), Length(max=128)],
                          description="Blank: the registry's own server. The URL itself never enters the registry.")
    capacity = WholeNumberField("Capacity (silo tenants)", low=CAPACITY[0], high=CAPACITY[1], unit="tenants")


class DrainForm(FlaskForm):
    to = SelectField("Move its tenants to", choices=[])
