"""Editing plans, overriding a tenant's plan, and plan change requests."""
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from portal.analytics.events import track_event
from portal.extensions import db
from portal.models import LIMIT_RANGES, TENANT_TIERS, WITH_STORAGE, Plan, PlanRequest, Tenant, TenantOverride
from portal.services import audit_events, entitlements, ratelimit
from portal.services.errors import NotFound, Refused
from portal.services.metering import storage_bytes, user_count
from portal.services.rows import registry_row
from portal.services.validation import check_text
from portal.tenancy.context import TenantRef
from portal.tenancy.lookup import forget_plan_tenants, forget_tenant

log = logging.getLogger(__name__)
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


def plans(include_retired=True):
    query = select(Plan).order_by(Plan.position, Plan.code)
    if not include_retired:
        query = query.where(Plan.is_retired.is_(False))
    return db.session.execute(query).scalars().all()


def tenants_on(plan_code):
    return db.session.execute(select(func.count()).select_from(Tenant)
                              .where(Tenant.plan_code == plan_code, Tenant.status != "purged")).scalar_one()


def limit_value(name, raw, label, field, allow_none=False):
    """The value of limit `name` typed as `raw`: a whole number in its range
    (LIMIT_RANGES), or blank for unlimited where `allow_none`. Refused with the range."""
    raw = (raw or "").strip()
    if raw == "" and allow_none:
        return None
    low, high = LIMIT_RANGES[name]
    allowed = f"The range is {low:,} to {high:,}{' (blank: unlimited)' if allow_none else ''}."
    if not (raw.isascii() and raw.lstrip("-").isdigit() and raw.count("-") <= 1 and len(raw) <= 40):
        raise Refused(f"{label}: enter a whole number. {allowed}", field)
    value = int(raw)
    if value < 0:
        raise Refused(f"{label}: a limit cannot be negative. {allowed}", field)
    if not low <= value <= high:
        raise Refused(f"{label}: {value:,} is out of range. {allowed}", field)
    return value


class MatrixRefused(Refused):
    """The matrix page had bad values: `errors` maps each bad cell (its form key) to its
    message. Nothing was saved."""

    def __init__(self, errors):
        field, message = next(iter(errors.items()))
        super().__init__(message, field)
        self.errors = errors


@dataclass
class Shrink:
    """Limits lowered below what tenants use now: `affected` lists the first SHRINK_SHOWN
    (tenant, plan, limit label, usage, new limit), `total` counts them all; `digest` names
    the lowering, for its confirmation; `by_plan` counts the tenants over it per plan."""
    affected: list
    total: int
    digest: str
    by_plan: dict

    @property
    def more(self):
        return self.total - len(self.affected)


class ShrinkUnconfirmed(Exception):
    """The matrix lowers a limit below some tenant's use, and the page did not confirm
    that lowering (`confirm_shrink`): nothing was saved."""

    def __init__(self, shrink):
        super().__init__(f"{shrink.total} tenant(s) would be over a lowered limit")
        self.shrink = shrink


SHRINK_SHOWN = 20
# The limits measured against tenants' use when lowered: name -> use of a tenant (a TenantRef).
_USE = {
    "max_users": user_count,
    "storage_mb": lambda ref: round(storage_bytes(ref) / 1_048_576, 2),
    "api_calls_per_day": lambda ref: ratelimit.read(ref.id, "api", ratelimit.day_window()[0]),
}


def _read_matrix(form):
    """The changes the matrix page asks for: {code: (plan, before, after)}; every bad
    value is refused at once (MatrixRefused), each beside its cell."""
    changes, errors = {}, {}
    for plan in plans():
        features = {name: form.get(f"{plan.code}:feature:{name}") == "on" for name in entitlements.FEATURES}
        limits = {}
        for name, label in entitlements.LIMITS.items():
            try:
                limits[name] = limit_value(name, form.get(f"{plan.code}:{name}"), f"{plan.name} – {label}",
                                           f"{plan.code}:{name}", allow_none=name == "max_users")
            except Refused as exc:
                errors[exc.field] = exc.message
        tier = form.get(f"{plan.code}:default_tier", plan.default_tier)
        if tier not in TENANT_TIERS:
            errors[f"{plan.code}:default_tier"] = f"{plan.name}: choose pool, bridge or silo as the default tier."
        before = {"features": plan.features, **{n: getattr(plan, n) for n in entitlements.LIMITS},
                  "default_tier": plan.default_tier}
        after = {"features": features, **limits, "default_tier": tier}
        if not errors and before != after:
            changes[plan.code] = (plan, before, after)
    if errors:
        raise MatrixRefused(errors)
    return changes


def shrinking(changes):
    """The tenants (active or suspended, without an override of that limit) whose use
    now is over a limit these changes lower (Shrink), or None."""
    lowered = sorted((code, name, after[name]) for code, (_, before, after) in changes.items()
                     for name in _USE if after[name] is not None
                     and (before[name] is None or after[name] < before[name]))
    if not lowered:
        return None
    affected = []
    for code in sorted({code for code, _, _ in lowered}):
        names = [(name, limit) for c, name, limit in lowered if c == code]
        tenants = db.session.execute(select(Tenant).where(Tenant.plan_code == code, Tenant.status.in_(WITH_STORAGE))
                                     .order_by(Tenant.slug)).scalars().all()
        overridden = set(db.session.execute(select(TenantOverride.tenant_id, TenantOverride.key).where(
            TenantOverride.tenant_id.in_([t.id for t in tenants]),
            TenantOverride.key.in_([f"limit:{name}" for name, _ in names]),
            or_(TenantOverride.expires_at.is_(None), TenantOverride.expires_at > func.now()))).all())
        for tenant in tenants:
            ref = TenantRef.of(tenant)
            for name, limit in names:
                if (tenant.id, f"limit:{name}") in overridden:
                    continue
                try:
                    used = _USE[name](ref)
                except (SQLAlchemyError, OSError) as exc:  # an unreachable silo: not measured
                    log.warning("shrink check: %s of %s not measured: %s", name, tenant.slug, exc)
                    continue
                if used is not None and used > limit:
                    affected.append((tenant, code, entitlements.LIMITS[name], used, limit))
    digest = hashlib.sha256(json.dumps(lowered).encode()).hexdigest()[:32]
    if not affected:
        return None
    by_plan = {code: len({t.id for t, c, *_ in affected if c == code}) for code in {c for _, c, *_ in affected}}
    return Shrink(affected[:SHRINK_SHOWN], len(affected), digest, by_plan)


def save_matrix(form, actor, confirm_shrink=None):
    """Apply the matrix page: form keys `<plan>:feature:<feature>` (checkboxes) and
    `<plan>:<limit>` (numbers); refuse the whole change on any bad value (MatrixRefused).
    A limit lowered below some tenant's use now is saved only when `confirm_shrink` is
    the digest of that lowering (the page's second submit); else ShrinkUnconfirmed."""
    changes = _read_matrix(form)
    shrink = shrinking(changes)
    if shrink is not None and confirm_shrink != shrink.digest:
        raise ShrinkUnconfirmed(shrink)
    for code, (plan, before, after) in changes.items():
        plan.features = after["features"]
        plan.default_tier = after["default_tier"]
        for name in entitlements.LIMITS:
            setattr(plan, name, after[name])
        details = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
        if shrink is not None and shrink.by_plan.get(code):  # confirmed with this many tenants over it
            details["tenants_over_limit"] = shrink.by_plan[code]
        audit_events.record("plan.changed", actor=actor, target=code, details=details)
    db.session.commit()
    entitlements.forget()
    forget_plan_tenants(list(changes))  # every node: the caps its refs carry, its entitlements
    return list(changes)


def add_plan(code, name, actor):
    code = (code or "").strip().lower()
    if not _CODE.match(code):
        raise Refused("A plan code is 2 to 32 characters: a-z, 0-9 and hyphens.", "code")
    name = check_text(name, "name", "a plan's name", 80, missing="Give the plan a name of at most 80 characters.")
    if db.session.get(Plan, code):
        raise Refused(f"A plan with code {code} exists.", "code")
    position = (db.session.execute(select(func.max(Plan.position))).scalar() or 0) + 1
    plan = Plan(code=code, name=name, max_users=10, storage_mb=1024, api_calls_per_day=1000, requests_per_minute=300,
                db_connections=5, statement_timeout_ms=5000, event_retention_days=365, features={},
                default_tier="pool", position=position)
    db.session.add(plan)
    audit_events.record("plan.added", actor=actor, target=code, details={"name": name})
    db.session.commit()
    return plan


def _plan(code):
    """The plan `code` (a plan's code is its key, not a uuid); NotFound otherwise."""
    plan = db.session.get(Plan, code)
    if plan is None:
        raise NotFound(code, message="There is no such plan.")
    return plan


def retire_plan(code, actor):
    plan = _plan(code)
    plan.is_retired = not plan.is_retired
    audit_events.record("plan.retired" if plan.is_retired else "plan.offered", actor=actor, target=code)
    db.session.commit()
    return plan


def delete_plan(code, actor):
    plan = _plan(code)
    in_use = tenants_on(code)
    if in_use:
        raise Refused(f"{plan.name} is in use by {in_use} tenant(s): retire it instead.")
    db.session.delete(plan)
    audit_events.record("plan.deleted", actor=actor, target=code)
    db.session.commit()


# -- overrides -----------------------------------------------------------------------------
def set_override(tenant, key, raw_value, until, reason, actor):
    """Override a feature ("feature:<name>", value on/off) or a limit ("limit:<name>", a
    number or blank for unlimited), optionally until `until` (a date)."""
    kind, _, name = (key or "").partition(":")
    known = entitlements.FEATURES if kind == "feature" else entitlements.LIMITS if kind == "limit" else {}
    if name not in known:
        raise Refused("Choose a feature or a limit to override.", "key")
    reason = check_text(reason, "reason", "a reason", 500, multiline=True, missing="Give a reason.")
    if kind == "feature":
        if raw_value not in ("on", "off"):
            raise Refused("A feature is on or off.", "value")
        value = raw_value == "on"
    else:
        value = limit_value(name, raw_value, entitlements.LIMITS[name], "value", allow_none=True)
    expires_at = None
    if until:
        expires_at = datetime.combine(until, datetime.min.time(), tzinfo=timezone.utc)
        if expires_at <= datetime.now(timezone.utc):
            raise Refused("The end date must be in the future.", "until")
    created_by = audit_events.actor_label(actor)  # before the new row joins the session (no early flush)
    override = db.session.execute(select(TenantOverride).where(
        TenantOverride.tenant_id == tenant.id, TenantOverride.key == key)).scalar_one_or_none()
    if override is None:
        override = TenantOverride(tenant_id=tenant.id, key=key)
        db.session.add(override)
    override.value, override.expires_at, override.reason = value, expires_at, reason
    override.created_by = created_by
    audit_events.record("tenant.override_set", actor=actor, tenant_id=tenant.id, target=tenant.slug, reason=reason,
                        details={"key": key, "value": value, "until": expires_at.isoformat() if expires_at else None})
    db.session.commit()
    _changed(tenant)
    return override


def remove_override(tenant, override_id, actor):
    override = registry_row(TenantOverride, override_id, tenant.id)
    db.session.delete(override)
    audit_events.record("tenant.override_removed", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"key": override.key})
    db.session.commit()
    _changed(tenant)


def overrides_of(tenant):
    return db.session.execute(select(TenantOverride).where(TenantOverride.tenant_id == tenant.id)
                              .order_by(TenantOverride.key)).scalars().all()


def _changed(tenant):
    entitlements.forget(tenant.id)
    forget_tenant(tenant)


# -- plan changes ---------------------------------------------------------------------------
def check_fits(tenant, plan):
    """Refuse, with the numbers, a plan the tenant's usage does not fit."""
    ref = TenantRef.of(tenant)
    users = user_count(ref)
    if plan.max_users is not None and users > plan.max_users:
        raise Refused(f"{plan.name} allows {plan.max_users} users; this tenant has {users}.", "plan")
    used_mb = storage_bytes(ref, fresh=True) / 1_048_576
    if used_mb > plan.storage_mb:
        raise Refused(f"{plan.name} allows {plan.storage_mb} MB of storage; this tenant uses {used_mb:.1f} MB.",
                      "plan")


def change_plan(tenant, plan_code, actor=None):
    old = tenant.plan_code
    _apply_plan(tenant, plan_code, actor)
    db.session.commit()
    db.session.refresh(tenant)
    _changed(tenant)
    track_event("plan_changed", None, {"from": old, "to": tenant.plan_code}, tenant=TenantRef.of(tenant))
    return tenant


def _apply_plan(tenant, plan_code, actor):
    """Put `tenant` on the plan, with its audit event, in the caller's transaction."""
    plan = entitlements.offered_plan(plan_code)
    if plan.code == tenant.plan_code:
        raise Refused(f"The tenant is already on {plan.name}.", "plan")
    check_fits(tenant, plan)
    old = tenant.plan_code
    tenant.plan_code = plan.code
    audit_events.record("tenant.plan_changed", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"from": old, "to": plan.code})


def request_change(tenant, plan_code, actor):
    """A tenant admin asks to move to another plan; refused at once if it cannot fit."""
    plan = entitlements.offered_plan(plan_code)
    if plan.code == tenant.plan_code:
        raise Refused(f"You are on {plan.name} already.", "plan")
    pending = db.session.execute(select(PlanRequest).where(
        PlanRequest.tenant_id == tenant.id, PlanRequest.state == "pending")).scalar_one_or_none()
    if pending is not None:
        raise Refused(f"A request to move to {pending.to_plan} is waiting for staff already.", "plan")
    check_fits(tenant, plan)
    change = PlanRequest(tenant_id=tenant.id, from_plan=tenant.plan_code, to_plan=plan.code,
                         requested_by=audit_events.actor_label(actor), state="pending")
    db.session.add(change)
    audit_events.record("tenant.plan_requested", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"from": tenant.plan_code, "to": plan.code})
    db.session.commit()
    return change


def pending_requests():
    return db.session.execute(select(PlanRequest, Tenant).join(Tenant, Tenant.id == PlanRequest.tenant_id)
                              .where(PlanRequest.state == "pending").order_by(PlanRequest.created_at)).all()


def requests_of(tenant_id):
    return db.session.execute(select(PlanRequest).where(PlanRequest.tenant_id == tenant_id)
                              .order_by(PlanRequest.created_at.desc()).limit(10)).scalars().all()


def decide(request_id, approve, actor, note=""):
    """Approve (the plan changes) or reject a tenant's request: one transaction."""
    change = registry_row(PlanRequest, request_id)
    if change.state != "pending":
        raise Refused("That request is not waiting for a decision.")
    tenant = db.session.get(Tenant, change.tenant_id)
    old = tenant.plan_code
    if approve:
        _apply_plan(tenant, change.to_plan, actor)
    change.state = "approved" if approve else "rejected"
    note = (note or "").strip()[:500]  # a short word for the tenant, not a letter
    change.decided_by, change.decided_at = audit_events.actor_label(actor), datetime.now(timezone.utc)
    change.note = note
    audit_events.record(f"tenant.plan_request_{change.state}", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"to": change.to_plan})
    db.session.commit()
    if approve:
        _changed(tenant)
        track_event("plan_changed", None, {"from": old, "to": change.to_plan}, tenant=TenantRef.of(tenant))
    return change
