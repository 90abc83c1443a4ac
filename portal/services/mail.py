"""Outgoing mail: over SMTP when SMTP_HOST is set, else kept in the outbox (and logged).

Every message becomes an OutboxMessage row, added to the current registry session: the
caller commits it, with the change the message announces (like an audit event).
"""
import logging
import re
import smtplib
import ssl
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from portal.extensions import db
from portal.models import OutboxMessage

log = logging.getLogger(__name__)

# Long enough for a slow relay, short enough that a page waiting on it does not hang.
SMTP_TIMEOUT_SECONDS = 10
_LINK = re.compile(r"https?://\S+")


def send(to, subject, body, tenant_id=None):
    """Send one plain-text message, or keep it in the outbox. Returns the OutboxMessage;
    when an SMTP delivery failed, its `error` says why and `sent_at` is None."""
    cfg = current_app.config
    # A header holds one line: a name with a line break in it must not add headers.
    subject = " ".join(subject.split())[:200]
    now = datetime.now(timezone.utc)
    message = OutboxMessage(tenant_id=tenant_id, to_address=to, subject=subject, body=body,
                            transport="smtp" if cfg["SMTP_HOST"] else "outbox", created_at=now)
    if cfg["SMTP_HOST"]:
        try:
            _deliver(cfg, to, subject, body)
        except OSError as exc:  # refused connection, timeout, TLS, and every SMTPException
            message.error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("mail not sent: to=%s subject=%r error=%s", to, subject, message.error)
        else:
            message.sent_at = datetime.now(timezone.utc)
            log.info("mail sent: to=%s subject=%r", to, subject)
        # Links in mail carry secrets (set-password tokens): once the mail server has
        # them, staff reading the outbox page must not be able to follow them.
        message.body = _LINK.sub("[link sent by mail only]", body)
    else:
        # No mail server: the outbox page and this line are how the message gets out.
        log.info("mail kept in the outbox: to=%s subject=%r links=%s", to, subject,
                 " ".join(_LINK.findall(body)) or "none")
    db.session.add(message)
    return message


def _deliver(cfg, to, subject, body):
    mail = EmailMessage()
    mail["From"] = cfg["MAIL_FROM"]
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid()
    mail.set_content(body)
    with smtplib.SMTP(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if cfg["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if cfg["SMTP_USER"]:
            smtp.login(cfg["SMTP_USER"], cfg["SMTP_PASSWORD"] or "")
        smtp.send_message(mail)
