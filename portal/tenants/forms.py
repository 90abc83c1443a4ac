from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.tenancy.slugs import SLUG_RULE


class CreateTenantForm(FlaskForm):
    slug = StringField("Slug", validators=[DataRequired()],
                       description=f"{SLUG_RULE} It becomes the address.")
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    plan = SelectField("Plan", choices=[])
    tier = SelectField("Tier", choices=[], default="", description="Where its data lives; the plan names a default.")
    placement = SelectField("Placement (silo only)", choices=[], default="")
    admin_email = EmailField("First admin's email", validators=[DataRequired(), Length(max=254)])


class RenameForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])


class ChangePlanForm(FlaskForm):
    plan = SelectField("Plan", choices=[])


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=500)])


class ConfirmForm(FlaskForm):
    confirm = StringField("Type the tenant's slug to confirm", validators=[DataRequired(), Length(max=63)])


class ImportForm(FlaskForm):
    archive = FileField("Export (.zip)", validators=[FileRequired()])
    slug = StringField("New slug", validators=[DataRequired()])
    name = StringField("Name (default: the exported tenant's)", validators=[Length(max=120)])
    plan = SelectField("Plan", choices=[], default="")
    tier = SelectField("Tier", choices=[], default="")
    placement = SelectField("Placement (silo only)", choices=[], default="")
