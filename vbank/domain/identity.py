"""PRC resident ID numbers (居民身份证号码, GB 11643-1999): check one, read what it says.

An 18-character number is six digits of region, eight of birth date (YYYYMMDD), three of
sequence (the last of them odd for men, even for women) and a check character computed with
ISO 7064 MOD 11-2 (``0``-``9`` or ``X``). A full number is personal data: log and show
``ResidentId.masked`` only; the full number never appears in an error message or a ``repr``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date

from vbank.domain import DomainError

LENGTH = 18
#: ISO 7064 MOD 11-2 weights of the first 17 digits: 2**(17 - i) mod 11
WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(LENGTH - 1))
#: the check character for each remainder of the weighted sum mod 11
CHECK_CHARACTERS = "10X98765432"
#: nobody alive was born before this; an earlier year is a mistyped number
EARLIEST_BIRTH_YEAR = 1900


class InvalidIdNumber(DomainError):
    """A resident ID number that cannot be right; the message says why, never the number."""


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A checked resident ID number and what it tells about its holder."""

    #: the full number, upper-case X; kept out of ``repr`` so it never reaches a log by accident
    number: str = field(repr=False)
    birth_date: date
    sex: Sex

    @property
    def region(self) -> str:
        """The six-digit administrative division code of the place of first registration."""
        return self.number[:6]

    @property
    def masked(self) -> str:
        """The number with its birth date hidden, e.g. ``110105********002X``: for logs, screens."""
        return self.number[:6] + "*" * 8 + self.number[14:]

    def age(self, on: date) -> int:
        """Full years of age on the given day."""
        had_birthday = (on.month, on.day) >= (self.birth_date.month, self.birth_date.day)
        return on.year - self.birth_date.year - (0 if had_birthday else 1)

    def __str__(self) -> str:
        return self.masked


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def check_resident_id(number: str, today: date | None = None) -> ResidentId:
    """Check an 18-character resident ID number; raise ``InvalidIdNumber`` saying what is wrong.

    Whitespace anywhere is ignored (people type and say numbers in groups) and a lower-case
    ``x`` is accepted. ``today`` is the day a birth date may not be after; the flows pass
    theirs, and only when it is left out is the system clock read.
    """
    digits = "".join(str(number).split()).upper()
    if len(digits) != LENGTH:
        raise InvalidIdNumber(f"ID number must have {LENGTH} characters")
    first17, last = digits[:-1], digits[-1]
    if not (first17.isascii() and first17.isdigit()):
        raise InvalidIdNumber("ID number must start with 17 digits")
    if not (last == "X" or (last.isascii() and last.isdigit())):
        raise InvalidIdNumber("ID number must end with a digit or X")
    if first17[0] not in "12345678":
        raise InvalidIdNumber(f"ID number has an unknown region code {first17[:6]}")
    born = first17[6:14]
    try:
        birth_date = date(int(born[:4]), int(born[4:6]), int(born[6:]))
    except ValueError:
        raise InvalidIdNumber(f"ID number has an impossible birth date {born}") from None
    if birth_date.year < EARLIEST_BIRTH_YEAR:
        raise InvalidIdNumber(f"ID number has an impossible birth date {born}")
    if birth_date > (today or date.today()):
        raise InvalidIdNumber(f"ID number has a birth date in the future {born}")
    expected = check_character(first17)
    if last != expected:
        raise InvalidIdNumber(f"ID number check digit is wrong: expected {expected}")
    sex = Sex.MALE if int(first17[16]) % 2 else Sex.FEMALE
    return ResidentId(digits, birth_date, sex)
