"""The evidence keyring: which public key verifies which entry of the branch's chain.

The operator keeps the keyring apart from the data directory (beside the signing key). Each
chain entry names the key that signed it by its key id, so after a rotation the entries the
old key signed still verify, and no entry after its retirement does. Pure: the store reads
and writes the keyring file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vbank.domain.evidence import (
    ChainLink,
    EvidenceError,
    document_bytes,
    key_id,
    signature_valid,
)


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key of the keyring; once rotated out, valid only up to ``retired_after``."""

    id: str
    public_key: Ed25519PublicKey
    added_at: str
    retired_after: int | None = None  # the last chain entry it may have signed
    retired_at: str | None = None  # when it was rotated out (a later timestamp is forged)

    def allows(self, seq: int) -> bool:
        return self.retired_after is None or seq <= self.retired_after

    def to_dict(self) -> dict[str, Any]:
        pem = self.public_key.public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"id": self.id, "public_key": pem.decode("ascii"), "added_at": self.added_at,
                "retired_after": self.retired_after, "retired_at": self.retired_at}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrustedKey:
        public = serialization.load_pem_public_key(str(raw["public_key"]).encode("ascii"))
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        if key_id(public) != raw["id"]:
            raise ValueError(f"key {raw['id']} is not the id of its public key")
        retired = raw.get("retired_after")
        return cls(id=str(raw["id"]), public_key=public, added_at=str(raw["added_at"]),
                   retired_after=None if retired is None else int(retired),
                   retired_at=None if raw.get("retired_at") is None
                   else str(raw["retired_at"]))


class BadKeyring(EvidenceError):
    """Keyring bytes that do not parse."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """Every public key that ever signed the branch's chain, oldest first.

    At most one key is current (not retired): the one sealing now.
    """

    keys: tuple[TrustedKey, ...] = ()

    @classmethod
    def of(cls, *public_keys: Ed25519PublicKey, at: str = "") -> Keyring:
        return cls(tuple(TrustedKey(key_id(k), k, at) for k in public_keys))

    def get(self, kid: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.id == kid), None)

    @property
    def current(self) -> TrustedKey | None:
        return next((k for k in reversed(self.keys) if k.retired_after is None), None)

    def with_key(self, public_key: Ed25519PublicKey, at: str) -> Keyring:
        """The keyring with ``public_key`` added as the current key (no change if present)."""
        if self.get(key_id(public_key)) is not None:
            return self
        return Keyring((*self.keys, TrustedKey(key_id(public_key), public_key, at)))

    def rotated(self, head_seq: int, at: str) -> Keyring:
        """Every current key retired: it signed entries up to ``head_seq`` and no more."""
        return Keyring(tuple(replace(k, retired_after=head_seq, retired_at=at)
                             if k.retired_after is None else k for k in self.keys))

    def to_json(self) -> bytes:
        return document_bytes({"keys": [k.to_dict() for k in self.keys]})

    @classmethod
    def from_json(cls, data: bytes) -> Keyring:
        try:
            return cls(tuple(TrustedKey.from_dict(k)
                             for k in json.loads(data.decode("utf-8"))["keys"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadKeyring(f"keyring: not readable ({exc})") from exc


def signature_problem(link: ChainLink, keyring: Keyring, what: str = "entry") -> str | None:
    """Why ``link``'s signature is not the keyring's, or None when it is.

    An entry sealed before entries carried a key id is tried with every key that may have
    signed its number.
    """
    if link.key_id is None:
        candidates = [k for k in keyring.keys if k.allows(link.seq)]
    else:
        key = keyring.get(link.key_id)
        if key is None:
            return (f"signature: {what} {link.seq} is signed with key {link.key_id}, "
                    f"which is not in the keyring")
        if not key.allows(link.seq):
            return (f"signature: {what} {link.seq} is signed with key {key.id}, retired "
                    f"after entry {key.retired_after}")
        candidates = [key]
    if any(signature_valid(k.public_key, link.chain_sha256, link.signature)
           for k in candidates):
        return None
    return f"signature: invalid for {what} {link.seq}"


def check_signatures(links: Sequence[ChainLink], keyring: Keyring) -> list[str]:
    if links and not keyring.keys:  # one line, not one per entry, for a keyring not found
        return ["signature: no keyring to check with (VBANK_EVIDENCE_KEYRING)"]
    return [problem for link in links if (problem := signature_problem(link, keyring))]
