"""Tenant states and the transitions between them; each transition is audited.

    provisioning → active ⇄ suspended
    active | suspended → deprovisioning → archived → purged
    provisioning → failed (→ provisioning again on retry, or discarded)

Provisioning, deprovisioning and purging are jobs (provisioning.py, retire.py); suspend
and resume happen at once, here, as do the start and end of maintenance mode (an active
tenant whose reads go on while its writes are refused: the fence of fences.py, in state
`maintenance`, is what refuses them, in every process at once; the registry's reason
shows the banner).
"""
from flask import current_app

from portal.extensions import db
from portal.lifecycle.fences import Fence
from portal.lifecycle.moves import publish, under_way
from portal.services import audit_events
from portal.services.errors import Refused
from portal.services.validation import check_text
from portal.tenancy.context import TenantRef
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


def start_maintenance(tenant, reason, actor=None):
    """Maintenance mode: writes refused (503), reads and sign-ins allowed, a banner."""
    reason = _reason(reason)
    if tenant.status != "active":
        raise Refused(f"Only an active tenant can be put in maintenance; this one is {tenant.status}.")
    if tenant.maintenance_reason:
        raise Refused("The tenant is in maintenance already.")
    if under_way(tenant.id) is not None:
        raise Refused("A move of the tenant is under way: wait for it, or cancel it.")
    fence = Fence(TenantRef.of(tenant), current_app.config["DATABASE_URL"])
    try:
        fence.install(state="maintenance", capturing=False)  # waits for the writes in flight
    finally:
        fence.close()
    tenant.maintenance_reason = reason
    tenant.placement_version = (tenant.placement_version or 0) + 1
    audit_events.record("tenant.maintenance_started", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        reason=reason)
    db.session.commit()
    publish(tenant)
    return tenant


def end_maintenance(tenant, actor=None):
    if not tenant.maintenance_reason:
        raise Refused("The tenant is not in maintenance.")
    fence = Fence(TenantRef.of(tenant), current_app.config["DATABASE_URL"])
    try:
        fence.remove()
    finally:
        fence.close()
    tenant.maintenance_reason = None
    tenant.placement_version = (tenant.placement_version or 0) + 1
    audit_events.record("tenant.maintenance_ended", actor=actor, tenant_id=tenant.id, target=tenant.slug)
    db.session.commit()
    publish(tenant)
    return tenant
