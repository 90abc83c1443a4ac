"""Operator CLI: each command prints what it did and exits non-zero on bad input."""
import pytest

from portal.extensions import db
from portal.models import StaffUser, Tenant
from tests.factories import unique_slug


@pytest.fixture()
def runner(app, conn):
    return app.test_cli_runner()


def test_tenants_create_list_suspend_resume(runner):
    slug = unique_slug("cli")
    result = runner.invoke(args=["tenants", "create", slug, "--plan", "professional", "--admin-email", "a@cli.example"])
    assert result.exit_code == 0, result.output
    assert f"created tenant {slug}" in result.output and "set-password" in result.output
    listing = runner.invoke(args=["tenants", "list"])
    assert slug in listing.output and "professional" in listing.output
    assert runner.invoke(args=["tenants", "suspend", slug, "--reason", "abuse"]).output.strip() == f"{slug}: suspended"
    again = runner.invoke(args=["tenants", "suspend", slug, "--reason", "abuse"])
    assert again.exit_code != 0 and "Only an active tenant can be suspended" in again.output
    assert runner.invoke(args=["tenants", "resume", slug, "--reason", "ok"]).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["tenants", "create", "bad slug", "--plan", "basic", "--admin-email", "a@b.example"], "a-z, 0-9"),
    (["tenants", "create", "www", "--plan", "basic", "--admin-email", "a@b.example"], "reserved"),
    (["tenants", "create", "fine-slug", "--plan", "gold", "--admin-email", "a@b.example"], "Choose one of the plans"),
    (["tenants", "create", "fine-slug", "--plan", "basic", "--admin-email", "nope"], "valid email"),
    (["tenants", "suspend", "no-such-tenant", "--reason", "x"], "no tenant with slug"),
    (["tenants", "suspend", "no-such-tenant"], "Missing option '--reason'"),
    (["staff", "create", "x@staff.example", "--role", "king"], "Invalid value for '--role'"),
])
def test_bad_input_exits_non_zero_with_a_message(runner, args, message):
    before = db.session.query(Tenant).count()
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.query(Tenant).count() == before


def test_staff_create(runner):
    result = runner.invoke(args=["staff", "create", "cli-op@staff.example", "--role", "operator"])
    assert result.exit_code == 0 and "created staff user cli-op@staff.example (operator)" in result.output
    assert db.session.query(StaffUser).filter_by(email="cli-op@staff.example").one().role == "operator"
    duplicate = runner.invoke(args=["staff", "create", "cli-op@staff.example", "--role", "viewer"])
    assert duplicate.exit_code != 0 and "already a staff user" in duplicate.output
