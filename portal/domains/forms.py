from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class DomainForm(FlaskForm):
    domain = StringField(
        "Domain",
        validators=[DataRequired(), Length(max=253, message="A domain name has at most 253 characters.")],
        description="A domain of yours, such as shop.example.com; then create the TXT record shown.",
    )
