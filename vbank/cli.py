"""The ``vbank`` command line: serve, users, db, evidence, scenario, bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from vbank.config import DEMO_SECRET, MIN_SECRET_BYTES, Settings

ROLES = ("customer", "teller", "supervisor", "auditor", "admin")


def _storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (default: SQLite under --data)")
    p.add_argument("--data", type=Path, help="data directory (default ./var)")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {k: v for k, v in {"db": getattr(args, "db", None),
                                   "data": getattr(args, "data", None),
                                   "redis": getattr(args, "redis", None), **extra}.items()
                 if v is not None}
    return Settings(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vbank", description="a virtual bank branch")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the branch server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--redis", help="Redis URL (multi-node mode)")
    serve.add_argument("--node", help="this node's name with --redis (default host:port)")
    serve.add_argument("--demo", action="store_true", help="load demo users")
    _storage_options(serve)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="action",
                                                                        required=True)
    add = users.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password", required=True)
    add.add_argument("--skills", default="", help="comma-separated service ids (tellers)")
    add.add_argument("--points", type=int, default=0)
    add.add_argument("--tier", default="standard",
                     choices=["standard", "silver", "gold", "platinum"])
    add.add_argument("--display-name")
    _storage_options(add)

    db = sub.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    _storage_options(db.add_parser("upgrade", help="apply migrations"))

    evidence = sub.add_parser("evidence", help="sealed sessions (留证)").add_subparsers(
        dest="action", required=True)
    verify = evidence.add_parser("verify", help="check a sealed session (--all: the whole "
                                                "chain): exit 0 intact, 1 tampered or "
                                                "missing, 2 unknown session")
    verify.add_argument("session_id", nargs="?")
    verify.add_argument("--all", action="store_true", dest="whole_chain",
                        help="walk the whole chain, its anchors and every sealed package")
    _storage_options(verify)
    export = evidence.add_parser("export", help="copy a sealed session's package to a folder")
    export.add_argument("session_id")
    export.add_argument("out_dir", type=Path)
    _storage_options(export)
    _storage_options(evidence.add_parser(
        "rotate-key", help="retire the evidence signing key after the chain's last entry and "
                           "put a new one in its file (stop every node first)"))

    points = sub.add_parser("points", help="the points ledger").add_subparsers(
        dest="action", required=True)
    _storage_options(points.add_parser(
        "expire", help="expire every earned point past its date now (the server also does "
                       "it periodically)"))

    scenario = sub.add_parser("scenario", help="scenario files").add_subparsers(
        dest="action", required=True)
    check = scenario.add_parser("check", help="check files without running them")
    check.add_argument("files", nargs="+", type=Path)
    play = scenario.add_parser("run", help="play scenario files against a server")
    play.add_argument("files", nargs="+", type=Path)
    play.add_argument("--server", action="append", default=[], metavar="URL",
                      help="a running server; once per node (default: start one)")
    play.add_argument("--json", type=Path, dest="json_out", help="write every step here")
    play.add_argument("--admin", metavar="NAME:PASSWORD",
                      help="an administrator of --server, to create the actors "
                           "(default: $VBANK_SCENARIO_ADMIN, else the demo admin)")

    lobby = sub.add_parser("lobby", help="the 3D branch hall (Panda3D)")
    from client.lobby.options import add_arguments as lobby_arguments

    lobby_arguments(lobby)

    bench = sub.add_parser("bench", help="run a benchmark")
    bench.add_argument("name", choices=("sessions", "queue", "voice-latency", "mall-race",
                                        "lobby-fps", "echo", "speech"))
    bench.add_argument("--json", type=Path, dest="json_out", help="write the figures here")
    bench.epilog = "Each benchmark takes its own options: vbank bench NAME --help."
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vbank.api.app import create_app
    from vbank.domain.mall import MALL_PATH, MallFileError, load_mall
    from vbank.store.db import upgrade
    from vbank.store.evidence_files import SERVER_UMASK

    settings = _settings(args, host=args.host, port=args.port, demo=args.demo or None,
                         node=args.node)
    if settings.secret == DEMO_SECRET and not settings.demo:
        print("vbank: refusing to start with the demo signing key; set VBANK_SECRET "
              "(or use --demo for a demonstration)", file=sys.stderr)
        return 2
    secret_bytes = len(settings.secret.encode())
    if secret_bytes < MIN_SECRET_BYTES and not settings.demo:
        print(f"vbank: VBANK_SECRET is {secret_bytes} bytes; it must be at least "
              f"{MIN_SECRET_BYTES} (e.g. openssl rand -hex 32)", file=sys.stderr)
        return 2
    try:  # a broken mall file is the operator's to fix: say where, start nothing
        load_mall(settings.mall or MALL_PATH)
    except MallFileError as exc:
        print(f"vbank: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("VBANK_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Everything the server and its media workers write (database, recordings, snapshots,
    # documents, evidence) is for its user and group only: 0640 files, 0750 folders.
    os.umask(SERVER_UMASK)
    upgrade(settings.database_url)
    app = create_app(settings)
    # X-Forwarded-For decides whose address the limits count: believe it only from the
    # proxies the operator names (uvicorn's default believes anyone on loopback).
    proxies = settings.trusted_proxy_list
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port,
        ws_max_size=settings.max_ws_message_bytes, ws_ping_interval=settings.ws_ping_s,
        ws_ping_timeout=settings.ws_ping_s, log_level="warning", access_log=False,
        timeout_graceful_shutdown=20, proxy_headers=bool(proxies), forwarded_allow_ips=proxies)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after shutting down; our stop is clean: exit 0
            self._captured_signals.clear()

        async def shutdown(self, sockets: Any = None) -> None:
            # End calls while everyone's socket is still open, so both sides hear why.
            branch = getattr(app.state, "branch", None)
            if branch is not None:
                await branch.shutdown()
            await super().shutdown(sockets)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                host = f"[{settings.host}]" if ":" in settings.host else settings.host
                print(f"vbank ready on http://{host}:{settings.port}", flush=True)

    Server(config).run()
    print("vbank stopped", flush=True)
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    from vbank.auth import hash_password
    from vbank.domain.services import SERVICES
    from vbank.store import StoreError, repo
    from vbank.store.db import make_engine, sessionmaker, upgrade

    skills = [s for s in args.skills.split(",") if s]
    unknown = [s for s in skills if s not in SERVICES]
    if unknown:
        print(f"vbank: unknown skill {unknown[0]!r}; services are {', '.join(SERVICES)}",
              file=sys.stderr)
        return 2
    settings = _settings(args)
    upgrade(settings.database_url)

    async def add() -> None:
        engine = make_engine(settings.database_url)
        try:
            async with sessionmaker(engine).begin() as db:
                await repo.add_user(db, args.name, hash_password(args.password), args.role,
                                    skills=skills, tier=args.tier, points=args.points,
                                    display_name=args.display_name)
        finally:
            await engine.dispose()

    try:
        asyncio.run(add())
    except StoreError as exc:
        print(f"vbank: {exc}", file=sys.stderr)
        return 1
    print(f"added {args.role} {args.name}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from vbank.store.db import upgrade

    settings = _settings(args)
    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def cmd_points_expire(args: argparse.Namespace) -> int:
    from vbank.domain.mall import MALL_PATH, load_mall
    from vbank.store.db import upgrade
    from vbank.store.points import PointsDesk

    settings = _settings(args)
    upgrade(settings.database_url)

    async def run() -> int:
        desk = PointsDesk(settings.database_url, load_mall(settings.mall or MALL_PATH))
        try:
            return await desk.expire()
        finally:
            await desk.stop()

    print(f"expired {asyncio.run(run())} points")
    return 0


def cmd_evidence(args: argparse.Namespace) -> int:
    """verify: 0 intact, 1 each problem printed, 2 unknown session; export: the same codes;
    rotate-key: 0 rotated, 1 refused."""
    import getpass

    from vbank.domain.evidence import EvidenceError, UnknownSession
    from vbank.store import evidence
    from vbank.store.db import make_engine, sessionmaker, upgrade
    from vbank.store.evidence_export import export_session
    from vbank.store.timestamps import evidence_trust

    if args.action == "verify" and (args.session_id is None) == (not args.whole_chain):
        print("vbank: verify takes a SESSION_ID or --all", file=sys.stderr)
        return 2
    settings = _settings(args)
    upgrade(settings.database_url)
    try:
        actor = f"cli:{getpass.getuser()}"  # the audit log names who read from a shell
    except (OSError, KeyError):
        actor = "cli"

    async def run() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with sessionmaker(engine)() as db:
                if args.action == "rotate-key":
                    return await _rotate_key(db, settings)
                trust = evidence_trust(settings)  # from outside the data directory only
                if args.action == "verify":
                    if args.whole_chain:
                        result = await evidence.verify_chain(db, settings.data, trust)
                        intact = f"intact ({await evidence.count_entries(db)} entries)"
                    else:
                        result = await evidence.verify_session(db, settings.data,
                                                               args.session_id, trust)
                        intact = "intact"
                    await evidence.log_read(db, actor, "verify", args.session_id)
                    await db.commit()
                    print("\n".join(result.problems) if result.problems else intact)
                    return 0 if result.intact else 1
                done = await export_session(db, settings.data, args.session_id, args.out_dir,
                                            trust.keyring)
                await evidence.log_read(db, actor, "export", args.session_id)
                await db.commit()
                for path in done.linked:
                    print(f"linked: {path} is a symbolic link, not copied (tampering)")
                for path in done.missing:
                    print(f"missing: {path}")
                print(f"exported {len(done.written)} files to {args.out_dir}")
                return 1 if done.missing or done.linked else 0
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except UnknownSession as exc:
        print(f"vbank: {exc}", file=sys.stderr)
        return 2
    except EvidenceError as exc:
        print(f"vbank: {exc}", file=sys.stderr)
        return 1


async def _rotate_key(db: Any, settings: Settings) -> int:
    from sqlalchemy import func, select

    from vbank.store.evidence_keys import rotate_key
    from vbank.store.models import EvidenceEntry

    head = int(await db.scalar(select(func.max(EvidenceEntry.seq))) or 0)
    retired, new = rotate_key(settings.evidence_key_path, settings.evidence_keyring_path, head)
    for key in retired:
        print(f"retired key {key.id} after entry {head}")
    print(f"new key {new.id} in {settings.evidence_key_path}; keyring "
          f"{settings.evidence_keyring_path}")
    return 0


def cmd_scenario_check(args: argparse.Namespace) -> int:
    """Exit 0 when every file is valid, 2 (each problem printed) otherwise."""
    from vbank.scenario import ScenarioError
    from vbank.scenario.model import load

    invalid = 0
    for path in args.files:
        try:
            scenario = load(path)
            print(f"{path}: ok ({scenario.id}, {len(scenario.steps)} steps)")
        except ScenarioError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            invalid += 1
    return 2 if invalid else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from vbank.bench import run_bench

    return run_bench(args.name, args.json_out, args.rest)


def cmd_lobby(args: argparse.Namespace) -> int:
    from client.lobby import LobbyError
    from client.lobby.app import run

    try:
        return run(args)
    except LobbyError as exc:
        print(f"vbank lobby: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "users":
        return cmd_users_add(args)
    if args.command == "db":
        return cmd_db_upgrade(args)
    if args.command == "evidence":
        return cmd_evidence(args)
    if args.command == "points":
        return cmd_points_expire(args)
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "lobby":
        return cmd_lobby(args)
    if args.command == "scenario" and args.action == "run":
        from vbank.scenario.runner import run

        return run(args.files, args.server, args.json_out, args.admin)
    if args.command == "scenario":
        return cmd_scenario_check(args)
    return 2
