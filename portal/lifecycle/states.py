"""Suspending and resuming a tenant: each an audited status change with a reason."""
from portal.extensions import db
from portal.lifecycle.cache import forget_tenant
from portal.services.errors import Refused
from portal.services import audit

_ALLOWED = {"suspend": ("active", "suspended"), "resume": ("suspended", "active")}
_AUDITED_AS = {"suspend": "tenant.suspended", "resume": "tenant.resumed"}
_REFUSED = {"suspend": "Only an active tenant can be suspended", "resume": "Only a suspended tenant can be resumed"}


def _transition(tenant, verb, reason, actor):
    source, target = _ALLOWED[verb]
    reason = (reason or "").strip()
    if not reason:
        raise Refused("Give a reason.", "reason")
    if len(reason) > 500:
        raise Refused("A reason is at most 500 characters.", "reason")
    if tenant.status != source:
        raise Refused(f"{_REFUSED[verb]}; this one is {tenant.status}.")
    tenant.status = target
    tenant.status_reason = reason if target == "suspended" else None
    audit.record(_AUDITED_AS[verb], actor=actor, tenant_id=tenant.id, target=tenant.slug, reason=reason)
    db.session.commit()
    forget_tenant(tenant)
    return tenant


def suspend(tenant, reason, actor=None):
    return _transition(tenant, "suspend", reason, actor)


def resume(tenant, reason, actor=None):
    return _transition(tenant, "resume", reason, actor)
