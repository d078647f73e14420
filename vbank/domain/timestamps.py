"""RFC 3161 timestamps of the evidence chain: the request for an entry, and the checks of a token.

A timestamp authority (TSA) the operator trusts signs "this hash existed at this time". The
hash stamped is an entry's chain hash itself: the request's message imprint is the SHA-256
of ``chain_message(...)``, which is ``chain_sha256``. A token cannot be made later for an
earlier time, so whoever gets the branch's key afterwards cannot re-seal the past with
timestamps that look old. Pure (rfc3161-client builds and checks the ASN.1); the store asks
the authority over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimeStampRequest,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from vbank.domain.evidence import EvidenceError

#: the OID of SHA-256, the only imprint the branch asks for
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")


class TimestampError(EvidenceError):
    """A token refused: unreadable, not granted, not for this hash, or not the TSA's."""


def timestamp_request(message: bytes) -> TimeStampRequest:
    """A request (with a nonce, asking for the TSA's certificate) to stamp ``message``."""
    return TimestampRequestBuilder().data(message).hash_algorithm(HashAlgorithm.SHA256).build()


@dataclass(frozen=True, slots=True)
class Stamp:
    """A token that was checked: when the authority says the hash existed."""

    token: bytes  # the DER TimeStampResp as the authority sent it
    stamped_at: datetime


def _decode(token: bytes) -> TimeStampResponse:
    try:
        response = decode_timestamp_response(token)
        granted = response.status == PKIStatus.GRANTED
    except ValueError as exc:
        raise TimestampError("is not a readable RFC 3161 response") from exc
    if not granted:
        raise TimestampError(f"is not granted (status {response.status})")
    return response


def check_token(token: bytes, chain_sha256: str, roots: Sequence[x509.Certificate],
                nonce: int | None = None) -> Stamp:
    """The stamp in ``token`` if it stamps ``chain_sha256`` and a certificate of ``roots``
    (the TSA's own, or the CA that issued it) vouches for its signature; else
    ``TimestampError`` saying why (a predicate: "the token " + it reads on). ``nonce``: the
    request's, when checking a fresh answer.
    """
    if not roots:
        raise TimestampError("cannot be checked: no TSA certificate (VBANK_TSA_CERT)")
    response = _decode(token)
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256_OID or imprint.message != bytes.fromhex(chain_sha256):
        raise TimestampError("stamps another hash than the entry's chain hash")
    builder = VerifierBuilder(nonce=nonce)
    for root in roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(response, bytes.fromhex(chain_sha256))
    except VerificationError as exc:
        raise TimestampError(f"is not signed by the configured authority ({exc})") from exc
    return Stamp(token, response.tst_info.gen_time)
