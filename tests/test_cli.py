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
    (["tenants", "create", "bad slug", "--plan", "basic", "--admin-email", "a@b.example"], "letters a-z, digits 0-9"),
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


def test_lifecycle_commands_mirror_the_pages(runner, tmp_path):
    slug = unique_slug("cli")
    created = runner.invoke(args=["tenants", "create", slug, "--plan", "basic", "--admin-email", "a@cli.example"])
    assert created.exit_code == 0
    exported = runner.invoke(args=["tenants", "export", slug])
    assert exported.exit_code == 0 and "exported to" in exported.output
    archive = exported.output.strip().split("exported to ")[-1]
    copy = unique_slug("copy")
    imported = runner.invoke(args=["tenants", "import", archive, "--slug", copy, "--tier", "pool"])
    assert imported.exit_code == 0, imported.output
    assert "load data" in imported.output and f"imported into {copy}" in imported.output
    refused = runner.invoke(args=["tenants", "deprovision", slug, "--confirm", "wrong"])
    assert refused.exit_code != 0 and "to confirm" in refused.output
    gone = runner.invoke(args=["tenants", "deprovision", slug, "--confirm", slug])
    assert gone.exit_code == 0 and "archived" in gone.output
    assert db.session.query(Tenant).filter_by(slug=slug).one().status == "archived"
    assert runner.invoke(args=["tenants", "purge", slug]).output.strip().endswith(f"{slug}: purged")
    again = runner.invoke(args=["tenants", "purge", slug])
    assert again.exit_code != 0 and "Only an archived tenant" in again.output
    assert runner.invoke(args=["tenants", "discard", copy]).exit_code != 0  # not failed: refused


def test_staff_create_never_prints_a_password_it_was_given(runner):
    # Issue 14, item 14: the CLI printed the password back.
    typed = "a typed secret passphrase"
    given = runner.invoke(args=["staff", "create", "cli-given@staff.example", "--role", "viewer",
                                "--password", typed])
    assert given.exit_code == 0, given.output
    assert typed not in given.output and "the one you gave (not shown)" in given.output
    prompted = runner.invoke(args=["staff", "create", "cli-prompt@staff.example", "--role", "viewer",
                                   "--prompt-password"], input=f"{typed}\n{typed}\n")
    assert prompted.exit_code == 0, prompted.output
    assert typed not in prompted.output and "created staff user cli-prompt@staff.example" in prompted.output
    from portal.services.passwords import verify_password  # the prompted password is the one stored
    user = db.session.query(StaffUser).filter_by(email="cli-prompt@staff.example").one()
    assert verify_password(user.password_hash, typed)
    both = runner.invoke(args=["staff", "create", "cli-both@staff.example", "--role", "viewer",
                               "--password", typed, "--prompt-password"])
    assert both.exit_code != 0 and "not both" in both.output and typed not in both.output


def test_staff_create_shows_a_generated_password_once_labelled(runner):
    result = runner.invoke(args=["staff", "create", "cli-gen@staff.example", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "password" in line]
    assert line.startswith("generated password, shown only this once")
    generated = line.rsplit(": ", 1)[1]
    assert len(generated) >= 12 and result.output.count(generated) == 1
