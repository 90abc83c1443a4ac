"""Operator commands: `flask --app wsgi tenants ...`, `staff ...`, `support ...`, `db-setup`, `seed-demo`."""
from concurrent.futures import ThreadPoolExecutor

import click
from flask import current_app
from flask.cli import AppGroup

from portal.auth.services import create_staff_user
from portal.dbsetup import setup_database
from portal.demo import seed
from portal.extensions import db
from portal.lifecycle import exports, moves, placements, provisioning, retire, states, upgrade
from portal.models import STAFF_ROLES, TENANT_TIERS
from portal.services import jobqueue, password_links
from portal.services.errors import NotFound, Refused
from portal.staff import services as staff_services
from portal.support import services as support
from portal.tenants import services as registry


class RefusingGroup(AppGroup):
    """A command group whose commands end with the message of a refusal (Refused: bad
    input, a rule) or of a NotFound, and a non-zero exit, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Refused as exc:
            raise click.ClickException(exc.message) from None
        except NotFound as exc:
            raise click.ClickException(exc.message or f"not found: {exc}") from None


tenants_cli = RefusingGroup("tenants", help="Create, list, suspend and resume tenants.")
staff_cli = RefusingGroup("staff", help="Manage staff users.")
support_cli = RefusingGroup("support", help="Support impersonations.")


def _fail(message):
    raise click.ClickException(message)


def _tenant(slug):
    tenant = registry.get_tenant_by_slug(slug)
    if tenant is None:
        raise NotFound(slug, message=f"no tenant with slug {slug!r}")
    return tenant


@tenants_cli.command("create")
@click.argument("slug")
@click.option("--plan", required=True, help="basic, professional or enterprise")
@click.option("--admin-email", required=True, help="email of the tenant's first admin")
@click.option("--name", default=None, help="display name (default: the slug)")
@click.option("--tier", type=click.Choice(TENANT_TIERS), default=None, help="default: the plan's")
@click.option("--placement", default=None, help="silo only: placement name (default: the emptiest)")
def tenants_create(slug, plan, admin_email, name, tier, placement):
    placement_id = _placement_id(placement)
    tenant, token = provisioning.create_tenant(slug, name or slug, plan, admin_email, tier=tier,
                                               placement_id=placement_id)
    click.echo(f"created tenant {tenant.slug} ({tenant.id}) on plan {tenant.plan_code}, tier {tenant.tier}")
    click.echo(f"first admin {admin_email} sets a password at: {password_links.link_url(tenant, token)}")


@tenants_cli.command("list")
@click.option("--status", default="", help="only tenants with this status")
def tenants_list(status):
    page = registry.search_tenants(status=status, per_page=100_000)
    click.echo(f"{'slug':<30} {'status':<10} {'plan':<13} {'tier':<6} name")
    for t in page.items:
        click.echo(f"{t.slug:<30} {t.status:<10} {t.plan_code:<13} {t.tier:<6} {t.name}")
    click.echo(f"{page.total} tenant(s)")


def _status_command(verb, action):
    @tenants_cli.command(verb)
    @click.argument("slug")
    @click.option("--reason", required=True, help="why (kept in the audit log)")
    def command(slug, reason):
        tenant = _tenant(slug)
        action(tenant, reason, ("system", None, "cli"))
        click.echo(f"{tenant.slug}: {tenant.status}")

    command.__doc__ = f"{verb.title()} a tenant, with a reason."


_status_command("suspend", states.suspend)
_status_command("resume", states.resume)


@tenants_cli.command("upgrade")
@click.argument("slugs", nargs=-1)
@click.option("--all", "everyone", is_flag=True, help="every tenant that is behind")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 32), help="targets migrated at once")
def tenants_upgrade(slugs, everyone, jobs):
    """Apply the tenant history to the pool, each bridge schema and each silo database."""
    if slugs and everyone:
        _fail("give slugs or --all, not both")
    targets, current, head = upgrade.plan(slugs, everyone)
    click.echo(f"head {head}: {len(targets)} target(s) to upgrade, {current} tenant(s) already current")
    if not targets:
        return
    results = []
    with click.progressbar(length=len(targets), label="upgrading", show_pos=True,
                           item_show_func=lambda r: r.target.label if r else "") as bar:
        def on_result(result):
            results.append(result)
            bar.update(1, result)

        record = upgrade.run(targets, "cli", jobs=jobs, on_result=on_result)
    for r in sorted(results, key=lambda r: r.target.label):
        outcome = f"ok  {r.revision}" if r.ok else f"FAILED  {r.error}"
        click.echo(f"  {r.target.label:<40} {r.target.tier:<6} {r.seconds * 1000:8.1f} ms  {outcome}")
    click.echo(f"run {record.id}: {record.done} upgraded, {record.failed} failed, {current} already current")
    if record.failed:
        raise SystemExit(1)


def _placement_id(name):
    """The id of the placement named `name` (None for none); exits on an unknown name."""
    if not name:
        return None
    found = placements.by_name(name)
    if found is None:
        raise NotFound(name, message=f"no placement named {name!r}")
    return found.id


def _run_job(job, handler):
    """Run a lifecycle job here, as a worker would, and report it (CLI mirror of the pages)."""
    job = jobqueue.run(job, handler)
    for step in job.steps:
        click.echo(f"  {step['name']:<30} {step['state']}")
    if job.state != "succeeded":
        _fail(f"job {job.id} {job.state}: {job.error}")
    return job


@tenants_cli.command("move")
@click.argument("slug")
@click.option("--tier", required=True, type=click.Choice(TENANT_TIERS), help="where the tenant's rows go")
@click.option("--placement", default=None, help="silo only: the server (placement) it goes to")
@click.option("--max-freeze-ms", type=int, default=None, help="the longest its writes may be frozen")
@click.option("--dry-run", is_flag=True, help="say what would move, and whether it may; move nothing")
def tenants_move(slug, tier, placement, max_freeze_ms, dry_run):
    """Move a tenant online to another tier or server: copy, catch up, freeze, validate, switch."""
    tenant = _tenant(slug)
    placement_id = _placement_id(placement)
    target, max_freeze_ms = moves.check_move(tenant, tier, placement_id, max_freeze_ms)
    plan = moves.what_moves(tenant)
    where = f"{tier} on {target.name}" if target else tier
    click.echo(f"{slug}: {tenant.tier} -> {where}: {plan['rows']:,} rows, {plan['bytes'] / 1_048_576:.1f} MB, "
               f"about {plan['estimate_seconds']} s; writes frozen at most {max_freeze_ms} ms")
    for name, rows in plan["tables"].items():
        click.echo(f"  {name:<12} {rows:>10,} rows")
    if dry_run:
        return
    move, job = moves.request_move(tenant, tier, placement_id, ("system", None, "cli"), max_freeze_ms)
    job = jobqueue.run(job, moves.run, echo=click.echo)
    db.session.refresh(move)
    figures = move.figures
    if move.state != "switched":
        _fail(f"move {move.state}: {move.error}")
    click.echo(f"moved: {figures['copied_rows']:,} rows copied in {figures['copy_seconds']} s "
               f"({figures['copy_rows_per_second']:,} rows/s), {figures.get('replayed_changes', 0)} changes replayed, "
               f"writes frozen {figures['freeze_ms']} ms, {figures['total_seconds']} s in all")
    for name, sums in figures["checksums"].items():
        click.echo(f"  {name:<12} {sums['rows']:>10,} rows  checksum {sums['checksum']}")
    click.echo(f"the old copy is kept until {move.drop_after:%Y-%m-%d %H:%M} UTC")


@tenants_cli.command("maintenance")
@click.argument("slug")
@click.option("--reason", default=None, help="why (shown to the tenant's users)")
@click.option("--end", is_flag=True, help="end maintenance mode")
def tenants_maintenance(slug, reason, end):
    """Hold a tenant in maintenance mode (writes refused, reads go on), or end it."""
    tenant = _tenant(slug)
    if end:
        states.end_maintenance(tenant, ("system", None, "cli"))
        click.echo(f"{slug}: maintenance ended")
    else:
        states.start_maintenance(tenant, reason, ("system", None, "cli"))
        click.echo(f"{slug}: in maintenance ({tenant.maintenance_reason})")


@tenants_cli.command("export")
@click.argument("slug")
def tenants_export(slug):
    """Export a tenant's data to a zip (tables as CSV, manifest, settings)."""
    job = exports.request_export(_tenant(slug), ("system", None, "cli"))
    job = _run_job(job, exports.run_export)
    click.echo(f"exported to {job.result['path']}")


@tenants_cli.command("import")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--slug", required=True)
@click.option("--name", default=None)
@click.option("--plan", default=None, help="default: the exported tenant's")
@click.option("--tier", type=click.Choice(TENANT_TIERS), default=None)
@click.option("--placement", default=None)
def tenants_import(archive, slug, name, plan, tier, placement):
    """Make a new tenant from an export (checked first: tables, counts, checksums)."""
    placement_id = _placement_id(placement)
    tenant, job = provisioning.request_import(archive, slug, name, plan, ("system", None, "cli"), tier,
                                              placement_id)
    _run_job(job, provisioning.provision)
    click.echo(f"imported into {tenant.slug} ({tenant.tier})")


@tenants_cli.command("deprovision")
@click.argument("slug")
@click.option("--confirm", required=True, help="the slug again")
def tenants_deprovision(slug, confirm):
    """Export, remove storage and role, clear Redis keys, end sessions; keep it archived."""
    tenant = _tenant(slug)
    job = retire.request_deprovision(tenant, confirm, ("system", None, "cli"))
    job = _run_job(job, retire.deprovision)
    click.echo(f"{slug}: archived, export {job.result.get('path')}; purged after {tenant.purge_after:%Y-%m-%d}")


@tenants_cli.command("purge")
@click.argument("slug")
def tenants_purge(slug):
    """Purge an archived tenant now."""
    job = retire.request_purge(_tenant(slug), slug, ("system", None, "cli"))  # typing the slug is the confirmation
    _run_job(job, retire.purge)
    click.echo(f"{slug}: purged")


@tenants_cli.command("purge-expired")
def tenants_purge_expired():
    """Purge every archived tenant whose retention has ended (for cron; the workers'
    scheduler does the same on its own)."""
    due = retire.expired()
    for tenant in due:
        _run_job(retire.request_purge(tenant, tenant.slug, ("system", None, "retention")), retire.purge)
        click.echo(f"{tenant.slug}: purged")
    click.echo(f"{len(due)} tenant(s) purged")


@tenants_cli.command("retry")
@click.argument("slug")
def tenants_retry(slug):
    """Run a failed or interrupted provisioning of a tenant again."""
    tenant = _tenant(slug)
    job = jobqueue.latest_for_tenant(tenant.id)
    if job is None or job.state not in ("failed", "interrupted") or job.kind not in ("provision", "import"):
        _fail(f"{slug} has no failed or interrupted provisioning to retry")
    _run_job(job, provisioning.provision)
    click.echo(f"{slug}: {tenant.status}")


@tenants_cli.command("discard")
@click.argument("slug")
def tenants_discard(slug):
    """Remove a tenant whose provisioning failed."""
    provisioning.discard(_tenant(slug), ("system", None, "cli"))
    click.echo(f"{slug}: discarded")


placements_cli = RefusingGroup("placements", help="PostgreSQL servers for silo tenants.")


@placements_cli.command("add")
@click.argument("name")
@click.option("--url-env", default="", help="environment variable with the owner URL (default: the registry's)")
@click.option("--capacity", type=int, required=True, help="most silo tenants it may hold")
def placements_add(name, url_env, capacity):
    placement = placements.register(name, url_env, capacity, actor=("system", None, "cli"))
    click.echo(f"registered placement {placement.name} ({placement.url_source}, capacity {placement.capacity})")


@placements_cli.command("list")
def placements_list():
    for placement, count in placements.all_placements():
        click.echo(f"{placement.name:<24} {count:>5} of {placement.capacity:<6} {placement.url_source}")


@placements_cli.command("drain")
@click.argument("name")
@click.option("--to", "to_name", required=True, help="the placement the tenants go to")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 16), help="moves at once")
def placements_drain(name, to_name, jobs):
    """Move every tenant off a server, online (run again to resume: those moved are not there)."""
    placement, to = placements.by_name(name), placements.by_name(to_name)
    if placement is None or to is None:
        _fail(f"no placement named {name if placement is None else to_name!r}")
    if jobs == 1:
        job = moves.request_drain(placement, to, ("system", None, "cli"))
        job = jobqueue.run(job, moves.run_drain, echo=click.echo)
        if job.state != "succeeded":
            _fail(f"drain {job.state}: {job.error}")
        click.echo(f"{name} is drained: {len(job.steps)} tenant(s) moved to {to_name}")
        return
    app = current_app._get_current_object()
    tenant_ids = [t.id for t in moves.check_drain(placement, to)]

    def move_one(tenant_id):
        with app.app_context():
            try:
                tenant = registry.get_tenant(tenant_id)
                return tenant.slug, moves.describe(moves.move_off(tenant, db.session.get(type(to), to.id),
                                                                  ("system", None, "cli")))
            except Refused as exc:
                return str(tenant_id), f"REFUSED: {exc.message}"
            finally:
                db.session.remove()

    failed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for slug, outcome in pool.map(move_one, tenant_ids):
            click.echo(f"  {slug:<30} {outcome}")
            failed += not outcome.startswith("moved")
    if failed:
        _fail(f"{failed} of {len(tenant_ids)} tenant(s) did not move; run again to retry them")
    click.echo(f"{name} is drained: {len(tenant_ids)} tenant(s) moved to {to_name}")


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--password", default=None,
              help="a password you choose (never printed back; it stays in the shell's history: "
                   "prefer --prompt-password)")
@click.option("--prompt-password", is_flag=True, help="type the password at a hidden prompt, twice")
def staff_create(email, role, password, prompt_password):
    """Create a staff user. A password you give is never printed back; with none, one is
    generated and shown once."""
    if password is not None and prompt_password:
        _fail("Give --password or --prompt-password, not both.")
    if prompt_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user, chosen = create_staff_user(email, role, password)
    click.echo(f"created staff user {user.email} ({user.role})")
    if password is None:
        click.echo(f"generated password, shown only this once (stored only as a hash): {chosen}")
    else:
        click.echo("password: the one you gave (not shown)")


@staff_cli.command("list")
def staff_list():
    """Every staff member: role, state, last sign-in, live sessions (as the Staff page)."""
    rows = staff_services.list_staff()
    click.echo(f"{'email':<40} {'role':<11} {'state':<19} {'last sign-in':<17} sessions")
    for row in rows:
        last = f"{row.member.last_login_at:%Y-%m-%d %H:%M}" if row.member.last_login_at else "never"
        click.echo(f"{row.member.email:<40} {row.member.role:<11} {row.state:<19} {last:<17} {row.sessions}")
    click.echo(f"{len(rows)} staff member(s)")


@staff_cli.command("invite")
@click.argument("email")
@click.option("--role", required=True, help=", ".join(STAFF_ROLES))
@click.option("--name", default="", help="how the console greets them")
def staff_invite(email, role, name):
    """Invite a staff member: a set-password link by mail, or kept in the outbox."""
    done = staff_services.invite(email, role, staff_services.CLI, name=name)
    expires = password_links.invitation_expires(done.member)
    click.echo(f"invited {done.member.email} ({done.member.role}); mail: {done.message.transport}; "
               f"the link works once and expires on {expires:%Y-%m-%d %H:%M} UTC")
    if done.message.transport == "outbox":
        click.echo(f"no mail server: the link (also in the outbox) is {done.link}")


@staff_cli.command("role")
@click.argument("email")
@click.argument("role")
def staff_role(email, role):
    """Give a staff member another role (fewer permissions: their sessions end)."""
    member = staff_services.change_role(staff_services.by_email(email).id, role, staff_services.CLI)
    click.echo(f"{member.email}: {member.role}")


def _staff_change(verb, action, said):
    @staff_cli.command(verb)
    @click.argument("email")
    def command(email):
        result = action(staff_services.by_email(email).id, staff_services.CLI)
        click.echo(said(email, result))

    command.__doc__ = f"{verb.replace('-', ' ').capitalize()} a staff member (the rules of the Staff page)."


_staff_change("disable", staff_services.disable, lambda email, _: f"{email}: disabled, signed out everywhere")
_staff_change("enable", staff_services.enable, lambda email, _: f"{email}: enabled")
_staff_change("end-sessions", staff_services.end_sessions, lambda email, n: f"{email}: {n} session(s) ended")


@support_cli.command("expire")
def support_expire():
    """Close impersonations past their time (for cron: a lapsed one is refused at once
    anyway; this records its end without waiting for a request or the list page)."""
    click.echo(f"{support.expire()} impersonation(s) closed")


@click.command("db-setup")
def db_setup():
    """Create the application role, apply both migration histories, grant rights."""
    setup_database(current_app.config)
    click.echo("database ready: registry and tenant tables migrated, application role granted")


@click.command("seed-demo")
def seed_demo():
    """Demo data (three tenants on the three plans), once."""
    for line in seed():
        click.echo(line)


analytics_cli = RefusingGroup("analytics", help="Analytics events.")


@analytics_cli.command("expire")
def analytics_expire():
    """Delete every tenant's events older than its plan's retention (for cron; the workers'
    scheduler runs the same job daily)."""
    from portal.analytics import retention

    totals = retention.expire_all()
    failed = f"; failed: {', '.join(totals['failed'])}" if totals["failed"] else ""
    click.echo(f"{totals['events']} event(s) and {totals['rollups']} roll-up row(s) expired in "
               f"{totals['tenants']} tenant(s){failed}")
    if totals["failed"]:
        raise SystemExit(1)


def register(app):
    for command in (tenants_cli, staff_cli, placements_cli, support_cli, analytics_cli, db_setup, seed_demo):
        app.cli.add_command(command)
