"""The keyring and the anchors without files or a database: rotation, truncation, rewrites."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vbank.domain.anchors import Anchor, EvidenceTrust, anchor_of, check_anchors
from vbank.domain.evidence import ChainLink, key_id, next_link, sha256_hex
from vbank.domain.keyring import BadKeyring, Keyring, check_signatures

OLD, NEW = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
T = "2025-05-01T00:00:00+00:00"


def chain(n: int, key: Ed25519PrivateKey = OLD,
          start: list[ChainLink] | None = None) -> list[ChainLink]:
    links = list(start or [])
    for i in range(n):
        links.append(next_link(links[-1] if links else None,
                               sha256_hex(f"m{len(links)}-{i}".encode()), key))
    return links


def anchors(links: list[ChainLink]) -> list[Anchor]:
    return [anchor_of(link, f"s_{link.seq}") for link in links]


def rotated_keyring(after: int) -> Keyring:
    return Keyring.of(OLD.public_key(), at=T).rotated(after, T).with_key(NEW.public_key(), T)


def test_entries_name_their_key_and_a_rotation_keeps_old_entries_valid() -> None:
    links = chain(3, OLD)
    links = chain(2, NEW, links)
    assert [link.key_id for link in links] == [key_id(OLD.public_key())] * 3 + [
        key_id(NEW.public_key())] * 2
    keyring = rotated_keyring(after=3)
    assert keyring.current is not None and keyring.current.id == key_id(NEW.public_key())
    assert check_signatures(links, keyring) == []


def test_an_entry_signed_with_a_retired_key_after_its_retirement_is_refused() -> None:
    links = chain(4, OLD)  # the old key, stolen, goes on signing after the rotation
    old_id = key_id(OLD.public_key())
    assert check_signatures(links, rotated_keyring(after=2)) == [
        f"signature: entry 3 is signed with key {old_id}, retired after entry 2",
        f"signature: entry 4 is signed with key {old_id}, retired after entry 2"]


def test_entries_sealed_before_key_ids_are_tried_with_every_allowed_key() -> None:
    links = [replace(link, key_id=None) for link in chain(2, OLD)]
    assert check_signatures(links, rotated_keyring(after=2)) == []
    assert check_signatures(links, rotated_keyring(after=1)) == [
        "signature: invalid for entry 2"]


def test_no_keyring_is_one_problem() -> None:
    assert check_signatures(chain(3), Keyring()) == [
        "signature: no keyring to check with (VBANK_EVIDENCE_KEYRING)"]


def test_keyring_round_trips_and_refuses_a_key_under_another_id() -> None:
    keyring = rotated_keyring(after=7)
    assert Keyring.from_json(keyring.to_json()) == keyring
    forged = keyring.to_json().replace(keyring.keys[0].id.encode(), b"0" * 16)
    with pytest.raises(BadKeyring, match="is not the id of its public key"):
        Keyring.from_json(forged)


def test_an_intact_anchored_chain_has_no_problem() -> None:
    links = chain(4)
    trust = EvidenceTrust(Keyring.of(OLD.public_key()))
    assert check_anchors(links, anchors(links), trust) == []


def test_a_chain_cut_at_its_end_is_truncated_and_names_the_sessions() -> None:
    links = chain(5)
    trust = EvidenceTrust(Keyring.of(OLD.public_key()))
    assert check_anchors(links[:3], anchors(links), trust) == [
        "chain: truncated after entry 3 (the anchors go on to entry 5)",
        "anchor: entry 4 (session s_4) was sealed and is missing from the chain",
        "anchor: entry 5 (session s_5) was sealed and is missing from the chain"]


def test_entries_before_the_first_anchor_need_none_but_later_ones_do() -> None:
    links = chain(5)
    trust = EvidenceTrust(Keyring.of(OLD.public_key()))
    kept = [a for a in anchors(links) if a.seq in (3, 5)]
    assert check_anchors(links, kept, trust) == ["anchor: entry 4 has no anchor"]


def test_an_entry_rewritten_and_re_signed_no_longer_matches_its_anchor() -> None:
    links = chain(3)
    trust = EvidenceTrust(Keyring.of(OLD.public_key()))
    rewritten = chain(1, OLD, links[:1])  # entry 2 again, over another manifest
    assert rewritten[1].chain_sha256 != links[1].chain_sha256
    assert check_anchors([links[0], rewritten[1]], anchors(links[:2]), trust) == [
        "anchor: entry 2 does not match its anchor"]


def test_an_anchor_rewritten_without_the_key_is_caught_by_its_signature() -> None:
    links = chain(2)
    trust = EvidenceTrust(Keyring.of(OLD.public_key()))
    forged = [anchors(links)[0], replace(anchors(links)[1], chain_sha256="f" * 64)]
    assert check_anchors(links, forged, trust) == [
        "anchor: entry 2 does not match its anchor",
        "signature: invalid for the anchor of entry 2"]
