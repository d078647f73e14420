"""Reading and checking scenario files: every mistake is reported with its file and line.

The format is shared/spec/scenarios.md. Checking is strict and complete before anything
runs: unknown keys, actions, actors, expectation names and wrong types are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vbank.domain.ledger import Tier
from vbank.domain.mall import ID as ITEM_ID
from vbank.domain.mall import MallFileError, parse_item
from vbank.domain.services import SERVICES
from vbank.scenario import ScenarioError
from vbank.speech.conditions import NotAWavFile, read_wav

ID = re.compile(r"^[a-z0-9-]+$")
CUSTOMER_ACTIONS = {
    "join": None, "leave": None, "drop": None, "reconnect": None, "show_id": None,
    "interact": None, "say": str, "answer": str, "answer_all": (str, dict), "sign": str,
    "acknowledge": str, "ask_for": str, "redeem": dict, "walk_to": str, "wait": (int, float),
    "play": str,
}
TELLER_ACTIONS = {
    "accept": None, "verify_identity": None, "drop": None, "login": dict, "say": str,
    "push": str, "start_flow": str, "end": str, "wait": (int, float), "play": str,
    "advance": None, "back": None,
}
EXPECTATIONS = {
    "paired_with": str, "queue_position": int, "heard": str, "caption": str, "flow_step": str,
    "event": str, "risk_level": str, "points_balance": (int, dict), "qc_alert": str,
    "video_frames": dict, "within_s": (int, float), "actor": str, "answered": dict,
}
ASSERTIONS = {"evidence", "recording", "points", "risk_level", "quality", "ledger"}
SETUP = {"mall_items": list, "hours": str, "queue_threshold_s": (int, float),
         "digital_human": (bool, str)}
#: allowed values of the setup keys that take words (YAML reads on/off as booleans)
SETUP_WORDS = {"hours": ("open", "closed"), "digital_human": (True, False, "on", "off")}
ACTOR_KEYS = {"kind": str, "name": str, "id_number": str, "client": str, "points": int,
              "tier": str, "skills": list, "available": bool, "node": int, "password": str}
#: the fields of a ``setup: mall_items`` entry (what the admin endpoint takes), and of
#: ``{redeem: ...}``; ``refused`` is a regex the server's refusal must match
MALL_ITEM_KEYS = {"id": str, "name": (str, dict), "points": int, "stock": int,
                  "per_customer_limit": int, "tier": str}
REDEEM_KEYS = {"item": str, "quantity": int, "refused": (str, bool)}
#: the most one redemption may ask for (the redemption endpoint's limit)
MAX_QUANTITY = 100


@dataclass(frozen=True, slots=True)
class Step:
    line: int
    actor: str | None  # who acts, or whose view an expectation checks
    action: str  # an action name, or "expect"
    argument: Any = None


@dataclass
class Scenario:
    file: str
    id: str
    description: str
    language: str
    service: str
    actors: dict[str, dict[str, Any]]
    steps: list[Step]
    asserts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)


class _Reader:
    """Walks the YAML node tree so every value knows its line."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, node: yaml.Node | None, message: str) -> ScenarioError:
        line = node.start_mark.line + 1 if node is not None else 1
        return ScenarioError(self.file, line, message)

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in out:
                raise self.fail(key, f"{what}: {name!r} appears twice")
            out[name] = (key, value)
        return out

    def value(self, node: yaml.Node, kinds: Any, what: str) -> Any:
        data = yaml.safe_load(yaml.serialize(node))
        if isinstance(data, bool) and kinds in (int, float, (int, float)):
            raise self.fail(node, f"{what} must be a number")
        if kinds is not None and not isinstance(data, kinds):
            names = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple)
                                                      else (kinds,)))
            raise self.fail(node, f"{what} must be a {names}, not {type(data).__name__}")
        return data


def load(path: Path) -> Scenario:
    """Read and check one scenario file; ``ScenarioError`` names the first problem."""
    file = str(path)
    reader = _Reader(file)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(file, 1, f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(file, mark.line + 1 if mark else 1, f"not YAML: {exc}") from exc
    if root is None:
        raise ScenarioError(file, 1, "the file is empty")
    top = reader.mapping(root, "a scenario")
    allowed = {"scenario", "description", "language", "service", "actors", "steps", "assert",
               "setup"}
    for name, (key, _) in top.items():
        if name not in allowed:
            raise reader.fail(key, f"unknown key {name!r}")
    for required in ("scenario", "service", "actors", "steps"):
        if required not in top:
            raise reader.fail(root, f"missing {required!r}")
    sid = reader.value(top["scenario"][1], str, "scenario")
    if not ID.match(sid):
        raise reader.fail(top["scenario"][1], "scenario id must match [a-z0-9-]+")
    language = reader.value(top["language"][1], str, "language") if "language" in top else "en"
    if language not in ("en", "zh"):
        raise reader.fail(top["language"][1], "language must be en or zh")
    service = reader.value(top["service"][1], str, "service")
    if service not in SERVICES:
        raise reader.fail(top["service"][1], f"unknown service {service!r}; the services are "
                                             f"{', '.join(SERVICES)}")
    actors = _actors(reader, top["actors"][1])
    steps = _steps(reader, top["steps"][1], actors)
    scenario = Scenario(file, sid, str(top["description"][1].value)
                        if "description" in top else "", language, service, actors, steps)
    if "setup" in top:
        for name, (key, value) in reader.mapping(top["setup"][1], "setup").items():
            if name not in SETUP:
                raise reader.fail(key, f"unknown setup {name!r}")
            scenario.setup[name] = reader.value(value, SETUP[name], f"setup {name}")
            if name == "mall_items":
                scenario.setup[name] = _mall_items(reader, value)
            if name in SETUP_WORDS and scenario.setup[name] not in SETUP_WORDS[name]:
                words = " or ".join(str(w) for w in SETUP_WORDS[name] if isinstance(w, str))
                raise reader.fail(value, f"setup {name} must be {words}")
    if "assert" in top:
        node = top["assert"][1]
        if not isinstance(node, yaml.SequenceNode):
            raise reader.fail(node, "assert must be a list")
        for item in node.value:
            entries = reader.mapping(item, "an assertion")
            for name, (key, value) in entries.items():
                if name not in ASSERTIONS:
                    raise reader.fail(key, f"unknown assertion {name!r}")
                _assertion(reader, name, value, actors)
            scenario.asserts.append((item.start_mark.line + 1,
                                     reader.value(item, dict, "an assertion")))
    return scenario


def _actors(reader: _Reader, node: yaml.Node) -> dict[str, dict[str, Any]]:
    actors: dict[str, dict[str, Any]] = {}
    for name, (key, value) in reader.mapping(node, "actors").items():
        fields = reader.mapping(value, f"actor {name}")
        actor: dict[str, Any] = {}
        for field_name, (fkey, fvalue) in fields.items():
            if field_name not in ACTOR_KEYS:
                raise reader.fail(fkey, f"actor {name}: unknown key {field_name!r}")
            actor[field_name] = reader.value(fvalue, ACTOR_KEYS[field_name],
                                             f"actor {name}: {field_name}")
        if actor.get("kind") not in ("customer", "teller"):
            raise reader.fail(key, f"actor {name}: kind must be customer or teller")
        if actor.get("client", "video") not in ("video", "lobby3d"):
            raise reader.fail(key, f"actor {name}: client must be video or lobby3d")
        if "points" in actor:
            if actor["kind"] != "customer":
                raise reader.fail(fields["points"][0], f"actor {name}: points are for customers")
            if actor["points"] < 0:
                raise reader.fail(fields["points"][1], f"actor {name}: points must be 0 or more")
        actors[name] = actor
    if not any(a["kind"] == "customer" for a in actors.values()):
        raise reader.fail(node, "a scenario needs a customer actor")
    return actors


#: actions only a customer in the 3D hall can do
LOBBY3D_ONLY = ("walk_to", "interact")


def _steps(reader: _Reader, node: yaml.Node, actors: dict[str, dict[str, Any]]) -> list[Step]:
    if not isinstance(node, yaml.SequenceNode):
        raise reader.fail(node, "steps must be a list")
    steps: list[Step] = []
    for item in node.value:
        line = item.start_mark.line + 1
        entries = reader.mapping(item, "a step")
        if "expect" in entries:
            expected = reader.mapping(entries["expect"][1], "expect")
            for name, (key, value) in expected.items():
                if name not in EXPECTATIONS:
                    raise reader.fail(key, f"unknown expectation {name!r}")
                reader.value(value, EXPECTATIONS[name], f"expect {name}")
                if name == "points_balance":
                    _amount(reader, value, "expect points_balance")
                if name == "answered":
                    for q, option in reader.value(value, dict, "expect answered").items():
                        if not (isinstance(q, str) and isinstance(option, str)):
                            raise reader.fail(value, "expect answered: {QUESTION: OPTION}, "
                                                     "e.g. {q1: B}")
            spec = reader.value(entries["expect"][1], dict, "expect")
            who = spec.get("actor", entries.get("actor", (None, None))[1])
            who = who.value if isinstance(who, yaml.Node) else who
            if who is not None and who not in actors:
                raise reader.fail(item, f"expect names unknown actor {who!r}")
            if "points_balance" in spec and \
                    actors[who or _first(actors, "customer")]["kind"] != "customer":
                raise reader.fail(expected["points_balance"][0],
                                  f"points_balance: {who} is a teller; only customers have "
                                  "points")
            steps.append(Step(line, who or _first(actors, "customer"), "expect", spec))
            continue
        if len(entries) != 1:
            raise reader.fail(item, "a step is one `actor: action` or an `expect:`")
        (who, (key, value)), = entries.items()
        if who not in actors:
            raise reader.fail(key, f"unknown actor {who!r} (actors: {', '.join(actors)})")
        table = CUSTOMER_ACTIONS if actors[who]["kind"] == "customer" else TELLER_ACTIONS
        if isinstance(value, yaml.ScalarNode):
            action, argument = str(value.value), None
            if action not in table:
                raise reader.fail(value, f"unknown {actors[who]['kind']} action {action!r}")
            if table[action] is not None:
                raise reader.fail(value, f"{action} needs an argument: {{{action}: ...}}")
        else:
            pairs = list(reader.mapping(value, "an action").items())
            if len(pairs) != 1:
                raise reader.fail(value, "an action is one name with its argument")
            action, (akey, avalue) = pairs[0]
            if action not in table:
                raise reader.fail(akey, f"unknown {actors[who]['kind']} action {action!r}")
            kinds = table[action]
            argument = reader.value(avalue, kinds, action) if kinds is not None else None
            if action == "ask_for" and argument not in ("teller", "digital_human"):
                raise reader.fail(avalue, "ask_for takes teller or digital_human")
            if action == "redeem":
                argument = _redeem(reader, avalue)
            if action == "play":
                argument = _recording(reader, avalue, str(argument))
        if action in LOBBY3D_ONLY and actors[who].get("client", "video") != "lobby3d":
            raise reader.fail(key, f"{action} is for a 3D customer: give actor {who} "
                                   f"client: lobby3d")
        steps.append(Step(line, who, action, argument))
    return steps


def _recording(reader: _Reader, node: yaml.Node, written: str) -> str:
    """``{play: FILE.wav}``: the recording, found next to the scenario file and read once
    here so that a missing or unreadable file stops the run before it starts. The step
    keeps the absolute path."""
    path = Path(reader.file).parent / written
    try:
        pcm = read_wav(path)
    except FileNotFoundError as exc:
        raise reader.fail(node, f"play: no file {written} (looked for {path})") from exc
    except NotAWavFile as exc:
        raise reader.fail(node, f"play: {written} {exc.problem}") from exc
    except OSError as exc:
        raise reader.fail(node, f"play: cannot read {written}: {exc.strerror or exc}") \
            from exc
    if not pcm.size:
        raise reader.fail(node, f"play: {written} holds no audio")
    return str(path.resolve())


def _first(actors: dict[str, dict[str, Any]], kind: str) -> str:
    return next(name for name, a in actors.items() if a["kind"] == kind)


# ------------------------------------------------------------------ the points mall
def _amount(reader: _Reader, node: yaml.Node, what: str) -> int | dict[str, int]:
    """A whole number, or ``{min: N}`` / ``{max: N}`` / both."""
    if isinstance(node, yaml.MappingNode):
        bounds = {}
        for name, (key, value) in reader.mapping(node, what).items():
            if name not in ("min", "max"):
                raise reader.fail(key, f"{what}: {name!r} is not min or max")
            bounds[name] = reader.value(value, int, f"{what} {name}")
        if not bounds:
            raise reader.fail(node, f"{what}: give a number, min or max")
        return bounds
    return int(reader.value(node, int, what))


def _fields(reader: _Reader, node: yaml.Node, table: dict[str, Any], what: str,
            required: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, yaml.Node]]:
    """A mapping's values checked against ``table`` (name → types), with their nodes."""
    entries = reader.mapping(node, what)
    values, nodes = {}, {}
    for name, (key, value) in entries.items():
        if name not in table:
            raise reader.fail(key, f"{what}: unknown key {name!r} (the keys are "
                                   f"{', '.join(table)})")
        values[name] = reader.value(value, table[name], f"{what}: {name}")
        nodes[name] = value
    for name in required:
        if name not in values:
            raise reader.fail(node, f"{what}: missing {name!r}")
    return values, nodes


def _mall_items(reader: _Reader, node: yaml.Node) -> list[dict[str, Any]]:
    """``setup: mall_items``, checked as the admin endpoint will check them."""
    if not isinstance(node, yaml.SequenceNode):
        raise reader.fail(node, "setup mall_items must be a list")
    items: list[dict[str, Any]] = []
    for item in node.value:
        spec, nodes = _fields(reader, item, MALL_ITEM_KEYS, "a mall item",
                              ("id", "points", "stock"))
        what = f"mall item {spec['id']}"
        if not ITEM_ID.match(spec["id"]):
            raise reader.fail(nodes["id"], f"{what}: id must match {ITEM_ID.pattern}")
        if any(spec["id"] == other["id"] for other in items):
            raise reader.fail(nodes["id"], f"{what}: the id is used twice")
        for name, low in (("points", 1), ("stock", 0), ("per_customer_limit", 1)):
            if name in spec and spec[name] < low:
                raise reader.fail(nodes[name], f"{what}: {name} must be {low} or more")
        if spec.get("tier", "standard") not in {t.value for t in Tier}:
            raise reader.fail(nodes["tier"], f"{what}: tier must be one of "
                                             f"{', '.join(t.value for t in Tier)}")
        try:  # what is left (a name's languages) is checked as the server will check it
            parse_item(spec, "a mall item")
        except MallFileError as exc:
            raise reader.fail(nodes.get("name", item), str(exc)) from exc
        items.append(spec)
    return items


def _redeem(reader: _Reader, node: yaml.Node) -> dict[str, Any]:
    spec, nodes = _fields(reader, node, REDEEM_KEYS, "redeem", ("item",))
    if not ITEM_ID.match(spec["item"]):
        raise reader.fail(nodes["item"], f"redeem: item must be a mall item id "
                                         f"({ITEM_ID.pattern})")
    quantity = spec.setdefault("quantity", 1)
    if not 1 <= quantity <= MAX_QUANTITY:
        raise reader.fail(nodes["quantity"], f"redeem: quantity must be 1 to {MAX_QUANTITY}")
    refused = spec.get("refused")
    if isinstance(refused, str):
        try:
            re.compile(refused)
        except re.error as exc:
            raise reader.fail(nodes["refused"], f"redeem: refused is not a regex: {exc}") \
                from exc
    return spec


def _assertion(reader: _Reader, name: str, node: yaml.Node,
               actors: dict[str, dict[str, Any]]) -> None:
    """The values of the mall's assertions (the others are checked as they run)."""
    if name == "ledger" and reader.value(node, None, "ledger") != "consistent":
        raise reader.fail(node, "ledger: the only check is ledger: consistent")
    if name == "points":
        spec, nodes = _fields(reader, node, {"earned": (int, dict), "actor": str}, "points",
                              ("earned",))
        _amount(reader, nodes["earned"], "points earned")
        who = spec.get("actor")
        if who is not None and actors.get(who, {}).get("kind") != "customer":
            raise reader.fail(nodes["actor"], f"points: {who!r} is not a customer actor")
