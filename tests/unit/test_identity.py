"""PRC resident ID numbers: check digit, birth date, region, sex, masking."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbank.domain import DomainError
from vbank.domain.identity import (
    InvalidIdNumber,
    ResidentId,
    Sex,
    check_character,
    check_resident_id,
)

TODAY = date(2025, 6, 1)
VALID = "11010519491231002X"


def with_check(first17: str) -> str:
    return first17 + check_character(first17)


def test_the_standard_example_is_valid() -> None:
    rid = check_resident_id(VALID, TODAY)
    assert rid.birth_date == date(1949, 12, 31)
    assert rid.sex is Sex.FEMALE  # 17th digit 2 is even
    assert rid.region == "110105"
    assert rid.masked == "110105********002X"
    assert rid.age(TODAY) == 75


def test_lower_case_x_and_spaces_are_accepted() -> None:
    assert check_resident_id("110105 19491231 002x", TODAY).number == VALID


def test_odd_seventeenth_digit_is_male() -> None:
    number = with_check("44030419900101001")
    assert check_resident_id(number, TODAY).sex is Sex.MALE


def test_check_characters_of_known_numbers() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("44030419900101001") == "1"


@pytest.mark.parametrize("number", ["", "11010519491231002", "11010519491231002X1",
                                    "110105194912310", "11010519491231002X" + "0" * 10])
def test_wrong_length_is_refused(number: str) -> None:
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id(number, TODAY)
    assert str(err.value) == "ID number must have 18 characters"


def test_letters_among_the_first_seventeen_are_refused() -> None:
    with pytest.raises(InvalidIdNumber, match=r"^ID number must start with 17 digits$"):
        check_resident_id("1101051949123100AX", TODAY)
    with pytest.raises(InvalidIdNumber, match=r"^ID number must start with 17 digits$"):
        check_resident_id("11010519491231００2X", TODAY)  # full-width digits


def test_a_last_character_other_than_digit_or_x_is_refused() -> None:
    with pytest.raises(InvalidIdNumber, match=r"^ID number must end with a digit or X$"):
        check_resident_id("11010519491231002Y", TODAY)


def test_wrong_check_digit_names_the_expected_one() -> None:
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id("110105194912310021", TODAY)
    assert str(err.value) == "ID number check digit is wrong: expected X"
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id("44030419900101001X", TODAY)
    assert str(err.value) == "ID number check digit is wrong: expected 1"


@pytest.mark.parametrize("born", ["19491332", "19490229", "19490001", "19491200", "18991231"])
def test_impossible_birth_dates_are_refused(born: str) -> None:
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id(with_check(f"110105{born}002"), TODAY)
    assert str(err.value) == f"ID number has an impossible birth date {born}"


def test_leap_day_is_a_real_birth_date() -> None:
    assert check_resident_id(with_check("11010520000229002"), TODAY).birth_date == date(2000, 2, 29)


def test_birth_date_after_today_is_refused() -> None:
    number = with_check("11010520250602002")
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id(number, TODAY)
    assert str(err.value) == "ID number has a birth date in the future 20250602"
    assert check_resident_id(number, date(2025, 6, 2)).birth_date == date(2025, 6, 2)


@pytest.mark.parametrize("region", ["010105", "910105"])
def test_region_must_start_with_1_to_8(region: str) -> None:
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id(with_check(f"{region}19491231002"), TODAY)
    assert str(err.value) == f"ID number has an unknown region code {region}"


def test_invalid_id_number_is_a_domain_error() -> None:
    assert issubclass(InvalidIdNumber, DomainError)


def test_the_full_number_never_shows_in_repr_or_str() -> None:
    rid = check_resident_id(VALID, TODAY)
    assert VALID not in repr(rid) and VALID not in str(rid) and "19491231" not in str(rid)
    assert isinstance(rid, ResidentId)


first17s = st.builds(
    lambda region, born, seq: f"{region}{born:%Y%m%d}{seq:03d}",
    st.integers(100000, 899999), st.dates(date(1900, 1, 1), TODAY), st.integers(0, 999))


@given(first17s)
def test_every_generated_number_passes_and_keeps_its_birth_date(first17: str) -> None:
    rid = check_resident_id(with_check(first17), TODAY)
    assert rid.birth_date.strftime("%Y%m%d") == first17[6:14]
    assert rid.masked == first17[:6] + "********" + first17[14:] + check_character(first17)


@given(first17s, st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_typo_is_caught(first17: str, position: int, shift: int) -> None:
    # MOD 11-2 detects every substitution of one digit (the property the standard chose it for)
    number = with_check(first17)
    wrong = str((int(number[position]) + shift) % 10)
    typo = number[:position] + wrong + number[position + 1:]
    with pytest.raises(InvalidIdNumber) as err:
        check_resident_id(typo, TODAY)
    assert typo not in str(err.value)
