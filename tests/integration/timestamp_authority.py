"""A minimal RFC 3161 timestamp authority on loopback, for the evidence tests.

Nothing outside this machine can be reached, so the tests start their own authority: a
self-signed end-entity TSA certificate (key usage digitalSignature and nonRepudiation only,
critical extended key usage ``timeStamping``, as RFC 3161 §2.3 and OpenSSL's timestamp
purpose ask), and an HTTP server in a thread that answers ``application/timestamp-query``
with a ``TimeStampResp``: a CMS ``SignedData`` over a ``TSTInfo`` holding the request's
message imprint and nonce, signed with ECDSA P-256 and carrying the ``signingCertificateV2``
attribute. Built with asn1crypto (DER) and cryptography (keys, certificate, signature).
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: the policy the test authority stamps under (an OID of the documentation arc)
POLICY = "1.3.6.1.4.1.55555.1.1"


def make_certificate(common_name: str = "vbank test TSA") -> tuple[ec.EllipticCurvePrivateKey,
                                                                   x509.Certificate]:
    """A self-signed certificate fit for timestamping, valid from a day ago for a year."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


class TimestampAuthority:
    """``with TimestampAuthority() as tsa:`` serves at ``tsa.url`` until the block ends."""

    def __init__(self) -> None:
        self.key, self.certificate = make_certificate()
        self.requests = 0  # how many stamps were asked for
        self.refuse = False  # answer 503 instead of a token (an authority that is down)
        self.clock = lambda: datetime.now(UTC)  # the authority's time (a test moves it on)
        self._serial = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def write_certificate(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def __enter__(self) -> TimestampAuthority:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # ------------------------------------------------------------------ the protocol
    def respond(self, query: bytes) -> bytes:
        """The DER ``TimeStampResp`` granting a stamp of ``query``'s message imprint."""
        request = tsp.TimeStampReq.load(query)
        self._serial += 1
        info = tsp.TSTInfo({
            "version": "v1", "policy": POLICY,
            "message_imprint": request["message_imprint"],
            "serial_number": self._serial,
            "gen_time": self.clock().replace(microsecond=0),
            "nonce": request["nonce"].native,
        })
        content = info.dump()
        cert = asn1_x509.Certificate.load(
            self.certificate.public_bytes(serialization.Encoding.DER))
        attributes = sorted(
            (cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
             cms.CMSAttribute({"type": "message_digest",
                               "values": [hashlib.sha256(content).digest()]}),
             cms.CMSAttribute({"type": "signing_certificate_v2", "values": [
                 tsp.SigningCertificateV2({"certs": [tsp.ESSCertIDv2({
                     "cert_hash": hashlib.sha256(cert.dump()).digest()})]})]})),
            key=lambda a: a.dump())  # DER orders a SET OF by its encodings
        signed_attrs = cms.CMSAttributes(attributes)
        signature = self.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
                {"issuer": cert.issuer, "serial_number": cert.serial_number})}),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signature,
        })
        signed = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info",
                                   "content": core.ParsableOctetString(content)},
            "certificates": [cert] if request["cert_req"].native else [],
            "signer_infos": [signer],
        })
        return tsp.TimeStampResp({
            "status": tsp.PKIStatusInfo({"status": "granted"}),
            "time_stamp_token": cms.ContentInfo({"content_type": "signed_data",
                                                 "content": signed}),
        }).dump()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                authority.requests += 1
                query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if authority.refuse:
                    self.send_error(503, "stamping is off")
                    return
                body = authority.respond(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # quiet
                pass

        return Handler
