from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class PlacementForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=63)])
    url_env = StringField("Environment variable with the owner URL", validators=[Optional(), Length(max=128)],
                          description="Blank: the registry's own server. The URL itself never enters the registry.")
    capacity = IntegerField("Capacity (silo tenants)", validators=[DataRequired(), NumberRange(1, 100_000)])


class DrainForm(FlaskForm):
    to = SelectField("Move its tenants to", choices=[])
