"""Forms of the staff pages. The service checks every value (portal/staff/services.py):
the forms only carry them, so the pages, the CLI and the rules agree."""
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField


class InviteForm(FlaskForm):
    email = EmailField("Email")
    name = StringField("Name", description="Optional: how the console greets them.")
    # Choices: the roles the signed-in member may grant, set by the view.
    role = SelectField("Role", default="viewer", validate_choice=False)


class RoleForm(FlaskForm):
    role = SelectField("Role", validate_choice=False)
