from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from portal.form_fields import WholeNumberField


class MoveForm(FlaskForm):
    tier = SelectField("Move to", choices=[SelectChoice("pool", "pool: shared tables under row-level security"),
                                           SelectChoice("bridge", "bridge: a schema of its own"),
                                           SelectChoice("silo", "silo: a database of its own")])
    placement = SelectField("Server (silo only)", choices=[], default="")
    max_freeze_ms = WholeNumberField("Longest write freeze (ms)", low=50, high=60_000, unit="milliseconds",
                                     optional=True,
                                     description="Writes wait at most this long at the switch; longer, the move "
                                                 "catches up again and retries (three times).")
