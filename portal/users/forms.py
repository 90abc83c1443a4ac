from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Length


class AddUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Length(max=120)])
    # Choices are the tenant's roles, set by the view; the service checks the choice.
    role = SelectField("Role", default="member", validate_choice=False)


class RoleChoiceForm(FlaskForm):
    role = SelectField("Role", validate_choice=False)
