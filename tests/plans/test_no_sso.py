"""Issue 15: `sso` turned nothing on, so nothing sells it: not a feature of any plan (registry
migration 0012), not on the matrix or the override form, not in the portal's code."""
import pathlib
import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Plan, TenantOverride
from portal.services import entitlements
from tests.factories import sign_in_staff


def test_no_plan_and_no_override_has_sso(app, conn):
    assert "sso" not in entitlements.FEATURES
    with app.app_context():
        plans = db.session.execute(select(Plan)).scalars().all()
        assert plans and all("sso" not in plan.features for plan in plans)
        assert db.session.execute(select(func.count()).select_from(TenantOverride)
                                  .where(TenantOverride.key == "feature:sso")).scalar_one() == 0


def test_the_matrix_and_the_override_form_do_not_offer_it(client, factory):
    tenant = factory.tenant(plan="enterprise")
    sign_in_staff(client, factory.staff("superadmin"))
    matrix = client.get("/admin/plans").get_data(as_text=True)
    assert "Audit log export" in matrix
    assert "Single sign-on" not in matrix and ":feature:sso" not in matrix
    page = client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    assert "feature:sso" not in page and "Single sign-on" not in page
    assert not entitlements.for_tenant(tenant.id, "enterprise").has("sso")


def test_nothing_in_the_portal_mentions_it():
    root = pathlib.Path(__file__).resolve().parents[2] / "portal"
    sources = [path for path in root.rglob("*") if path.is_file() and path.suffix in (".py", ".html")]
    mentions = [str(path.relative_to(root)) for path in sources
                if re.search(r"\bsso\b", path.read_text(errors="replace"), re.IGNORECASE)]
    assert mentions == []
