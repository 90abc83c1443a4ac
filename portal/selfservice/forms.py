from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import DataRequired, Length


class SettingsForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    display_colour = StringField("Display colour", validators=[DataRequired(), Length(max=7)],
                                 description="# and six hexadecimal digits, shown along the top of your pages.")
    support_access = BooleanField("Our support staff may look into this account when you ask them to")
    session_minutes = IntegerField("A sign-in lasts (minutes)", validators=[DataRequired()])
