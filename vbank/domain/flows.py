"""Business flows (scenes/flows/*.yaml): what is said, asked, checked and recorded, step by step.

A flow file is data: steps with their scripts in English and Chinese, the clauses that must
be read in full (disclosures), the answers expected from the customer, and the phrases no one
from the bank may say. It is checked completely on load; every mistake names the file and the
line. The same flow runs with a teller (the console shows the script) or with the digital
human (it speaks the script); ``domain.flowrun`` is the state machine that runs one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from vbank.domain import DomainError
from vbank.domain.services import SERVICES

FLOWS_DIR = Path(__file__).resolve().parents[2] / "scenes" / "flows"
LANGUAGES = ("en", "zh")
#: what each kind of step waits for before the flow moves on
STEP_KINDS = ("identity", "disclosure", "consent", "signature", "questionnaire", "result",
              "suitability", "sealed")
ID = re.compile(r"^[a-z][a-z0-9_]*$")
FLOW_KEYS = {"flow", "service", "title", "document", "forbidden", "steps", "questionnaire",
             "product"}
STEP_KEYS = {"id", "kind", "say", "disclosures", "expect", "refuse"}

#: what a customer says to the digital human, mid-flow, to be put through to a person (the
#: recogniser listens for these at every step besides the step's own answers)
PERSON_PHRASES: dict[str, list[str]] = {
    "en": ["talk to a person", "a real person please", "transfer me to a teller",
           "I want a teller"],
    "zh": ["转人工", "人工服务", "我要找人工", "转接人工柜员"]}


class FlowFileError(DomainError):
    """A flow file that cannot be used: names the file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line = file, line


@dataclass(frozen=True, slots=True)
class Text:
    """The same words in each language."""

    en: str
    zh: str

    def get(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A clause that must be read out in full before the customer consents."""

    id: str
    text: Text


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    kind: str
    say: Text
    disclosures: tuple[Disclosure, ...] = ()
    #: phrases that count as the customer's yes (consent) or no, per language
    expect: dict[str, tuple[str, ...]] = field(default_factory=dict)
    refuse: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Flow:
    id: str
    service: str
    title: Text
    steps: tuple[Step, ...]
    forbidden: dict[str, tuple[str, ...]]
    #: the document the customer signs (``assets/contracts/<id>.md``), if any
    document: str | None = None
    #: the product a suitability step checks unless the teller pushes another
    product: str | None = None
    #: the raw ``questionnaire:`` section (read by ``domain.risk``)
    questionnaire: dict[str, Any] | None = None
    file: str = ""

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise DomainError(f"flow {self.id} has no step {step_id}")

    def index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)

    @property
    def disclosures(self) -> tuple[Disclosure, ...]:
        return tuple(d for s in self.steps for d in s.disclosures)


class _Lined(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each key."""

    line = 1
    lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        mapping = _Lined({str(k): v for k, v in super().construct_mapping(node, deep=True).items()})
        mapping.line = node.start_mark.line + 1
        mapping.lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                        _Loader.construct_mapping)


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, where: Any, message: str, key: str | None = None) -> FlowFileError:
        line = getattr(where, "line", 1)
        if key is not None and isinstance(where, _Lined):
            line = where.lines.get(key, line)
        return FlowFileError(self.file, line, message)

    def mapping(self, value: Any, what: str, allowed: set[str], parent: Any = None,
                key: str | None = None) -> _Lined:
        if not isinstance(value, _Lined):
            raise self.fail(parent, f"{what} must be a mapping", key)
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(value, f"unknown key {unknown[0]!r} in {what}", unknown[0])
        return value

    def text(self, parent: _Lined, key: str, what: str) -> Text:
        value = parent.get(key)
        if value is None:
            raise self.fail(parent, f"{what} needs {key}")
        if not isinstance(value, _Lined):
            raise self.fail(parent, f"{what}.{key} must give en and zh", key)
        missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
        if missing:
            raise self.fail(value, f"{what}.{key} has no {missing[0]} text")
        extra = sorted(set(value) - set(LANGUAGES))
        if extra:
            raise self.fail(value, f"{what}.{key}: unknown language {extra[0]!r}", extra[0])
        return Text(str(value["en"]).strip(), str(value["zh"]).strip())

    def phrases(self, parent: _Lined, key: str, what: str) -> dict[str, tuple[str, ...]]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, _Lined):
            raise self.fail(parent, f"{what}.{key} must map en and zh to lists", key)
        out: dict[str, tuple[str, ...]] = {}
        for lang, items in value.items():
            if lang not in LANGUAGES:
                raise self.fail(value, f"{what}.{key}: unknown language {lang!r}", lang)
            if not isinstance(items, list) or not items or not all(
                    isinstance(i, str) and i.strip() for i in items):
                raise self.fail(value, f"{what}.{key}.{lang} must be a list of phrases", lang)
            out[lang] = tuple(i.strip() for i in items)
        return out


def load_flow(path: Path) -> Flow:
    """Read and check one flow file."""
    file = str(path)
    reader = _Reader(file)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except OSError as exc:
        raise FlowFileError(file, 1, f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FlowFileError(file, mark.line + 1 if mark else 1, f"not YAML: {exc}") from exc
    top = reader.mapping(data, "a flow file", FLOW_KEYS)
    flow_id = top.get("flow")
    if not isinstance(flow_id, str) or not ID.match(flow_id):
        raise reader.fail(top, "flow must be an id like loan_signing", "flow")
    if flow_id != path.stem:
        raise reader.fail(top, f"flow {flow_id!r} must be in a file named {flow_id}.yaml",
                          "flow")
    service = top.get("service")
    if service not in SERVICES:
        raise reader.fail(top, f"unknown service {service!r}", "service")
    raw_steps = top.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise reader.fail(top, "steps must be a non-empty list", "steps")
    steps: list[Step] = []
    for raw in raw_steps:
        entry = reader.mapping(raw, "a step", STEP_KEYS, top, "steps")
        step_id = entry.get("id")
        if not isinstance(step_id, str) or not ID.match(step_id):
            raise reader.fail(entry, "a step needs an id like identity", "id")
        if any(s.id == step_id for s in steps):
            raise reader.fail(entry, f"step {step_id!r} appears twice", "id")
        kind = entry.get("kind", step_id)
        if kind not in STEP_KINDS:
            raise reader.fail(entry, f"step {step_id!r}: kind must be one of "
                                     f"{', '.join(STEP_KINDS)}", "kind" if "kind" in entry
                              else "id")
        disclosures: list[Disclosure] = []
        raw_disclosures = entry.get("disclosures", [])
        if not isinstance(raw_disclosures, list):
            raise reader.fail(entry, "disclosures must be a list", "disclosures")
        for item in raw_disclosures:
            d = reader.mapping(item, "a disclosure", {"id", "text"}, entry, "disclosures")
            if not isinstance(d.get("id"), str) or not ID.match(d["id"]):
                raise reader.fail(d, "a disclosure needs an id", "id")
            if any(x.id == d["id"] for s in steps for x in s.disclosures) or any(
                    x.id == d["id"] for x in disclosures):
                raise reader.fail(d, f"disclosure {d['id']!r} appears twice", "id")
            disclosures.append(Disclosure(d["id"], reader.text(d, "text", d["id"])))
        if kind == "disclosure" and not disclosures:
            raise reader.fail(entry, f"step {step_id!r} must list its disclosures")
        expect = reader.phrases(entry, "expect", step_id)
        if kind == "consent" and not expect.get("en"):
            raise reader.fail(entry, f"step {step_id!r} must list the English phrases that "
                                     "count as consent (expect.en)")
        steps.append(Step(step_id, kind, reader.text(entry, "say", step_id),
                          tuple(disclosures), expect, reader.phrases(entry, "refuse", step_id)))
    if steps[-1].kind != "sealed":
        raise reader.fail(raw_steps[-1], "the last step must be the sealed step")
    kinds = [s.kind for s in steps]
    if "suitability" in kinds and "questionnaire" not in kinds:
        raise reader.fail(top, "a suitability step needs a questionnaire step before it",
                          "steps")
    questionnaire = top.get("questionnaire")
    if ("questionnaire" in kinds) != (questionnaire is not None):
        raise reader.fail(top, "a questionnaire step and a questionnaire: section go together",
                          "questionnaire" if questionnaire is not None else "steps")
    if questionnaire is not None and not isinstance(questionnaire, _Lined):
        raise reader.fail(top, "questionnaire must be a mapping", "questionnaire")
    forbidden = reader.phrases(top, "forbidden", "flow")
    for optional in ("document", "product"):
        if optional in top and not (isinstance(top[optional], str) and top[optional]):
            raise reader.fail(top, f"{optional} must be an id", optional)
    if "signature" in kinds and not top.get("document"):
        raise reader.fail(top, "a flow with a signature step needs a document", "steps")
    return Flow(flow_id, str(service), reader.text(top, "title", "flow"), tuple(steps),
                forbidden, top.get("document"), top.get("product"),
                dict(questionnaire) if questionnaire is not None else None, file)


@cache
def load_flows(directory: Path = FLOWS_DIR) -> dict[str, Flow]:
    """Every flow in the directory, by id (read once per process)."""
    return {path.stem: load_flow(path) for path in sorted(directory.glob("*.yaml"))}


def flow_for_service(service: str, directory: Path = FLOWS_DIR) -> Flow | None:
    """The flow a service runs by default (the digital human starts it by itself)."""
    return next((f for f in load_flows(directory).values() if f.service == service), None)
