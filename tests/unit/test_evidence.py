"""Evidence rules without files or a database: manifests, the chain, signatures, problems."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from vbank.domain.evidence import (
    GENESIS,
    BadManifest,
    ChainLink,
    EvidenceItem,
    EvidenceManifest,
    Record,
    chain_hash,
    check_chain,
    compare_items,
    next_link,
    path_problem,
    sha256_hex,
    split_records,
)
from vbank.domain.keyring import Keyring, check_signatures

KEY = Ed25519PrivateKey.generate()
KEYRING = Keyring.of(KEY.public_key())


def manifest(items: tuple[EvidenceItem, ...] = (), **changes: object) -> EvidenceManifest:
    base = EvidenceManifest(
        session_id="s_1", service="loan_signing", reference="VB-0001", customer="alice",
        tellers=("tina",), outcome="completed", sealed_at="2025-01-02T03:04:05+00:00",
        items=items or (EvidenceItem("transcript", "evidence/s_1/transcript.json", "a" * 64, 10),
                        EvidenceItem("recording", "recordings/s_1/customer-1.webm", "b" * 64,
                                     2048, role="customer",
                                     started_at="2025-01-02T03:00:00+00:00", duration_s=12.5)),
        summary={"records": {"caption": 2}, "recordings": 1})
    return replace(base, **changes)  # type: ignore[arg-type]


def chain(n: int) -> list[ChainLink]:
    links: list[ChainLink] = []
    for i in range(n):
        links.append(next_link(links[-1] if links else None, sha256_hex(f"m{i}".encode()), KEY))
    return links


def test_canonical_json_is_sorted_compact_and_stable() -> None:
    m = manifest()
    data = m.to_json()
    assert data.startswith(b'{"customer":"alice","items":[{"bytes":10,"kind":"transcript"')
    assert b" " not in data.replace(b"VB-0001", b"")
    # the same manifest built again, summary keys in another order: the same bytes
    again = manifest(summary={"recordings": 1, "records": {"caption": 2}})
    assert again.to_json() == data and again.sha256() == m.sha256()


def test_manifest_and_chain_hashes_do_not_drift() -> None:
    # Sealed packages must verify for years: a change here breaks every existing chain.
    assert manifest().sha256() == (
        "43478352bf5b937e953c382a332362833cc8eae84e78441e953609a95d1777a8")
    assert chain_hash(1, GENESIS, "a" * 64) == (
        "2e09c2e331298bf6a7ab4772e04e2466007b1618dbcaa986d9f517fcbc79af38")


def test_manifest_round_trips_through_its_json() -> None:
    m = manifest()
    assert EvidenceManifest.from_json(m.to_json()) == m
    leg = m.item("recordings/s_1/customer-1.webm")
    assert leg is not None and leg.started_at == "2025-01-02T03:00:00+00:00"


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"version": 2}', b"[1]",
                                  b'{"version": 1, "items": 3}'])
def test_unreadable_manifest_is_refused(data: bytes) -> None:
    with pytest.raises(BadManifest):
        EvidenceManifest.from_json(data)


def test_an_intact_chain_has_no_problem_and_starts_at_genesis() -> None:
    links = chain(5)
    assert links[0].seq == 1 and links[0].prev_sha256 == GENESIS
    assert check_chain(links) == []
    assert check_signatures(links, KEYRING) == []


def test_chain_detects_reordered_entries() -> None:
    links = chain(4)
    swapped = [links[0], links[2], links[1], links[3]]
    assert check_chain(swapped) == ["chain: entry 2 is missing",
                                    "chain: entry 2 is out of order (after entry 3)",
                                    "chain: entry 4 does not follow entry 3"]


def test_chain_detects_contents_swapped_between_numbers() -> None:
    # Rows keep their numbers but exchange everything else (what an UPDATE could do).
    a, b, c, d = chain(4)
    tampered = [a, replace(c, seq=2), replace(b, seq=3), d]
    problems = check_chain(tampered)
    assert "chain: entry 2 does not match its hash" in problems
    assert "chain: entry 2 does not follow entry 1" in problems
    assert "chain: entry 3 does not match its hash" in problems


def test_chain_detects_gaps() -> None:
    links = chain(6)
    assert check_chain([links[0], links[3], links[4], links[5]]) == [
        "chain: entries 2 to 3 are missing"]
    assert check_chain(links[1:]) == ["chain: entry 1 is missing"]


def test_chain_detects_a_changed_manifest_hash() -> None:
    links = chain(3)
    links[1] = replace(links[1], manifest_sha256="f" * 64)
    assert check_chain(links) == ["chain: entry 2 does not match its hash"]


def test_signature_detects_a_changed_chain_hash() -> None:
    links = chain(3)
    forged_hash = sha256_hex(b"forged")
    links[2] = replace(links[2], chain_sha256=forged_hash)
    assert check_signatures(links, KEYRING) == ["signature: invalid for entry 3"]


def test_signature_of_another_key_or_garbage_is_invalid() -> None:
    links = chain(2)
    other = Ed25519PrivateKey.generate().public_key()
    kid = links[0].key_id
    assert check_signatures(links, Keyring.of(other)) == [
        f"signature: entry 1 is signed with key {kid}, which is not in the keyring",
        f"signature: entry 2 is signed with key {kid}, which is not in the keyring"]
    links[0] = replace(links[0], signature="zz")
    assert check_signatures(links, KEYRING) == ["signature: invalid for entry 1"]


def test_compare_items_names_changed_and_missing_items() -> None:
    m = manifest()
    found = {"evidence/s_1/transcript.json": "c" * 64}
    assert compare_items(m.items, found) == [
        f"changed: evidence/s_1/transcript.json (sha256 {'c' * 12}… expected {'a' * 12}…)",
        "missing: recordings/s_1/customer-1.webm"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../keys/branch-ed25519.pem",
                                  "evidence/../../x", "", "a\\b"])
def test_paths_outside_the_data_directory_are_refused(path: str) -> None:
    assert path_problem(path) == f"manifest: unsafe path {path!r}"
    item = EvidenceItem("document", path, "a" * 64, 1)
    assert compare_items([item], {path: "a" * 64}) == [f"manifest: unsafe path {path!r}"]


def test_records_split_into_transcript_timeline_and_qc() -> None:
    records = [
        Record("t1", "caption", "tina", {"speaker": "teller", "text": "Hello"}),
        Record("t2", "identity", "tina", {"verified": True}),
        Record("t3", "qc_alert", "system", {"kind": "forbidden_phrase"}),
        Record("t4", "signature", "alice", {}, path="evidence/s_1/sig.png", sha256="d" * 64),
        Record("t5", "qc_result", "system", {"missing": []}),
    ]
    docs = split_records(records)
    assert docs["transcript"] == [{"at": "t1", "speaker": "teller", "text": "Hello"}]
    assert [e["kind"] for e in docs["timeline"]] == ["identity", "signature"]
    assert docs["timeline"][1]["path"] == "evidence/s_1/sig.png"
    assert [e["kind"] for e in docs["qc"]] == ["qc_alert", "qc_result"]


@settings(max_examples=200, deadline=None)
@given(contents=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6),
       data=st.data())
def test_any_single_byte_change_in_any_item_is_detected_and_named(
        contents: list[bytes], data: st.DataObject) -> None:
    items = tuple(EvidenceItem("document", f"evidence/s_1/doc-{i}.bin", sha256_hex(c), len(c))
                  for i, c in enumerate(contents))
    which = data.draw(st.integers(0, len(contents) - 1))
    at = data.draw(st.integers(0, len(contents[which]) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != contents[which][at]))
    changed = bytearray(contents[which])
    changed[at] = new
    on_disk = [bytes(changed) if i == which else c for i, c in enumerate(contents)]
    found: dict[str, str | None] = {it.path: sha256_hex(c) for it, c in zip(items, on_disk,
                                                                           strict=True)}
    problems = compare_items(items, found)
    assert len(problems) == 1
    assert problems[0].startswith(f"changed: evidence/s_1/doc-{which}.bin (sha256 ")


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 8), data=st.data())
def test_any_dropped_or_moved_entry_breaks_the_chain(n: int, data: st.DataObject) -> None:
    links = chain(n)
    order = data.draw(st.permutations(range(n)))
    dropped = data.draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    seen = [links[i] for i in order if i not in dropped]
    untouched = [links[i] for i in range(len(seen))] == seen
    assert (check_chain(seen) == []) == untouched
