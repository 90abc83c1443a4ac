"""Tenant states and the transitions between them; each transition is audited.

    provisioning → active ⇄ suspended
    active | suspended → deprovisioning → archived → purged
    provisioning → failed (→ provisioning again on retry, or discarded)

Provisioning, deprovisioning and purging are jobs (provisioning.py, retire.py); suspend
and resume happen at once, here.
"""
from portal.extensions import db
from portal.lifecycle.cache import forget_tenant
from portal.services import audit
from portal.services.errors import Refused


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise Refused("Give a reason.", "reason")
    if len(reason) > 500:
        raise Refused("A reason is at most 500 characters.", "reason")
    return reason


def suspend(tenant, reason, actor=None):
    """Suspend: its pages and API answer 403 with the reason; its sessions end."""
    reason = _reason(reason)
    if tenant.status != "active":
        raise Refused(f"Only an active tenant can be suspended; this one is {tenant.status}.")
    tenant.status, tenant.status_reason = "suspended", reason
    tenant.session_epoch += 1
    audit.record("tenant.suspended", actor=actor, tenant_id=tenant.id, target=tenant.slug, reason=reason)
    db.session.commit()
    forget_tenant(tenant)
    return tenant


def resume(tenant, reason, actor=None):
    reason = _reason(reason)
    if tenant.status != "suspended":
        raise Refused(f"Only a suspended tenant can be resumed; this one is {tenant.status}.")
    tenant.status, tenant.status_reason = "active", None
    audit.record("tenant.resumed", actor=actor, tenant_id=tenant.id, target=tenant.slug, reason=reason)
    db.session.commit()
    forget_tenant(tenant)
    return tenant
