from flask import current_app


def forget_tenant(tenant):
    """Drop `tenant` from the lookup cache (after its change is committed)."""
    lookup = current_app.extensions["portal.tenant_lookup"]
    lookup.invalidate(tenant.id, tenant.slug, [d.domain for d in tenant.domains])


def forget_domains(*domains):
    """Drop custom domains from the lookup cache (after the change is committed): one
    just verified must start routing, one just removed must stop, without waiting for
    the cache to expire. Called with the names, since a removed row is gone."""
    current_app.extensions["portal.tenant_lookup"].invalidate_domains(list(domains))
