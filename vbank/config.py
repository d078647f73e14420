"""Settings: every tunable of the branch, read from ``VBANK_*`` variables, in one place."""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import datetime
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vbank.domain.services import LANGUAGES

#: The signing key used when none is configured; accepted only with ``--demo``.
DEMO_SECRET = "vbank-demo-secret-do-not-use-in-production"
#: A shorter signing key is refused outside ``--demo``: HS256's key should be as long as its
#: hash (RFC 7518, 3.2), and a short one can be guessed offline from any token.
MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    """The server's configuration. Command-line options override these."""

    model_config = SettingsConfigDict(env_prefix="VBANK_", extra="ignore")

    data: Path = Field(Path("./var"), description="data directory: database, recordings")
    db: str | None = Field(None, description="database URL; SQLite under `data` when unset")
    redis: str | None = Field(None, description="Redis URL for multi-node mode")
    node: str = Field("", description="this node's name in multi-node mode, unique and the "
                                      "same across restarts; default host:port")
    redis_prefix: str = Field("vbank:", description="prefix of the branch's Redis keys")
    node_timeout_s: float = Field(15.0, ge=2, description="with several nodes: a node silent "
                                  "this long is presumed dead, and its waiting customers and "
                                  "tellers are taken out of the shared queues")
    secret: str = Field(DEMO_SECRET, description="HMAC key for bearer tokens")
    token_ttl_s: int = Field(1800, ge=60, description="bearer token lifetime")
    login_max_s: int = Field(43200, ge=60, description="longest a login lasts: refreshing "
                                                       "never takes a token past it")
    auth_cache_s: float = Field(5.0, ge=0, description="how long a node trusts what it read "
                                "of a token's user and login (role, sign-outs); a change "
                                "takes effect within it")
    lang: str = Field("en", description="default session language: en | zh")
    vosk_model: Path | None = Field(None, description="a vosk model directory users bring")
    # The speech models are loaded in the media workers, which read these three from the
    # environment they inherit (vbank/speech/whisper.py, endofturn.py, vad.py); they are
    # declared here so that every setting stands in one place.
    asr_model: Path | None = Field(None, description="a CTranslate2 Whisper model directory "
                                   "users bring; default: Whisper tiny.en from its package")
    turn_model: Path | None = Field(None, description="a Smart Turn ONNX file users bring; "
                                    "default: Smart Turn v3.2 from the pipecat-ai wheel")
    vad_model: Path | None = Field(None, description="a Silero VAD ONNX file users bring; "
                                   "default: the silero-vad package's")

    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False
    test_mode: bool = Field(False, description="a test server (the scenario runner's): new "
                                               "users may be given starting points")

    digital_human: bool = Field(True, description="load speech models; serve with the avatar")
    queue_threshold_s: float | None = Field(
        None, ge=0, description="wait before the digital human takes over; default per service")
    teller_hours: str = Field("00:00-24:00",
                              description="local hours tellers serve, HH:MM-HH:MM; outside "
                                          "them customers go straight to the digital human")
    ice_hosts: str = Field("", description="comma-separated ICE host addresses; default: host")
    ice_servers: str = Field("", description="comma-separated STUN/TURN URLs; none by default")
    media_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=0,
        description="media worker processes; 0 runs media in the server process",
    )
    max_sessions_per_worker: int = Field(6, ge=1)
    admission_max_lag_ms: float = Field(50.0, gt=0)
    #: lag samples (one per 0.1 s) the server takes before its lag may refuse a call: on
    #: fewer, the p95 is the one worst sample, a single hiccup (a new session just after a
    #: start was refused for one)
    admission_lag_samples: int = Field(10, ge=1)

    max_ws_message_bytes: int = Field(65536, ge=1024)
    ws_auth_timeout_s: float = Field(5.0, gt=0)
    ws_ping_s: float = Field(15.0, gt=0)
    reconnect_grace_s: float = Field(30.0, ge=0)
    agent_media_timeout_s: float = Field(
        10.0, gt=0, description="seconds a customer paired with the digital human waits for "
        "its media to start before going back to the head of the queue, told why")
    max_login_body_bytes: int = Field(4096, ge=256, description="largest request body on "
                                      "the /api/v1/auth routes (unauthenticated), else 413")
    max_body_bytes: int = Field(65536, ge=1024, description="largest request body on any "
                                                            "other route, else 413")
    trusted_proxies: str = Field("", description="comma-separated addresses or networks of "
                                                 "reverse proxies whose X-Forwarded-For and "
                                                 "X-Forwarded-Proto are believed; none by "
                                                 "default: the peer's address counts")
    ws_origins: str = Field("", description="comma-separated origins (scheme://host:port) "
                                            "whose pages may open the WebSocket besides the "
                                            "server's own; clients that send no Origin (not "
                                            "browsers) are not affected")
    ws_per_address: int = Field(100, ge=1, description="WebSocket connections open at once "
                                                       "from one address")
    # Messages one signaling socket may send, per kind (vbank.limits.MESSAGE_KINDS): each a
    # token bucket that many at once, refilled evenly over its period; set well above what
    # a person clicking, a browser renegotiating or the lobby's 5 Hz moves ever send.
    ws_joins_per_10s: int = Field(6, ge=1, description="join, leave, ask_for, lobby_enter "
                                                       "and lobby_leave messages together")
    ws_offers_per_10s: int = Field(5, ge=1, description="SDP offers")
    ws_commands_per_s: int = Field(10, ge=1, description="a teller's status, accept and end "
                                                         "and every business-flow command")
    ws_moves_per_s: int = Field(20, ge=1, description="move and ping messages")
    max_sdp_bytes: int = Field(32_000, ge=1024, le=32_000, description="largest SDP offer")
    max_sdp_media: int = Field(4, ge=1, le=16, description="media sections (m= lines) in "
                                                           "one SDP offer")
    max_session_records: int = Field(5000, ge=1, description="entries one call may record "
                                     "for its evidence; then a person's flow commands in it "
                                     "are refused")
    login_failures_per_user: int = Field(5, ge=1, description="wrong passwords per user name "
                                                              "in the window, then 429")
    login_failures_per_address: int = Field(20, ge=1, description="wrong passwords per "
                                                                  "address in the window")
    login_failure_window_s: float = Field(300.0, gt=0)
    logins_per_address_per_minute: int = Field(300, ge=1, description="login requests of any "
                                                                      "outcome per address")
    redemptions_per_minute: int = Field(60, ge=1, description="redemption requests per "
                                                              "customer a minute")

    # Risk assessments a customer may complete per calendar day (local time); a bank limits
    # retries so that a customer cannot tune answers until a wanted level comes out.
    risk_attempts_per_day: int = Field(3, ge=1, description="risk assessments per day")
    mall: Path | None = Field(None, description="the mall file (earn rules, tiers, items, "
                                                "lotteries, task chains); default "
                                                "scenes/mall.yaml")
    points_expiry_every_s: float = Field(3600.0, gt=0,
                                         description="how often expired points are taken")

    # Evidence that whoever holds the data directory cannot rewrite: the signing key and
    # the keyring live apart from it, and an outside authority timestamps each seal.
    evidence_key: Path | None = Field(None, description="the branch's Ed25519 evidence "
                                      "signing key (PEM, mode 0600, made on first start); "
                                      "default <data>/keys/branch-ed25519.pem, for "
                                      "demonstrations only: production keeps it outside the "
                                      "data directory")
    evidence_keyring: Path | None = Field(None, description="the public keys that verify "
                                          "evidence, old ones kept after a rotation; default "
                                          "evidence-keyring.json beside the key")
    tsa_url: str = Field("", description="an RFC 3161 timestamp authority that stamps each "
                                         "seal; none by default")
    tsa_cert: Path | None = Field(None, description="PEM certificate(s) of the timestamp "
                                  "authority (its own or its CA's): tokens are checked "
                                  "against them; needed with tsa_url")
    tsa_timeout_s: float = Field(10.0, gt=0, description="how long a seal waits for the "
                                 "timestamp authority before failing (and being retried)")

    def tellers_on_duty(self, now: datetime) -> bool:
        """Whether ``now`` (local time) falls within ``teller_hours``."""
        start, end = (int(h) * 60 + int(m) for h, m in
                      (part.split(":") for part in self.teller_hours.split("-")))
        minute = now.hour * 60 + now.minute
        return start <= minute < end if start <= end else minute >= start or minute < end

    @property
    def node_name(self) -> str:
        """This node's name with several nodes; "" on a single node."""
        if not self.redis:
            return ""
        return self.node or f"{socket.gethostname()}:{self.port}"

    @property
    def database_url(self) -> str:
        """The async SQLAlchemy URL for the configured database."""
        return async_url(self.db or f"sqlite:///{self.data / 'vbank.db'}")

    @property
    def recordings_dir(self) -> Path:
        return self.data / "recordings"

    @property
    def evidence_key_path(self) -> Path:
        return self.evidence_key or self.data / "keys" / "branch-ed25519.pem"

    @property
    def evidence_keyring_path(self) -> Path:
        return self.evidence_keyring or self.evidence_key_path.parent / "evidence-keyring.json"

    @property
    def ice_host_list(self) -> list[str]:
        hosts = [h.strip() for h in self.ice_hosts.split(",") if h.strip()]
        if hosts:
            return hosts
        # A wildcard bind address is not a candidate; offer loopback and let admins set hosts.
        return [self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"]

    @property
    def ice_server_list(self) -> list[str]:
        return [u.strip() for u in self.ice_servers.split(",") if u.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [a.strip() for a in self.trusted_proxies.split(",") if a.strip()]

    @field_validator("lang")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        # uvicorn would take a misspelt address as a name no peer ever has, silently trusting
        # nobody (or, for "*", everybody): refuse both at start instead.
        for entry in (a.strip() for a in value.split(",") if a.strip()):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an address or "
                                 "network") from None
        return value


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver SQLAlchemy needs."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url

