"""A real DNS server on 127.0.0.1 for the custom-domain tests (no internet needed), and
an app pointed at it."""
import socket
import threading
from contextlib import contextmanager

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class FakeDNS:
    """Answers UDP queries: TXT records from `records` ({name: [value, ...]}), SERVFAIL
    for a name in `failing`, NXDOMAIN for any other name. Counts the queries it gets."""

    def __init__(self):
        self.records = {}
        self.failing = set()
        self.queries = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)  # so that the loop sees `stop` soon
        self.address = "127.0.0.1:%d" % self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            query = dns.message.from_wire(wire)
            self._sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query):
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        if name in self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and self.records[name]:
            quoted = ['"%s"' % value for value in self.records[name]]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", "TXT", quoted))
        return response  # a known name without TXT values: NOERROR, no answer

    def stop(self):
        self._stop.set()
        self._thread.join()
        self._sock.close()


@contextmanager
def dns_answering(app):
    """A FakeDNS that `app` asks while the block runs (DNS_NAMESERVERS restored after)."""
    server = FakeDNS()
    before = app.config["DNS_NAMESERVERS"]
    app.config["DNS_NAMESERVERS"] = server.address
    try:
        yield server
    finally:
        app.config["DNS_NAMESERVERS"] = before
        server.stop()
