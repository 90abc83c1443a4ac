from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional


class MoveForm(FlaskForm):
    tier = SelectField("Move to", choices=[SelectChoice("pool", "pool: shared tables under row-level security"),
                                           SelectChoice("bridge", "bridge: a schema of its own"),
                                           SelectChoice("silo", "silo: a database of its own")])
    placement = SelectField("Server (silo only)", choices=[], default="")
    max_freeze_ms = IntegerField("Longest write freeze (ms)", validators=[Optional(), NumberRange(50, 60_000)],
                                 description="Writes wait at most this long at the switch; longer, the move catches "
                                             "up again and retries (three times).")
