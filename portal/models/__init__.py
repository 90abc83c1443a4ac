"""Control-plane models (schema `registry`), one file per concept."""
from portal.models.activity import ActivityDay, TenantActivityDay
from portal.models.audit import AuditEvent
from portal.models.impersonation import Impersonation
from portal.models.job import JOB_STATES, Job
from portal.models.move import MOVE_STATES, TenantMove
from portal.models.outbox import OutboxMessage
from portal.models.placement import Placement
from portal.models.plan import LIMIT_RANGES, Plan, PlanRequest, TenantOverride, bounded_limit
from portal.models.staff import STAFF_ROLES, StaffSession, StaffUser
from portal.models.tenant import TENANT_STATUSES, TENANT_TIERS, WITH_STORAGE, Tenant, TenantDomain
from portal.models.upgrade import UpgradeRun

__all__ = [
    "JOB_STATES",
    "LIMIT_RANGES",
    "Job",
    "MOVE_STATES",
    "AuditEvent",
    "TenantActivityDay",
    "ActivityDay",
    "Impersonation",
    "OutboxMessage",
    "Placement",
    "Plan",
    "PlanRequest",
    "STAFF_ROLES",
    "StaffSession",
    "StaffUser",
    "TENANT_STATUSES",
    "TENANT_TIERS",
    "Tenant",
    "TenantDomain",
    "TenantMove",
    "TenantOverride",
    "UpgradeRun",
    "WITH_STORAGE",
    "bounded_limit",
]
