"""A staff member's own sessions: listed, ended one by one, or all at once."""
from portal.extensions import db
from portal.services import audit_events, sessions
from portal.services.errors import NotFound


def own_sessions(staff):
    return sessions.staff_sessions(staff.id)


def current_session():
    return sessions.current_hash()


def end_own_session(staff, id_hash):
    """End one of `staff`'s own sessions (another's, or none, is NotFound)."""
    if not id_hash or len(id_hash) != 64 or not sessions.end_staff(staff.id, id_hash):
        raise NotFound(id_hash)
    audit_events.record("staff.session_ended", actor=staff, target=staff.email)
    db.session.commit()


def sign_out_everywhere(staff):
    """End every session of `staff`, this one included (impersonations with them: the
    sign-out signal ends those)."""
    ended = sessions.end_staff(staff.id)
    audit_events.record("staff.signed_out_everywhere", actor=staff, target=staff.email, details={"sessions": ended})
    db.session.commit()
    sessions.end_current()
