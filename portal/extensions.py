"""Extension instances only; they are bound to the app in the factory."""
from flask import current_app
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FlaskSession
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData


class Session(_FlaskSession):
    """Flask-SQLAlchemy's session, but an explicit `bind` wins.

    Flask-SQLAlchemy picks the engine from its bind keys and ignores a bind given to
    the session; tests bind the session to one connection held in an outer
    transaction (rolled back at the end of each test), so the explicit bind must win.
    """

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and self.bind is not None:
            return self.bind
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(
    metadata=MetaData(schema="registry", naming_convention=naming),
    session_options={"class_": Session},
)
login_manager = LoginManager()
csrf = CSRFProtect()


class RedisHolder:
    """The current app's Redis client (made in the factory from REDIS_URL and kept in
    app.extensions, so two apps in one process each keep their own)."""

    @property
    def client(self):
        return current_app.extensions["portal.redis"]


redis_holder = RedisHolder()
