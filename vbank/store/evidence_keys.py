"""The branch's evidence signing key and its keyring, where the operator keeps them.

- The key (``VBANK_EVIDENCE_KEY``): Ed25519, PEM, mode 0600, made on first start. Whoever
  reads it can sign evidence, so production keeps it outside the data directory, readable
  only by the server's user; a key file others may read is refused. The default,
  ``<data>/keys/branch-ed25519.pem``, is for demonstrations.
- The keyring (``VBANK_EVIDENCE_KEYRING``, default ``evidence-keyring.json`` beside the key):
  every public key that signed the chain, with the last entry each retired key signed.
  Verify trusts these and nothing in the data directory.
- Rotation (``vbank evidence rotate-key``, with every node stopped): the current key is
  retired after the chain's last entry, a new key replaces it in its file, and the keyring
  keeps the old public key so the entries it signed still verify.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vbank.domain.evidence import EvidenceError, key_id
from vbank.domain.keyring import Keyring, TrustedKey

#: the key file's mode; a key that its group or others may read is refused
KEY_MODE = 0o600


def signing_key(key_path: Path, keyring_path: Path,
                now: datetime | None = None) -> Ed25519PrivateKey:
    """The branch's key, loaded or made on first start (never logged), listed in the keyring.

    Refused (``EvidenceError``, saying what to do): a key others may read, a key the
    keyring retired, a key that is not the keyring's current one (every node signs with the
    same key; a new one comes in by rotation), and no key where the keyring has a current
    one (a mistyped path would otherwise start a second key).
    """
    at = _iso(now)
    keyring = load_keyring(keyring_path)
    current = keyring.current
    if not key_path.exists():
        if current is not None:
            raise EvidenceError(f"no evidence key at {key_path}, but the keyring "
                                f"{keyring_path} says key {current.id} signs: point "
                                f"VBANK_EVIDENCE_KEY at it, or run vbank evidence rotate-key")
        _write_key(key_path, Ed25519PrivateKey.generate(), replace=False)
    key = load_private_key(key_path)
    kid = key_id(key.public_key())
    known = keyring.get(kid)
    if known is not None and known.retired_after is not None:
        raise EvidenceError(f"evidence key {key_path} (key {kid}) was retired after entry "
                            f"{known.retired_after}; the keyring's current key is "
                            f"{current.id if current else 'none'}")
    if known is None:
        if current is not None:
            raise EvidenceError(f"evidence key {key_path} (key {kid}) is not in the keyring "
                                f"{keyring_path}, whose current key is {current.id}: every "
                                f"node signs with the same key, and a new key comes in with "
                                f"vbank evidence rotate-key")
        write_keyring(keyring_path, keyring.with_key(key.public_key(), at))
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"evidence key {path} cannot be read ({exc.strerror})") from exc
    if mode & 0o077:
        raise EvidenceError(f"evidence key {path} may be read by others (mode {mode:04o}): "
                            f"chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(f"{path} is not a readable private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"{path} is not an Ed25519 key")
    return key


def load_keyring(path: Path) -> Keyring:
    """The keyring at ``path``; an empty one when there is none yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Keyring()
    except OSError as exc:
        raise EvidenceError(f"keyring {path} cannot be read ({exc.strerror})") from exc
    return Keyring.from_json(data)


def write_keyring(path: Path, keyring: Keyring) -> None:
    """Replace the keyring whole (public keys: readable by all, written by the server)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(keyring.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rotate_key(key_path: Path, keyring_path: Path, head_seq: int,
               now: datetime | None = None) -> tuple[list[TrustedKey], TrustedKey]:
    """Retire every current key after entry ``head_seq`` and put a new key in ``key_path``.

    Returns the keys retired and the new one. The old private key is overwritten (its
    public half stays in the keyring); run it with every node stopped, since a node still
    holding the old key would seal entries the keyring no longer accepts.
    """
    at = _iso(now)
    keyring = load_keyring(keyring_path)
    if key_path.exists():  # listed even if no start ever wrote it into the keyring
        keyring = keyring.with_key(load_private_key(key_path).public_key(), at)
    retiring = [k for k in keyring.keys if k.retired_after is None]
    new = Ed25519PrivateKey.generate()
    keyring = keyring.rotated(head_seq, at).with_key(new.public_key(), at)
    # The keyring first: a stop between the two leaves a retired key in the file, which
    # start refuses, rather than a key the keyring does not know.
    write_keyring(keyring_path, keyring)
    _write_key(key_path, new, replace=True)
    retired = [k for k in keyring.keys if k.id in {r.id for r in retiring}]
    fresh = keyring.get(key_id(new.public_key()))
    assert fresh is not None
    return retired, fresh


def _write_key(path: Path, key: Ed25519PrivateKey, replace: bool) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written whole under a private name, then linked in: a node starting at the same
    # moment either wins the link or reads the other's complete key, never half a file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _iso(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat()
