"""Tenant states and the transitions between them; each transition is audited.

    provisioning → active ⇄ suspended
    active | suspended → deprovisioning → archived → purged
    provisioning → failed (→ provisioning again on retry, or discarded)

Provisioning, deprovisioning and purging are jobs (provisioning.py, retire.py); suspend
and resume happen at once, here.
"""
from portal.extensions import db
from portal.services import audit_events
from portal.services.errors import Refused
from portal.services.validation import check_text
from portal.tenancy.lookup import forget_tenant


def _reason(reason):
    return check_text(reason, "reason", "a reason", 500, multiline=True, missing="Give a reason.")


def suspend(tenant, reason, actor=None):
    """Suspend: its pages and API answer 403 with the reason; its sessions end."""
    reason = _reason(reason)
    if tenant.status != "active":
        raise Refused(f"Only an active tenant can be suspended; this one is {tenant.status}.")
    tenant.status, tenant.status_reason = "suspended", reason
    tenant.session_epoch += 1
    audit_events.record("tenant.suspended", actor=actor, tenant_id=tenant.id, target=tenant.slug, reason=reason)
    db.session.commit()
    forget_tenant(tenant)
    return tenant


def resume(tenant, reason, actor=None):
    reason = _reason(reason)
    if tenant.status != "suspended":
        raise Refused(f"Only a suspended tenant can be resumed; this one is {tenant.status}.")
    tenant.status, tenant.status_reason = "active", None
    audit_events.record("tenant.resumed", actor=actor, tenant_id=tenant.id, target=tenant.slug, reason=reason)
    db.session.commit()
    forget_tenant(tenant)
    return tenant
