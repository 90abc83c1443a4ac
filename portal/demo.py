"""Demo data for `make run`: a staff login and three tenants, seeded once."""
import os
import random
import secrets
import uuid
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from portal.auth.services import create_staff_user
from portal.extensions import db
from portal.lifecycle import placements
from portal.lifecycle.provisioning import create_tenant
from portal.models import StaffUser
from portal.services.passwords import hash_password
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order, TenantUser
from portal.tenancy.placement import tenant_transaction

STAFF_EMAIL = "staff@example.com"
TENANTS = [
    ("acme", "Acme Corporation", "basic"),
    ("globex", "Globex Inc.", "professional"),
    ("initech", "Initech", "enterprise"),
]
CUSTOMERS = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Edsger", "Donald"]


def _credentials_file():
    return os.path.join(current_app.config["PORTAL_INSTANCE_DIR"], "demo-login.txt")


def seed():
    """Seed once; return the lines to print (the logins)."""
    path = _credentials_file()
    existing = db.session.execute(select(StaffUser).where(StaffUser.email == STAFF_EMAIL)).scalar_one_or_none()
    if existing is None:
        password = secrets.token_urlsafe(9)
        create_staff_user(STAFF_EMAIL, "superadmin", password, name="Demo staff")
        tenant_password = secrets.token_urlsafe(9)
        # Each plan's default tier: acme in the pool, globex in a schema of its own,
        # initech in a database of its own on the registry's server.
        placements.register("local", "", 100, actor=("system", None, "demo"))
        for slug, name, plan in TENANTS:
            _seed_tenant(slug, name, plan, tenant_password)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(f"{STAFF_EMAIL}\n{password}\n{tenant_password}\n")
    if not os.path.exists(path):
        return ["demo data exists; its passwords were printed when it was seeded"]
    email, password, tenant_password = open(path).read().split("\n")[:3]
    return [
        f"staff console:  /admin/   sign in as {email} / {password}",
        "tenant pages:   /t/acme/ (pool)  /t/globex/ (bridge)  /t/initech/ (silo)",
        f"                sign in as admin@<slug>.example (or alice@, a member; bob@, a viewer)"
        f" / {tenant_password}",
    ]


def _seed_tenant(slug, name, plan, password):
    tenant, _ = create_tenant(slug, name, plan, f"admin@{slug}.example")
    rng = random.Random(slug)
    now = datetime.now(timezone.utc)
    with tenant_transaction(TenantRef.of(tenant)) as session:
        admin = session.execute(select(TenantUser)).scalar_one()
        admin.password_hash = hash_password(password)
        admin.set_password_token_hash = None
        admin.set_password_expires_at = None
        admin.name = "Demo admin"
        for person, role in (("alice", "member"), ("bob", "viewer")):
            session.add(TenantUser(tenant_id=tenant.id, id=uuid.uuid4(), email=f"{person}@{slug}.example",
                                   name=person.title(), role=role, password_hash=hash_password(password)))
        for number in range(1, 13):
            session.add(Order(tenant_id=tenant.id, number=number, customer=rng.choice(CUSTOMERS),
                              amount_cents=rng.randint(500, 50000), status=rng.choice(["open", "paid", "shipped"]),
                              created_at=now - timedelta(days=13 - number)))
