"""Spoken answers to the risk questionnaire: which option "option B", "the second one",
"the last one", "选B", "第二个" or the option's own words name, and the phrases a speech
grammar listens for at a question."""

from __future__ import annotations

import re

from vbank.domain.risk import Question

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
NUMBERS = {"one": 0, "two": 1, "three": 2, "four": 3, "five": 4, "six": 5, "seven": 6,
           "eight": 7} | {str(n): n - 1 for n in range(1, 9)}
ZH_NUMBERS = "一二三四五六七八"
#: words that only name what comes next: "option B", "answer two"
KEYWORDS = frozenset({"option", "answer", "choice", "letter", "number"})
#: how recognisers spell a letter said on its own
LETTER_NAMES = {"ay": "A", "bee": "B", "be": "B", "see": "C", "sea": "C", "cee": "C",
                "dee": "D", "ee": "E", "ef": "F", "gee": "G", "aitch": "H"}
#: words around a choice that do not change it ("I'll take the second one, please")
FILLERS = KEYWORDS | frozenset({
    "i", "i'm", "i'd", "i'll", "we", "my", "me", "it", "it's", "is", "be", "will", "that",
    "that's", "this", "the", "an", "one", "options", "answers", "pick", "choose", "chose",
    "select", "take", "go", "going", "with", "for", "please", "um", "uh", "er", "erm", "ah",
    "oh", "okay", "ok", "so", "well", "then", "let's", "say", "would", "like", "want", "think",
    "guess", "maybe", "hmm", "mm", "yes"})
_PENULTIMATE = re.compile(r"\b(?:second|next) (?:to )?last\b|\bpenultimate\b")
_CJK = re.compile(r"[\u3400-\u9fff]")


def option_from_speech(question: Question, text: str) -> str | None:
    """The option a spoken answer names, or ``None`` when it names none or several.

    English: "B", "option B", "the second one", "second", "the last one", "number two", the
    option's own words (or words only it has). Chinese: "选B", "第二个", "最后一个", the
    option's own words. An answer that names two different options is not understood.
    """
    found = _zh_choices(question, text) if _CJK.search(text) else _en_choices(question, text)
    return found.pop() if len(found) == 1 else None


def answer_phrases(question: Question, language: str = "en") -> list[str]:
    """What a speech grammar should listen for at this question (each names one option)."""
    phrases: list[str] = []
    last = len(question.options) - 1
    for i, option in enumerate(question.options):
        if language == "zh":
            phrases += [f"选{option.id}", option.id, f"第{ZH_NUMBERS[i]}个",
                        f"第{ZH_NUMBERS[i]}项", option.text.zh]
            phrases += ["最后一个"] if i == last else []
        else:
            letter = option.id.lower()
            phrases += [letter, f"option {letter}", f"answer {letter}", ORDINALS[i],
                        f"the {ORDINALS[i]} one", " ".join(option_words(option.text.en, "en"))]
            phrases += ["the last one", "last"] if i == last else []
    return list(dict.fromkeys(phrases))


def option_words(text: str, language: str) -> list[str]:
    """The words an answer is compared by: lower-case English words; Chinese as one string
    without punctuation or spaces."""
    if language == "zh":
        return [re.sub(r"[\W_]+", "", text.lower())]
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def _en_choices(question: Question, text: str) -> set[str]:
    ids = [o.id for o in question.options]
    tokens = option_words(_PENULTIMATE.sub("penultimate", text.lower()), "en")
    whole = _said_in_full(question, tokens, "en")
    for oid in whole:  # an option's own words are not read again as letters or positions
        words = option_words(question.options[ids.index(oid)].text.en, "en")
        at = next(i for i in range(len(tokens)) if tokens[i:i + len(words)] == words)
        tokens = tokens[:at] + tokens[at + len(words):]
    named: set[str] = set()  # options named by letter, position or number
    unknown = 0  # words that are neither a name of an option nor filler
    said_a = False  # "a" is also an article: a choice only when nothing else is named
    for i, token in enumerate(tokens):
        after_keyword = i > 0 and tokens[i - 1] in KEYWORDS
        alone = len(tokens) == 1
        if token == "a":
            if after_keyword or alone:
                named.add("A")
            said_a = True
        elif len(token) == 1 and token.isalpha() and token.upper() in ids:
            named.add(token.upper())
        elif token in LETTER_NAMES and (after_keyword or alone):
            if LETTER_NAMES[token] in ids:
                named.add(LETTER_NAMES[token])
            else:
                unknown += 1
        elif token in NUMBERS and after_keyword:
            if NUMBERS[token] < len(ids):
                named.add(ids[NUMBERS[token]])
            else:
                unknown += 1
        elif token in ORDINALS:
            if ORDINALS.index(token) < len(ids):
                named.add(ids[ORDINALS.index(token)])
            else:
                unknown += 1
        elif token in ("last", "final"):
            named.add(ids[-1])
        elif token == "penultimate":
            named.add(ids[-2])
        elif token not in FILLERS:
            unknown += 1
    if said_a and not named:
        named.add("A")
    found = (named if not unknown else set()) | whole
    return found or _said_in_part(question, tokens, "en")


def _zh_choices(question: Question, text: str) -> set[str]:
    ids = [o.id for o in question.options]
    compact = option_words(text, "zh")[0]
    found = _said_in_full(question, [compact], "zh")
    for oid in found:
        own = option_words(question.options[ids.index(oid)].text.zh, "zh")[0]
        compact = compact.replace(own, "")
    for run in re.findall(r"[a-z]+", compact):
        if len(run) == 1 and run.upper() in ids:
            found.add(run.upper())
    if "倒数第二" in compact:
        found.add(ids[-2])
        compact = compact.replace("倒数第二", "")
    for number in re.findall(r"第([一二三四五六七八1-8])", compact):
        index = ZH_NUMBERS.index(number) if number in ZH_NUMBERS else int(number) - 1
        if index < len(ids):
            found.add(ids[index])
    if "最后" in compact:
        found.add(ids[-1])
    return found or _said_in_part(question, [compact], "zh")


def _said_in_full(question: Question, said: list[str], language: str) -> set[str]:
    """Options whose own words were said."""
    texts = {o.id: option_words(o.text.get(language), language) for o in question.options}
    whole = [oid for oid, words in texts.items() if _contains(said, words, language)]
    # "more than five years" also contains an option "five years": the longer one is meant
    return {oid for oid in whole if not any(
        other != oid and _contains(texts[other], texts[oid], language) for other in whole)}


def _said_in_part(question: Question, said: list[str], language: str) -> set[str]:
    """The one option whose words include every word said ("everything": sell everything)."""
    texts = {o.id: option_words(o.text.get(language), language) for o in question.options}
    if language == "zh":
        partial = [oid for oid, words in texts.items()
                   if len(said[0]) >= 2 and said[0] in words[0]]
    else:
        content = {t for t in said if t not in FILLERS and t != "a"}
        partial = [oid for oid, words in texts.items() if content and content <= set(words)]
    return set(partial) if len(partial) == 1 else set()


def _contains(words: list[str], part: list[str], language: str) -> bool:
    """Whether ``part`` was said within ``words`` (Chinese: one string without spaces)."""
    if language == "zh":
        return bool(part[0]) and part[0] in words[0]
    return bool(part) and any(words[i:i + len(part)] == part
                              for i in range(len(words) - len(part) + 1))
