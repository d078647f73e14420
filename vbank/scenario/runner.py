"""``vbank scenario run``: play scenario files against real servers with real speech.

Every file is checked first (an invalid one stops the run, exit 2). Without ``--server`` the
runner starts its own ``vbank serve`` on a free loopback port with a temporary database, an
administrator of its own and the digital human loaded. Per scenario it applies ``setup:``
through the admin API (and puts the branch back afterwards; mall items are created under ids
of their own and their stock is taken back), creates every actor as a new user, signs them
in, plays the steps in order (each prints one line), checks the final assertions, and lets
everyone leave. A step that fails ends its scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from vbank.scenario import ScenarioError
from vbank.scenario.actors import Actor, StepFailed
from vbank.scenario.business import BusinessActions
from vbank.scenario.expectations import Expectations, number_problem
from vbank.scenario.lobby3d import LobbyActor
from vbank.scenario.mall import MallActions
from vbank.scenario.model import Scenario, Step, load
from vbank.scenario.report import Report, ScenarioResult, StepResult
from vbank.scenario.servers import OwnServer, Server


def describe(step: Step) -> str:
    if step.action == "expect":
        shown = {k: v for k, v in step.argument.items() if k != "actor"}
        return "expect " + json.dumps(shown, ensure_ascii=False)
    if step.argument is None:
        return step.action
    if step.action == "play":  # the model made the path absolute; the name says enough
        return f"play {Path(step.argument).name}"
    return f"{step.action} {json.dumps(step.argument, ensure_ascii=False)}"


class ScenarioRun(BusinessActions, MallActions):
    """One scenario played against ``servers``."""

    def __init__(self, scenario: Scenario, servers: list[Server], http: httpx.AsyncClient,
                 report: Report, shared: dict[str, Any]) -> None:
        self.s = scenario
        self.servers = servers
        self.http = http
        self.report = report
        self.shared = shared  # the voice, the ear, the camera loop: loaded once per run
        self.actors: dict[str, Actor] = {}
        self.expectations = Expectations(scenario.id, scenario.language, shared,
                                         self._points_balance)
        self.result = ScenarioResult(scenario.id, scenario.file)
        self._restore: list[tuple[Server, dict[str, Any]]] = []
        self.items: dict[tuple[str, str], str] = {}
        self.points_from: dict[str, int] = {}
        self._tokens: dict[str, str] = {}  # actor key → bearer token, for HTTP as them

    # ---------------------------------------------------------------- setup
    async def setup(self) -> None:
        policy: dict[str, Any] = {"counters": "hours", "per_service_threshold": True}
        for name, value in self.s.setup.items():
            if name == "hours":
                policy["counters"] = {"open": "open", "closed": "closed"}[value]
            elif name == "queue_threshold_s":
                policy.pop("per_service_threshold")
                policy["queue_threshold_s"] = value
            elif name == "digital_human":
                policy["digital_human"] = value in (True, "on")
        for server in self._used_servers():
            before = await self._admin("GET", server, "/api/v1/admin/branch")
            wanted = dict(policy)
            wanted.setdefault("digital_human", before["digital_human_loaded"])
            await self._admin("PUT", server, "/api/v1/admin/branch", wanted)
            self._restore.append((server, {
                "counters": before["counters"], "digital_human": before["digital_human"],
                **({"queue_threshold_s": before["queue_threshold_s"]}
                   if before["queue_threshold_s"] is not None
                   else {"per_service_threshold": True})}))
        await self._setup_mall()
        for key, spec in self.s.actors.items():
            server = self.servers[spec.get("node", 1) - 1]
            username = f"{self.s.id[:40]}-{key[:12]}-{secrets.token_hex(3)}"
            password = spec.get("password") or secrets.token_urlsafe(12)
            body = {"username": username, "password": password, "role": spec["kind"],
                    "display_name": spec.get("name") or key}
            if spec["kind"] == "teller":  # qualified for what the scenario will ask of them
                body["skills"] = sorted({*(spec.get("skills") or [self.s.service]), *(
                    skill for step in self.s.steps if step.actor == key
                    and step.action == "login" for skill in step.argument.get("skills", []))})
            if spec.get("tier"):
                body["tier"] = spec["tier"]
            if spec.get("points"):
                body["points"] = spec["points"]
            await self._admin("POST", server, "/api/v1/admin/users", body)
            kind = LobbyActor if spec.get("client", "video") == "lobby3d" else Actor
            self.actors[key] = kind(key, spec, server.url, username, password,
                                    self.shared["video"], self.shared["voice"])
            self.actors[key].language = self.s.language
        for actor in self.actors.values():
            await actor.connect()
            if actor.kind == "teller" and actor.spec.get("available", True):
                await self._available(actor, actor.spec.get("skills") or [self.s.service])
        await self._points_baseline()

    def _used_servers(self) -> list[Server]:
        nodes = sorted({spec.get("node", 1) for spec in self.s.actors.values()})
        return [self.servers[n - 1] for n in nodes]

    async def _admin(self, method: str, server: Server, path: str,
                     body: dict[str, Any] | None = None) -> dict[str, Any]:
        if not server.token:
            await server.login(self.http)
        r = await self.http.request(method, server.url + path, json=body,
                                    headers=server.headers())
        if r.status_code >= 400:
            raise StepFailed(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return dict(r.json())

    async def _available(self, actor: Actor, skills: list[str]) -> None:
        mark = len(actor.log)
        await actor.send({"type": "status", "status": "available", "skills": skills})
        await actor.wait_for(("teller",), mark, 10, status="available")

    # ------------------------------------------------------------------ run
    async def run(self) -> ScenarioResult:
        started = time.monotonic()
        self.report.line(f"scenario {self.s.id} ({self.s.file})")
        try:
            try:
                await self.setup()
            except (StepFailed, httpx.HTTPError, OSError) as exc:
                self.result.error = f"setup: {exc}"
                self.report.line(f"   setup FAIL: {exc}")
                return self.result
            ok = await self._steps()
            await self._leave_all()
            if ok:
                ok = await self._asserts()
            self.result.passed = ok
        finally:
            await self._close()
            self.result.duration_s = time.monotonic() - started
            self._turns()
            verdict = "PASS" if self.result.passed else "FAIL"
            self.report.line(f"{verdict} {self.s.id} in {self.result.duration_s:.1f} s")
        return self.result

    async def _steps(self) -> bool:
        for index, step in enumerate(self.s.steps, start=1):
            self.report.status(f"{self.s.id} step {index}/{len(self.s.steps)}: "
                               f"{step.actor} {describe(step)}")
            began = time.monotonic()
            error: str | None = None
            try:
                await self._step(index, step)
            except StepFailed as exc:
                error = str(exc)
            except (httpx.HTTPError, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            elapsed = (time.monotonic() - began) * 1000
            actor = self.actors.get(step.actor or "")
            result = StepResult(index, step.line, step.actor or "", describe(step),
                                step.argument, error is None, round(elapsed, 1), error,
                                actor.seen() if error and actor else None)
            self.result.steps.append(result)
            mark = "ok  " if error is None else "FAIL"
            self.report.line(f"  {index:>3} {step.actor or '':<10} {describe(step)[:60]:<60} "
                             f"{mark} {elapsed:>7.0f} ms")
            if error is not None:
                self.report.line(f"        line {step.line}: {error}")
                self.report.line(f"        saw: {result.seen}")
                left = len(self.s.steps) - index
                if left:
                    self.report.line(f"        ({left} later steps not run)")
                return False
        return True

    async def _step(self, index: int, step: Step) -> None:
        actor = self.actors[step.actor or ""]
        if step.action == "expect":
            await self.expectations.expect(actor, step.argument)
            return
        action = getattr(self, f"_do_{step.action}")
        await action(actor, step.argument, index)

    # -------------------------------------------------------------- actions
    async def _do_join(self, actor: Actor, _: Any, __: int) -> None:
        mark = len(actor.log)
        await actor.send({"type": "join", "service": self.s.service,
                          "language": self.s.language})
        reply = await actor.wait_for(("queued", "error"), mark, 10)
        if reply["type"] == "error":
            raise StepFailed(f"join refused: {reply.get('message')}")

    async def _do_leave(self, actor: Actor, _: Any, __: int) -> None:
        mark = len(actor.log)
        await actor.send({"type": "leave"})
        reply = await actor.wait_for(("ended", "error"), mark, 10)
        if reply["type"] == "error":
            raise StepFailed(f"leave refused: {reply.get('message')}")

    async def _do_drop(self, actor: Actor, _: Any, __: int) -> None:
        await actor.drop()

    async def _do_reconnect(self, actor: Actor, _: Any, __: int) -> None:
        await actor.drop()
        await actor.connect()
        if actor.kind == "teller" and actor.spec.get("available", True):
            await self._available(actor, actor.spec.get("skills") or [self.s.service])

    async def _do_say(self, actor: Actor, text: str, index: int) -> None:
        await actor.say(text, index)

    async def _do_play(self, actor: Actor, path: str, index: int) -> None:
        await actor.play(Path(path), index)

    async def _do_ask_for(self, actor: Actor, who: str, _: int) -> None:
        mark = len(actor.log)
        await actor.send({"type": "ask_for", "who": who})
        reply = await actor.wait_for(("handed_over", "notice", "paired", "error"), mark, 10)
        if reply["type"] == "error":
            raise StepFailed(f"ask_for refused: {reply.get('message')}")

    async def _do_walk_to(self, actor: Actor, target: str, _: int) -> None:
        await _in_hall(actor).walk_to(target)

    async def _do_interact(self, actor: Actor, _: Any, __: int) -> None:
        await _in_hall(actor).interact()

    async def _do_wait(self, _: Actor, seconds: float, __: int) -> None:
        await asyncio.sleep(float(seconds))

    async def _do_login(self, actor: Actor, argument: dict[str, Any], _: int) -> None:
        skills = argument.get("skills") or actor.spec.get("skills") or [self.s.service]
        if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
            raise StepFailed("login: skills must be a list of service ids")
        actor.spec["skills"], actor.spec["available"] = skills, True
        await self._available(actor, skills)

    async def _do_accept(self, actor: Actor, _: Any, __: int, timeout: float = 20) -> None:
        """Take the next customer; an empty queue is waited on (the customer may be on the
        way), any other refusal fails."""
        deadline = time.monotonic() + timeout
        while True:
            mark = len(actor.log)
            await actor.send({"type": "accept"})
            reply = await actor.wait_for(("paired", "error"), mark, 10)
            if reply["type"] == "paired":
                return
            # an empty queue (the customer is on the way) or a busy branch is waited out
            if reply.get("code") not in ("queue_empty", "busy") or \
                    time.monotonic() > deadline:
                raise StepFailed(f"accept refused: {reply.get('message')}")
            await asyncio.sleep(0.3)

    async def _do_end(self, actor: Actor, outcome: str, _: int) -> None:
        mark = len(actor.log)
        await actor.send({"type": "end", "outcome": outcome})
        reply = await actor.wait_for(("ended", "error"), mark, 10)
        if reply["type"] == "error":
            raise StepFailed(f"end refused: {reply.get('message')}")

    # ----------------------------------------------------------- assertions
    async def _asserts(self) -> bool:
        ok = True
        for line, assertion in self.s.asserts:
            for name, value in assertion.items():
                began = time.monotonic()
                try:
                    await getattr(self, f"_assert_{name}")(value)
                    error = None
                except StepFailed as exc:
                    error = str(exc)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = (time.monotonic() - began) * 1000
                text = f"assert {name} {json.dumps(value, ensure_ascii=False)}"
                self.report.line(f"      {'':<10} {text[:60]:<60} "
                                 f"{'ok  ' if error is None else 'FAIL'} {elapsed:>7.0f} ms")
                if error:
                    self.report.line(f"        line {line}: {error}")
                self.result.asserts.append({"line": line, "assert": name, "value": value,
                                            "ok": error is None, "error": error})
                ok = ok and error is None
        return ok

    async def _assert_recording(self, want: dict[str, Any]) -> None:
        """The customer's recorded call: long enough, with the media asked for."""
        customer = next(a for a in self.actors.values() if a.kind == "customer")
        if customer.last_session_id is None:
            raise StepFailed("recording: the customer had no session")
        server = next(s for s in self.servers if s.url == customer.server)
        parts: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20  # recordings are stored as the legs close
        while time.monotonic() < deadline:
            r = await self.http.get(
                f"{server.url}/api/v1/sessions/{customer.last_session_id}",
                headers={"Authorization": f"Bearer {await self._token(customer)}"})
            r.raise_for_status()
            session = r.json()
            parts = session["recordings"]
            if session["state"] == "ended" and parts:
                break
            await asyncio.sleep(0.5)
        if not parts:
            raise StepFailed("recording: none was stored for the session")
        by_role: dict[str, float] = {}
        for part in parts:
            by_role[part["role"]] = by_role.get(part["role"], 0.0) + part["duration_s"]
        duration = max(by_role.values())
        problems = []
        if "min_duration_s" in want:
            why = number_problem(duration, {"min": want["min_duration_s"]}, "seconds")
            if why:
                problems.append(why)
        for kind in ("audio", "video"):
            if kind in want:
                has = any(p[f"{kind}_frames"] > 0 for p in parts)
                if has != bool(want[kind]):
                    problems.append(f"{kind} {'missing' if want[kind] else 'present'}")
        if problems:
            raise StepFailed(f"recording ({duration:.1f} s, {len(parts)} parts): "
                             + "; ".join(problems))

    async def _token(self, actor: Actor, fresh: bool = False) -> str:
        """The actor's bearer token: signed in once, again when it has run out."""
        if fresh or actor.key not in self._tokens:
            r = await self.http.post(f"{actor.server}/api/v1/auth/login", json={
                "username": actor.username, "password": actor.password})
            r.raise_for_status()
            self._tokens[actor.key] = str(r.json()["access_token"])
        return self._tokens[actor.key]

    async def _as(self, actor: Actor, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An HTTP request to the actor's server as the actor."""
        headers = dict(kwargs.pop("headers", None) or {})
        for fresh in (False, True):
            headers["Authorization"] = f"Bearer {await self._token(actor, fresh)}"
            r = await self.http.request(method, actor.server + path, headers=headers, **kwargs)
            if r.status_code != 401:
                break
        return r

    # -------------------------------------------------------------- ending
    async def _leave_all(self) -> None:
        """Everyone still in a session leaves, so recordings are closed and stored."""
        for actor in self.actors.values():
            if not actor.connected or actor.session_id is None:
                continue
            with contextlib.suppress(StepFailed, OSError, Exception):
                if actor.kind == "customer":
                    await self._do_leave(actor, None, 0)

    async def _close(self) -> None:
        for actor in self.actors.values():
            with contextlib.suppress(Exception):
                await actor.close()
        for server, policy in self._restore:
            with contextlib.suppress(Exception):
                await self._admin("PUT", server, "/api/v1/admin/branch", policy)
        with contextlib.suppress(Exception):
            await self._withdraw_items()

    def _turns(self) -> None:
        for actor in self.actors.values():
            for turn in actor.turns:
                if actor.kind != "customer":
                    continue
                self.result.turns.append({
                    "actor": actor.key, "step": turn.step, "text": turn.text,
                    "voice_to_voice_ms": None if turn.latency_s is None
                    else round(turn.latency_s * 1000, 1)})


def _in_hall(actor: Actor) -> LobbyActor:
    if not isinstance(actor, LobbyActor):
        raise StepFailed(f"{actor.key} is not a 3D customer (client: lobby3d)")
    return actor


def _video() -> list[bytes]:
    from vbank.rtc.peer import encode_vp8_loop

    return encode_vp8_loop(320, 240, 15, 30)


async def play(scenarios: list[Scenario], servers: list[Server],
               report: Report) -> list[ScenarioResult]:
    from vbank.rtc.ice import restrict_host_addresses
    from vbank.speech.tts import synthesizer_for

    hosts = {urlsplit(s.url).hostname for s in servers}
    if hosts <= {"127.0.0.1", "localhost"}:
        restrict_host_addresses(["127.0.0.1"])  # loopback servers: offer the loopback path
    voices: dict[str, Any] = {}
    results = []
    video = await asyncio.to_thread(_video)
    # the ear decodes in a process of its own: ASR holds the GIL, media timing must not wait
    ear = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for scenario in scenarios:
                if scenario.language not in voices:
                    voices[scenario.language] = await asyncio.to_thread(synthesizer_for,
                                                                        scenario.language)
                shared = {"video": video, "voice": voices[scenario.language], "ear": ear}
                results.append(await ScenarioRun(scenario, servers, http, report,
                                                 shared).run())
    finally:
        ear.shutdown(cancel_futures=True)
    return results


def run(files: list[Path], server_urls: list[str], json_out: Path | None,
        admin: str | None, out: TextIO = sys.stdout) -> int:
    """The command: exit 0 all passed, 1 any failed, 2 an invalid file (nothing run)."""
    report = Report(out)
    scenarios: list[Scenario] = []
    invalid = False
    for path in files:
        try:
            scenarios.append(load(path))
        except ScenarioError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            invalid = True
    for scenario in scenarios:
        nodes = max(a.get("node", 1) for a in scenario.actors.values())
        if nodes > max(1, len(server_urls)):
            print(f"invalid: {scenario.file}: an actor is on node {nodes} but "
                  f"{max(1, len(server_urls))} server(s) were given (--server once per node)",
                  file=sys.stderr)
            invalid = True
    if invalid:
        return 2
    own: OwnServer | None = None
    name, _, password = (admin or os.environ.get("VBANK_SCENARIO_ADMIN", "admin:admin")
                         ).partition(":")
    try:
        if server_urls:
            servers = [Server(u.rstrip("/"), (name, password)) for u in server_urls]
        else:
            own = OwnServer(report)
            servers = [own.start()]
        results = asyncio.run(play(scenarios, servers, report))
    finally:
        if own is not None:
            own.stop()
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        latencies = [t["voice_to_voice_ms"] for r in results for t in r.turns
                     if t["voice_to_voice_ms"] is not None]
        json_out.write_text(json.dumps({
            "passed": passed, "failed": failed,
            "voice_to_voice_ms": sorted(latencies),
            "scenarios": [r.as_json() for r in results]}, indent=2, ensure_ascii=False,
            default=str))
    report.line(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
