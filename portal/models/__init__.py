"""Control-plane models (schema `registry`), one file per concept."""
from portal.models.audit import AuditEvent
from portal.models.job import JOB_STATES, Job
from portal.models.placement import Placement, UpgradeRun
from portal.models.plan import Plan, PlanRequest, TenantOverride
from portal.models.staff import STAFF_ROLES, StaffUser
from portal.models.tenant import TENANT_STATUSES, TENANT_TIERS, Tenant, TenantDomain

__all__ = [
    "JOB_STATES",
    "Job",
    "AuditEvent",
    "Placement",
    "Plan",
    "PlanRequest",
    "STAFF_ROLES",
    "StaffUser",
    "TENANT_STATUSES",
    "TENANT_TIERS",
    "Tenant",
    "TenantDomain",
    "TenantOverride",
    "UpgradeRun",
]
