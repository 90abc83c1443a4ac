"""The DNS check behind a custom domain: a TXT record at `_tenancy-portal.<domain>`
reading `tenancy-portal-verification=<token>`.

Asked of the nameservers DNS_NAMESERVERS names ("host" or "host:port", comma-separated),
else of the system's resolver; with a short lifetime, since a tenant admin waits on
the page for the answer.
"""
import ipaddress
import logging
import socket

import dns.exception
import dns.nameserver
import dns.resolver

RECORD_LABEL = "_tenancy-portal"
VALUE_PREFIX = "tenancy-portal-verification="
TIMEOUT_SECONDS = 2.0  # one nameserver
LIFETIME_SECONDS = 3.0  # the whole lookup, retries included

log = logging.getLogger(__name__)


def record_name(domain):
    return f"{RECORD_LABEL}.{domain}"


def record_value(token):
    return f"{VALUE_PREFIX}{token}"


def check(domain, token, nameservers_setting=""):
    """None when the TXT record carries `token`; else why not, in words for the page."""
    name = record_name(domain)
    try:
        resolver = _resolver(nameservers_setting)
    except (OSError, ValueError) as exc:
        log.error("DNS_NAMESERVERS %r cannot be used: %s", nameservers_setting, exc)
        return "DNS lookup failed: the portal's nameserver setting is wrong; please tell support"
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return f"no TXT record found at {name}"
    except dns.exception.Timeout:
        return f"DNS lookup failed: no answer within {LIFETIME_SECONDS:g} seconds"
    except dns.resolver.NoNameservers:
        # Its message names our nameservers' addresses: not for a tenant's page.
        return "DNS lookup failed: the nameservers answered with an error (e.g. SERVFAIL)"
    except dns.exception.DNSException as exc:
        return f"DNS lookup failed: {exc}"
    # A long TXT value comes in several strings of up to 255 bytes: they form one value.
    values = {b"".join(rdata.strings).decode("utf-8", "replace").strip() for rdata in answer}
    if record_value(token) in values:
        return None
    return "the TXT record does not carry this domain's token"


def _resolver(setting):
    servers = parse_nameservers(setting)
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = servers
    resolver.timeout = TIMEOUT_SECONDS
    resolver.lifetime = LIFETIME_SECONDS
    return resolver


def parse_nameservers(setting):
    """Nameservers from "host", "host:port", "[v6 address]:port", comma-separated."""
    servers = []
    for item in (setting or "").split(","):
        item = item.strip()
        if item:
            host, port = _split(item)
            servers.append(dns.nameserver.Do53Nameserver(_address(host), port))
    return servers


def _split(item):
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif item.count(":") == 1:
        host, port = item.split(":")
    else:  # a name, an IPv4 address, or a bare IPv6 address
        host, port = item, ""
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {item!r}")
    return host, int(port) if port else 53


def _address(host):
    """dnspython asks addresses only: a nameserver given by name is looked up once here."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return socket.getaddrinfo(host, 53, type=socket.SOCK_DGRAM)[0][4][0]
