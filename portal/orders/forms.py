from flask_wtf import FlaskForm
from wtforms import DecimalField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from portal.orders.services import ORDER_STATUSES


class OrderForm(FlaskForm):
    customer = StringField("Customer", validators=[DataRequired(), Length(max=120)])
    amount = DecimalField("Amount", places=2, validators=[InputRequired("Enter an amount, such as 12.50."),
                                                           NumberRange(0, 10_000_000)],
                          description="In the workspace's currency: 0 to 10,000,000.")
    status = SelectField("Status", choices=[SelectChoice(s, s) for s in ORDER_STATUSES], default="open")

    def fields(self):
        """The order's fields as the rules take them (the amount in cents)."""
        return {"customer": self.customer.data, "amount_cents": int(round(self.amount.data * 100)),
                "status": self.status.data}
