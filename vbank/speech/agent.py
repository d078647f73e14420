"""The digital human's conversation: a pure state machine from what was heard to what to do.

Feed it ``Heard`` (a recognised utterance and its intent) or ``Silence``; read back actions:
``Say`` a text, ``HandOver`` to a person, ``StartService`` (the business the customer asked
for, in the same call), ``End`` the call. No audio, no models, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vbank.domain.services import SERVICES
from vbank.speech import SpeechError

#: misunderstandings in a row after which the customer is handed to a person
MAX_MISUNDERSTOOD = 2

LINES = {
    "greeting": {"en": "Hello, I am the vbank digital assistant. How can I help you today?",
                 "zh": "您好，我是虚拟银行数字员工。请问有什么可以帮您？"},
    "repeat": {"en": "Sorry, I did not catch that. Could you say it again?",
               "zh": "抱歉，我没有听清楚，请您再说一遍。"},
    "give_up": {"en": "Sorry, I am not able to help with that. Let me put you through to a teller.",
                "zh": "抱歉，这个问题我无法处理，正在为您转接人工柜员。"},
    "anything_else": {"en": "Is there anything else I can help you with?",
                      "zh": "请问还有其他可以帮您的吗？"},
    "queue": {"en": "You are number {position} in the queue for a teller.",
              "zh": "您在人工柜员队列中排第{position}位。"},
    "queue_none": {"en": "There is nobody waiting for a teller right now.",
                   "zh": "目前没有人在排队等候人工柜员。"},
    "points": {"en": "You have {balance} points, and you are a {tier} customer.",
               "zh": "您目前有{balance}积分，会员等级为{tier}。"},
    "points_unknown": {"en": "I cannot see your points right now. The points mall on our "
                             "website shows your balance.",
                       "zh": "暂时无法查询您的积分，您可以在积分商城查看余额。"},
    "points_items": {"en": "With your points you can get {items}.",
                     "zh": "用您的积分可以兑换{items}。"},
    "points_mall_empty": {"en": "There is nothing in the points mall to redeem right now.",
                          "zh": "积分商城目前没有可兑换的商品。"},
    "points_items_none": {"en": "Nothing in the mall is within your points yet. The cheapest "
                                "item, {item}, needs {points} points.",
                          "zh": "您的积分暂时还不够兑换商品，最便宜的{item}需要{points}积分。"},
}
TIER_NAMES = {"standard": {"en": "standard", "zh": "普通"},
              "silver": {"en": "silver", "zh": "银卡"},
              "gold": {"en": "gold", "zh": "金卡"},
              "platinum": {"en": "platinum", "zh": "白金"}}


@dataclass(frozen=True, slots=True)
class PointsFacts:
    """What the digital human may tell a customer about their points, given by the server
    when it starts (the worker it runs in has no database)."""

    balance: int
    tier: str
    #: what the customer can afford now, dearest first: ({en, zh} name, price)
    affordable: tuple[tuple[dict[str, str], int], ...] = ()
    #: the cheapest item in stock, when none is affordable
    cheapest: tuple[dict[str, str], int] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PointsFacts:
        cheapest = data.get("cheapest")
        return cls(int(data["balance"]), str(data["tier"]),
                   tuple((dict(n), int(p)) for n, p in data.get("affordable", [])),
                   None if cheapest is None else (dict(cheapest[0]), int(cheapest[1])))


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    intent: str | None


@dataclass(frozen=True, slots=True)
class Silence:
    """The customer made a sound that was no speech we could read (noise, cough, mumble)."""


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    key: str  # which line or intent it answers, for captions and tests


@dataclass(frozen=True, slots=True)
class HandOver:
    reason: str  # "asked" | "not_understood"


@dataclass(frozen=True, slots=True)
class StartService:
    """The customer asked for a service: the server starts it in this call."""

    service: str


@dataclass(frozen=True, slots=True)
class End:
    pass


Action = Say | HandOver | StartService | End


@dataclass
class Faq:
    """Intents the digital human knows: examples to recognise, answers to give, what follows."""

    examples: dict[str, list[str]]
    answers: dict[str, dict[str, str]]
    then: dict[str, str]
    #: intents that start a service (its id) after the answer
    start: dict[str, str] = field(default_factory=dict)
    #: Chinese examples (``examples_zh``), for a Chinese session's intents
    examples_zh: dict[str, list[str]] = field(default_factory=dict)

    def examples_in(self, language: str) -> dict[str, list[str]]:
        """The examples a session in ``language`` is understood by: Chinese sessions by the
        Chinese and the English ones (customers mix in English words: "我要办 credit card")."""
        if language != "zh":
            return self.examples
        return {k: [*self.examples_zh.get(k, []), *v] for k, v in self.examples.items()}

    @classmethod
    def load(cls, path: Path) -> Faq:
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            intents = data["intents"]
            faq = cls({k: list(v["examples"]) for k, v in intents.items()},
                      {k: dict(v["answer"]) for k, v in intents.items()},
                      {k: str(v["then"]) for k, v in intents.items() if "then" in v},
                      {k: str(v["start"]) for k, v in intents.items() if "start" in v},
                      {k: list(v["examples_zh"]) for k, v in intents.items()
                       if "examples_zh" in v})
        except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
            raise SpeechError(f"{path}: not a valid FAQ file ({exc})") from exc
        unknown = sorted(s for s in faq.start.values() if s not in SERVICES)
        if unknown:
            raise SpeechError(f"{path}: start: unknown service {unknown[0]!r}; services are "
                              f"{', '.join(SERVICES)}")
        both = sorted(set(faq.start) & set(faq.then))
        if both:
            raise SpeechError(f"{path}: intent {both[0]!r} has both start and then")
        return faq


@dataclass
class Conversation:
    """One customer's talk with the digital human."""

    faq: Faq
    language: str = "en"
    misunderstood: int = 0
    ended: bool = False
    #: the customer's place in the teller queue, kept current by the caller
    queue_position: int | None = None
    #: the customer's points and what they buy, when the server told
    points: PointsFacts | None = None
    said: list[Say] = field(default_factory=list)

    def _line(self, key: str, **values: object) -> Say:
        text = LINES[key].get(self.language, LINES[key]["en"]).format(**values)
        return Say(text, key)

    def start(self) -> list[Action]:
        return self._record([self._line("greeting")])

    def hear(self, event: Heard | Silence) -> list[Action]:
        if self.ended:
            return []
        intent = event.intent if isinstance(event, Heard) else None
        if intent is None or intent not in self.faq.answers:
            self.misunderstood += 1
            if self.misunderstood >= MAX_MISUNDERSTOOD:
                self.ended = True
                return self._record([self._line("give_up"), HandOver("not_understood")])
            return self._record([self._line("repeat")])
        self.misunderstood = 0
        answer = self.faq.answers[intent].get(self.language, self.faq.answers[intent]["en"])
        if answer == "REPEAT_LAST":  # what it said last, but the offer of more help
            last = next((s for s in reversed(self.said) if s.key != "anything_else"), None)
            return self._record([last or self._line("greeting")])
        if answer == "QUEUE_STATUS":
            say = (self._line("queue", position=self.queue_position) if self.queue_position
                   else self._line("queue_none"))
        elif answer in ("POINTS_BALANCE", "POINTS_ITEMS"):
            say = self._points(answer)
        else:
            say = Say(answer, intent)
        if intent in self.faq.start:
            self.ended = True  # the service's own flow (or a teller) takes it from here
            return self._record([say, StartService(self.faq.start[intent])])
        follow = self.faq.then.get(intent)
        if follow == "hand_over":
            self.ended = True
            return self._record([say, HandOver("asked")])
        if follow == "end":
            self.ended = True
            return self._record([say, End()])
        return self._record([say, self._line("anything_else")])

    def _points(self, answer: str) -> Say:
        facts, lang = self.points, self.language
        if facts is None:
            return self._line("points_unknown")
        if answer == "POINTS_BALANCE":
            tier = TIER_NAMES.get(facts.tier, {}).get(lang, facts.tier)
            return self._line("points", balance=facts.balance, tier=tier)
        if facts.affordable:
            sep = "、" if lang == "zh" else ", "
            names = [n.get(lang, n["en"]) for n, _ in facts.affordable[:3]]
            items = sep.join(names) if lang == "zh" or len(names) < 2 else \
                f"{', '.join(names[:-1])} or {names[-1]}"
            return self._line("points_items", items=items)
        if facts.cheapest is not None:
            name, points = facts.cheapest
            return self._line("points_items_none", item=name.get(lang, name["en"]),
                              points=points)
        return self._line("points_mall_empty")

    def _record(self, actions: list[Action]) -> list[Action]:
        self.said += [a for a in actions if isinstance(a, Say)]
        return actions
