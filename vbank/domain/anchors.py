"""Anchors of the evidence chain: the head as each seal left it, kept apart from the chain.

Each seal writes, besides its chain entry, an anchor: the entry's number, session, chain
hash and signature, and (when the operator configured an authority) an RFC 3161 timestamp
of that chain hash. Anchors live in the database's ``evidence_anchors`` table, which the
operator can make insert-only for the server's role, and the timestamp is signed by a
third party. Verify then finds what the chain alone cannot show: an entry deleted from the
end (a truncated chain reads like a session never sealed), an entry rewritten and
re-signed, a token that is not the authority's or stamps another hash, and a token made
after the key that signed its entry was retired (re-sealed with a stolen old key).

Pure: the store reads the rows and hands them over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from vbank.domain.evidence import ChainLink
from vbank.domain.keyring import Keyring, signature_problem
from vbank.domain.timestamps import TimestampError, check_token


@dataclass(frozen=True, slots=True)
class Anchor:
    """One seal's record of the chain's head (an ``EvidenceAnchor`` row)."""

    seq: int
    session_id: str
    chain_sha256: str
    signature: str
    key_id: str | None
    timestamp: bytes | None = None  # DER TimeStampResp of ``chain_sha256``, if stamped


@dataclass(frozen=True, slots=True)
class EvidenceTrust:
    """What verify believes, none of it from the data directory: the keyring's public keys
    and the certificates of the timestamp authority (none: tokens cannot be checked)."""

    keyring: Keyring
    tsa_roots: tuple[x509.Certificate, ...] = ()


def anchor_of(link: ChainLink, session_id: str, timestamp: bytes | None = None) -> Anchor:
    return Anchor(link.seq, session_id, link.chain_sha256, link.signature, link.key_id,
                  timestamp)


def check_anchors(links: Sequence[ChainLink], anchors: Sequence[Anchor],
                  trust: EvidenceTrust) -> list[str]:
    """Problems of the chain read from its first entry (``links``) against the anchors of
    the same entries, in the order an auditor reads them: a cut end first, then per entry."""
    problems: list[str] = []
    by_seq = {link.seq: link for link in links}
    anchored = {a.seq: a for a in anchors}
    last = max(by_seq, default=0)
    if anchored and max(anchored) > last:
        problems.append(f"chain: truncated after entry {last} (the anchors go on to entry "
                        f"{max(anchored)})")
    first_anchored = min(anchored, default=None)
    for seq in sorted({*by_seq, *anchored}):
        link, anchor = by_seq.get(seq), anchored.get(seq)
        if link is None and anchor is not None:
            problems.append(f"anchor: entry {seq} (session {anchor.session_id}) was sealed "
                            f"and is missing from the chain")
        elif anchor is None:
            # entries sealed before anchors existed have none; any later one must
            if first_anchored is not None and seq > first_anchored:
                problems.append(f"anchor: entry {seq} has no anchor")
        elif link is not None:
            problems += _anchor_problems(link, anchor, trust)
    return problems


def _anchor_problems(link: ChainLink, anchor: Anchor, trust: EvidenceTrust) -> list[str]:
    problems: list[str] = []
    if (anchor.chain_sha256, anchor.signature, anchor.key_id) != (
            link.chain_sha256, link.signature, link.key_id):
        problems.append(f"anchor: entry {link.seq} does not match its anchor")
    signed = ChainLink(anchor.seq, "", "", anchor.chain_sha256, anchor.signature,
                       anchor.key_id)
    wrong = signature_problem(signed, trust.keyring, what="the anchor of entry")
    if wrong:
        problems.append(wrong)
    if anchor.timestamp is None:
        return problems
    try:
        stamp = check_token(anchor.timestamp, link.chain_sha256, trust.tsa_roots)
    except TimestampError as exc:
        problems.append(f"timestamp: the token of entry {link.seq} {exc}")
        return problems
    key = trust.keyring.get(link.key_id) if link.key_id else None
    if key is not None and key.retired_at is not None and \
            stamp.stamped_at > datetime.fromisoformat(key.retired_at):
        problems.append(f"timestamp: entry {link.seq} was stamped at "
                        f"{stamp.stamped_at.isoformat()}, after its key {key.id} was retired "
                        f"({key.retired_at})")
    return problems
