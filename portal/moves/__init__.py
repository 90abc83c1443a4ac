"""Moving tenants between tiers and servers, from the staff console: the move page (what
moves, the target, then live progress by phase with its figures), cancel, the old copy
dropped early, and the list of moves. The mechanism is portal/lifecycle/moves.py."""
from portal.moves.routes import bp

__all__ = ["bp"]
