from flask import current_app


def forget_tenant(tenant):
    """Drop `tenant` from the lookup cache (after its change is committed)."""
    lookup = current_app.extensions["portal.tenant_lookup"]
    lookup.invalidate(tenant.id, tenant.slug, [d.domain for d in tenant.domains])
