"""The RFC 3161 timestamp authority the operator configures (``VBANK_TSA_URL``), over HTTP.

Each seal asks it to stamp the new entry's chain hash and keeps the token in the entry's
anchor. A token is checked as it arrives (the request's nonce, the hash, the signature
against ``VBANK_TSA_CERT``): an authority that answers wrongly fails the seal, which is
then retried and alerted like any failed seal, rather than leave a token that never checks.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography import x509

from vbank.config import Settings
from vbank.domain.anchors import EvidenceTrust
from vbank.domain.evidence import EvidenceError
from vbank.domain.timestamps import TimestampError, check_token, timestamp_request
from vbank.store.evidence_keys import load_keyring


class TimestampAuthority:
    """Asks one authority for tokens."""

    def __init__(self, url: str, roots: tuple[x509.Certificate, ...], timeout_s: float) -> None:
        self.url = url
        self.roots = roots  # the certificates its tokens must chain to
        self.timeout_s = timeout_s

    async def stamp(self, message: bytes, chain_sha256: str) -> bytes:
        """A checked token stamping ``chain_sha256`` (the SHA-256 of ``message``)."""
        request = timestamp_request(message)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.post(
                    self.url, content=request.as_bytes(),
                    headers={"Content-Type": "application/timestamp-query"})
        except httpx.HTTPError as exc:
            raise TimestampError(f"timestamp authority {self.url} did not answer "
                                 f"({type(exc).__name__})") from exc
        if answer.status_code != 200:
            raise TimestampError(f"timestamp authority {self.url} answered "
                                 f"{answer.status_code}")
        try:
            return check_token(answer.content, chain_sha256, self.roots,
                               nonce=request.nonce).token
        except TimestampError as exc:
            raise TimestampError(f"timestamp authority {self.url}: the token {exc}") from exc


def tsa_roots(path: Path | None) -> tuple[x509.Certificate, ...]:
    """The certificates in the PEM file ``path`` (none when no file is configured)."""
    if path is None:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"VBANK_TSA_CERT {path} holds no readable certificate") from exc


def authority(settings: Settings) -> TimestampAuthority | None:
    """The configured authority, or None (the default: seals are not timestamped)."""
    if not settings.tsa_url:
        return None
    if settings.tsa_cert is None:
        raise EvidenceError("VBANK_TSA_URL is set without VBANK_TSA_CERT, the authority's "
                            "certificate its tokens are checked against")
    return TimestampAuthority(settings.tsa_url, tsa_roots(settings.tsa_cert),
                              settings.tsa_timeout_s)


def evidence_trust(settings: Settings) -> EvidenceTrust:
    """What verify believes: the keyring, and the authority's certificates if configured."""
    return EvidenceTrust(load_keyring(settings.evidence_keyring_path),
                         tsa_roots(settings.tsa_cert))
