"""Presidio recognisers for what Presidio's own do not cover, and Presidio's own configured to run offline.

Presidio finds card numbers (Luhn), IBANs (check digits), e-mail addresses and phone numbers (the
`phonenumbers` library). Subclasses here add what it has no recogniser for, or misses:

- `OfflineEmailRecognizer`: Presidio's e-mail recogniser, validating the domain with the public-suffix list
  bundled in `tldextract` (Presidio's own calls `tldextract.extract`, which downloads the list) and also
  finding an address glued to digits that follow it (`a.b@example.com4111...`);
- `SpelledEmailRecognizer`: addresses spelled out, `jo dot bloggs at gmail dot com`, `tom[at]proton[dot]me`;
- `SeparatedCardRecognizer`: card numbers grouped with separators Presidio's pattern does not allow (`.`, `_`,
  ` / `, a no-break space, two spaces) and Mastercard's 2-series (2221-2720);
- `RegionalPhoneRecognizer`: Presidio's phone recogniser over the regions a UK bank's customers write from,
  skipping text with too few digits and numbers that a cue word says are references or postcodes;
- `SortCodeRecognizer`, `AccountNumberRecognizer`: UK sort codes and account numbers, which Presidio lacks;
- `StreetAddressRecognizer`: a house number with a street (`14 Elm Street`, `Hauptstraße 5`), which Presidio
  finds only through NER (spaCy's small model finds few: see bench/results/masking.md).

Context decides the UK kinds, since the digits alone cannot: `12-03-24` is a date unless a sort-code cue is
near, `48213377` is a reference after `ref` and an account number after `account` or on its own.
"""

from __future__ import annotations

import bisect
import datetime
from functools import cache
from typing import cast

import phonenumbers
import regex
import tldextract
from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)

from harness.masking.options import (
    ACCOUNT_NUMBER,
    DATE_OF_BIRTH,
    PLACEHOLDER,
    SORT_CODE,
    STREET_ADDRESS,
    UK_POSTCODE,
    US_SSN,
)

PHONE_REGIONS = ("GB", "US", "IE", "DE", "FR", "ES", "NL", "IN", "AU")
"""Where customers' phone numbers come from; a number written without `+` must be valid in one of these (or in
one of `LONG_NUMBER_REGIONS`), or possible in one of them and written in a phone notation (`phone_notation`)."""
LONG_NUMBER_REGIONS = ("IT",)
"""Customers' regions whose valid numbers written without `+` are phone numbers only with nine or more national
digits: Italy's landlines start at six digits (`0.123456` is one), which amounts and references share; its
mobiles (`347 123 4567`) and city numbers (`06 1234 5678`) have ten."""
_ALL_REGIONS = PHONE_REGIONS + LONG_NUMBER_REGIONS

_FLAGS = regex.IGNORECASE | regex.DOTALL | regex.MULTILINE
_CUE_WINDOW = 40  # characters before a number searched for a cue word
_LETTER = r"[^\W\d_]"

# A cue word before a number says what the number is. The nearest cue wins.
_ACCOUNT_CUE = rf"(?<!{_LETTER})(?:accounts?|acount|accout|accnt|acct|acc|a/c)(?!{_LETTER})"
_SORT_CUE = rf"(?<!{_LETTER})(?:sort|sortcode|s/c|sc)(?!{_LETTER})"
_NOT_PII_CUE = (
    rf"(?<!{_LETTER})(?:ref|reference|order|case|policy|ticket|invoice|claim|transaction|tracking|confirmation"
    rf"|booking|cheque|receipt|serial|id|zip|postcode|postal|plz|pin|version|ending|ends|last)(?!{_LETTER})"
)
_PHONE_CUE = (
    rf"(?<!{_LETTER})(?:phone|mobile|tel|call|ring|text|landline|cell|whatsapp|fax|contact|my\s+(?:number|no))"
    rf"(?!{_LETTER})"
)
_CUES = regex.compile(
    rf"(?P<account>{_ACCOUNT_CUE})|(?P<sort>{_SORT_CUE})|(?P<not_pii>{_NOT_PII_CUE})|(?P<phone>{_PHONE_CUE})",
    _FLAGS,
)
_MONEY_BEFORE = regex.compile(r"(?:[£$€¥₹]|(?<!\w)(?:rs|inr|gbp|eur|usd|aud)\.?)\s?-?$", _FLAGS)
# A sign after the number ends an amount (`1.234.567 €`), unless another amount starts there (`41238976 £250`).
_MONEY_AFTER = regex.compile(
    r"^\s?(?:[£$€¥₹%](?!\s?\d)|(?:pounds?|quid|gbp|euros?|eur|usd|dollars?|rupees?|inr|aud)\b)", _FLAGS
)
_AMOUNT = regex.compile(r"\d{1,3}(?:[,. ]\d{3})*[.,]\d{1,2}|\d+[.,]\d{1,2}")
_DATE_INSIDE = regex.compile(
    r"(?<!\d)(?:\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2})|(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2})(?!\d)"
)


def nearest_cue(text: str, start: int) -> str | None:
    """The kind of the cue word nearest before `start` (within 40 characters): 'account', 'sort', 'not_pii'
    (references, postcodes, last digits...), 'phone', or None. Placeholders are not cues: `[account number]`
    says nothing about the number after it."""
    window = PLACEHOLDER.sub(lambda match: " " * len(match[0]), text[max(0, start - _CUE_WINDOW) : start])
    found = None
    for match in _CUES.finditer(window):
        found = match.lastgroup
    return found


def is_money(text: str, start: int, end: int) -> bool:
    """A currency sign or word right before or after text[start:end]."""
    return bool(_MONEY_BEFORE.search(text[max(0, start - 5) : start]) or _MONEY_AFTER.match(text[end : end + 9]))


def digits_of(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def looks_like_date(candidate: str) -> bool:
    """Eight digits that read as a calendar date from 1900 to 2099: YYYYMMDD, DDMMYYYY or MMDDYYYY, with or
    without separators (`20240312`, `12 03 2024`)."""
    digits = digits_of(candidate)
    if len(digits) != 8:
        return False
    first, middle, last = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    year_first = int(digits[:4])
    return (
        (1900 <= year_first <= 2099 and _is_date(year_first, int(digits[4:6]), int(digits[6:])))
        or (1900 <= last <= 2099 and (_is_date(last, middle, first) or _is_date(last, first, middle)))
    )  # fmt: skip


def contains_date(text: str) -> bool:
    """A date written with `-`, `.` or `/` inside `text` (`15-04-2024`, `1-3-2024`, `2024/03/12`)."""
    for match in _DATE_INSIDE.finditer(text):
        parts = [int(part) for part in regex.split(r"[-./]", match[0])]
        day_month = parts[1:] if parts[0] > 31 else parts[:2]
        if _day_month(*day_month):
            return True
    return False


def _day_month(first: int, second: int) -> bool:
    """Two numbers that could be a day and a month in either order (12-03, 03-12)."""
    return (1 <= first <= 31 and 1 <= second <= 12) or (1 <= first <= 12 and 1 <= second <= 31)


@cache
def suffix_extractor() -> tldextract.TLDExtract:
    """tldextract with the public-suffix list it ships with: no download (no URLs) and no cache on disk."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def has_public_suffix(domain: str) -> bool:
    """`domain` is a registrable name under a known public suffix (`gmail.com`, `bigpond.com.au`)."""
    parts = suffix_extractor()(domain)
    return bool(parts.suffix and parts.domain)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recogniser with an offline domain check, plus addresses glued to following digits."""

    PATTERNS = [
        *EmailRecognizer.PATTERNS,
        # The address before digits glued on (`a.b@example.com4111 ...`): its last label is letters only.
        Pattern("Email glued to digits", r"\b[\w.!#$%&'*+/=?^`{|}~-]+@(?:\w+(?:-+\w+)*\.)+[^\W\d_]{2,}(?=\d)", 0.5),
    ]

    def __init__(self) -> None:
        super().__init__(patterns=self.PATTERNS)

    def validate_result(self, pattern_text: str) -> bool:
        return has_public_suffix(pattern_text.rpartition("@")[2])


class LowercaseIbanRecognizer(IbanRecognizer):
    """IBANs typed in lower or mixed case (`gb82west12345698765432`), which Presidio's IBAN pattern, matching
    capitals only, misses. Matched without regard to case, a lowercase IBAN runs on into the words after it
    (`... 32 with thanks`), so the candidate is cut back, part by part, to the longest that passes Presidio's
    check digits and country format."""

    _CANDIDATE = regex.compile(r"(?<![a-z0-9])[a-z]{2}[0-9]{2}(?:[ -]?[a-z0-9]{4}){2,7}(?:[ -]?[a-z0-9]{1,3})?", _FLAGS)
    _GROUP_END = regex.compile(r"[a-z0-9](?=[ -]?[a-z0-9]|$)", _FLAGS)

    def __init__(self) -> None:
        super().__init__(name="LowercaseIbanRecognizer")

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        results = []
        for match in self._CANDIDATE.finditer(text):
            candidate = match[0]
            # Ends of the candidate's space- or dash-separated parts, longest first.
            ends = [end for end in range(len(candidate), 0, -1) if candidate[end : end + 1] in ("", " ", "-")]
            for end in ends:
                if candidate[end - 1].isalnum() and self.validate_result(candidate[:end].upper()):
                    results.append(
                        RecognizerResult(self.supported_entities[0], match.start(), match.start() + end, 1.0)
                    )
                    break
        return results


_AT = r"(?:\s*[(\[{]\s*at\s*[)\]}]\s*|\s+at\s+|\s+@\s+)"
_DOT = r"(?:\s*[(\[{]\s*dot\s*[)\]}]\s*|\s+dot\s+|\.)"
_LOCAL_JOIN = r"(?:\s+(?:dot|underscore|dash|hyphen)\s+|[._-])"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"


class FilteredPatternRecognizer(PatternRecognizer):
    """A pattern recogniser whose matches are kept only when `_plausible` says so, looking at the text around
    them (cue words, dates, neighbouring numbers), which Presidio's per-match `validate_result` cannot see."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        return [result for result in super().analyze(text, entities, nlp_artifacts) if self._plausible(text, result)]

    def _plausible(self, text: str, result: RecognizerResult) -> bool:
        raise NotImplementedError


class SpelledEmailRecognizer(FilteredPatternRecognizer):
    """E-mail addresses spelled out so that they pass filters: `jo dot bloggs at gmail dot com`, `priya (at)
    outlook (dot) com`, `tom[at]protonmail[dot]com`. The domain must end in a known public suffix; and, since
    `paid at amazon.co.uk` has the same shape, the address must be bracketed, or have a compound local part
    (`jo dot bloggs`, `sarah_k`), or follow an e-mail cue word; and the local part needs a letter, so that the
    last group of a card or phone number, an amount or an order number before ` at <shop>.com` is none."""

    PATTERN = (
        rf"(?<![\w@.])(?P<local>[\w'+]+(?:{_LOCAL_JOIN}[\w'+]+)*)(?P<at>{_AT})"
        rf"(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})+)(?![\w@])"
    )
    _COMPILED = regex.compile(PATTERN, _FLAGS)
    _EMAIL_CUE = regex.compile(r"(?<!\w)(?:e-?mail|mail|address)(?!\w)", _FLAGS)
    _DOT_WORD = regex.compile(_DOT, _FLAGS)
    _JOIN_WORD = regex.compile(_LOCAL_JOIN, _FLAGS)

    def __init__(self) -> None:
        super().__init__(
            supported_entity="EMAIL_ADDRESS",
            name="SpelledEmailRecognizer",
            patterns=[Pattern("Spelled-out e-mail", self.PATTERN, 0.5)],
        )

    def _plausible(self, text: str, result: RecognizerResult) -> bool:
        match = self._COMPILED.fullmatch(text, result.start, result.end)
        if match is None:
            return False
        domain = self._DOT_WORD.sub(".", match["domain"])
        if not has_public_suffix(domain):
            return False
        local = match["local"]
        if not any(char.isalpha() for char in local):
            return False  # a number or an amount: `paid 49.99 at amazon.co.uk`, `4556 ... 9855 at ebay.com`
        bracketed = any(bracket in match["at"] for bracket in "([{")
        compound = bool(self._JOIN_WORD.search(local)) or any(char.isdigit() for char in local)
        cued = bool(self._EMAIL_CUE.search(text, max(0, result.start - _CUE_WINDOW), result.start))
        return bracketed or compound or cued


_SEP = r"(?:[ \t\u00a0\u202f]{0,2}[-._/][ \t\u00a0\u202f]{0,2}|[ \t\u00a0\u202f]{1,3})"
_CARD_START = r"(?<![\d.,£$€])(?<!\d" + _SEP + r")"


class SeparatedCardRecognizer(CreditCardRecognizer):
    """Card numbers in the layouts Presidio's card pattern (one space or dash between groups, first digit 1, 3,
    4, 5 or 6) misses: groups separated by `.`, `_`, `/`, a no-break space or several spaces, and Mastercard's
    2-series. Each layout is its own pattern, so a number followed by more digits (`... 6617 2 times`) is still
    found by the layout that stops in time. Also a number glued to a word (`visa4556737586899855`) and one typed a
    digit at a time (`4 5 5 6 7 3 ...`). Luhn decides, as in Presidio's, plus a valid issuer prefix."""

    PATTERNS = [
        Pattern(name, _CARD_START + body + r"(?!\d)", 0.3)
        for name, body in [
            ("4-4-4-4", rf"[2-6]\d{{3}}(?:{_SEP}\d{{4}}){{3}}"),
            ("4-4-4-4-3", rf"[2-6]\d{{3}}(?:{_SEP}\d{{4}}){{3}}{_SEP}\d{{1,3}}"),
            ("4-6-5", rf"3\d{{3}}{_SEP}\d{{6}}{_SEP}\d{{4,5}}"),
            ("4-8-4", rf"[2-6]\d{{3}}{_SEP}\d{{8}}{_SEP}\d{{4}}"),
            ("run together", r"[2-6]\d{12,18}"),  # also glued to a word (`visa4556...`), which `\b` misses
            ("one digit at a time", rf"[2-6](?:{_SEP}\d){{12,18}}(?!{_SEP}\d)"),
        ]
    ]
    SEPARATORS = (" ", "-", ".", "_", "/", "\t", "\u00a0", "\u202f")

    def __init__(self) -> None:
        super().__init__(
            patterns=self.PATTERNS,
            replacement_pairs=[(separator, "") for separator in self.SEPARATORS],
            name="SeparatedCardRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool:
        digits = digits_of(pattern_text)
        issuer = digits[0] in "3456" or 2221 <= int(digits[:4]) <= 2720
        return 13 <= len(digits) <= 19 and issuer and super().validate_result(pattern_text)


# Where a possible but unallocated number may be (a `+`, a trunk prefix, a US area code), checked before the
# second pass of the phone matcher (`RegionalPhoneRecognizer._possible`) to keep its cost off other text.
_NOTATION_HINT = regex.compile(r"\+|(?<!\d)0\d|\(\d{3}\)|\d{3}[-. ]\d{3}[-. ]\d{4}|(?<!\d)3\d{2}[ .\-]?\d{3}")
_NANP_NOTATION = regex.compile(r"(?:\+?1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")


def phone_notation(raw: str, number: phonenumbers.PhoneNumber, region: str) -> bool:
    """`raw`, which `phonenumbers` read as `number` in `region`, has a full possible length for its country and is
    written the way only phone numbers are: with a country code (`+44 7700 900123`, `0044 ...`), with a trunk prefix
    and ten or more digits (`07700 900123`), or in the US layout (`(555) 123-4567`, `555-123-4567`).

    `phonenumbers`' validity knows only allocated ranges: the fictional ranges (Ofcom's 07700 900xxx, the US
    555 exchange), ranges newer than its metadata and mistyped numbers fail it, yet are the customer's number
    (or look like one to whoever reads the text), so masking takes them in these notations."""
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return False
    if len(phonenumbers.national_significant_number(number)) < 9:
        return False  # no customer country's mobile is shorter; `00491823` is a reference
    digits = digits_of(raw)
    if len(set(digits)) == 1:
        return False
    written = raw.lstrip("(")
    if written.startswith(("+", "00")):
        country = number.country_code or 0
        return phonenumbers.region_code_for_country_code(country) != phonenumbers.UNKNOWN_REGION
    if region == "US" and _NANP_NOTATION.fullmatch(raw):
        return True
    national = number.country_code == phonenumbers.country_code_for_region(region)
    return national and written.startswith("0") and len(digits) >= 10


def possible_phone(raw: str, number: phonenumbers.PhoneNumber, region: str) -> bool:
    """A number `phonenumbers` read with `Leniency.POSSIBLE` that masking takes as a phone number: one in a phone
    notation (`phone_notation`), or a valid one read in one of `LONG_NUMBER_REGIONS`, written with a country code
    or nine or more national digits. (Valid numbers of `PHONE_REGIONS` are found with `Leniency.VALID`, which also
    wants the trunk prefix where the region's numbers need it.)"""
    if region in LONG_NUMBER_REGIONS and phonenumbers.is_valid_number(number):
        international = raw.lstrip("(").startswith(("+", "00"))
        if international or len(phonenumbers.national_significant_number(number)) >= 9:
            return True
    return phone_notation(raw, number, region)


class RegionalPhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recogniser (numbers valid in one of `PHONE_REGIONS` by the `phonenumbers` library),
    skipping text with fewer than seven digits (no phone number is shorter; this saves most of its time) and
    dropping what `phonenumbers` accepts but the text says is something else: a money amount (`GBP 3500.00`,
    `12345678.90`), a date or a time (`15-04-2024 10:02`), a number a cue word marks as a reference or
    postcode (`policy number 884210937`), the US ZIP+4 shape (`94107-1234`). A second pass with
    `Leniency.POSSIBLE` adds numbers outside the ranges `phonenumbers` knows as allocated when their notation says
    phone (`possible_phone`: `+44 7700 900123`, `(555) 123-4567`), and Italian numbers (`LONG_NUMBER_REGIONS`).

    `phonenumbers` reads digit groups separated by single spaces as one candidate, so two numbers side by side
    (`07911 123456 07911 123457`) or a number before card digits are found by neither. Where it finds nothing in
    such a run, the run is cut at its spaces and the longest numbers that `phonenumbers` finds whole
    are taken, left to right; only numbers written with a trunk prefix or a country code (`07911 123456`,
    `+44 ...`), so that dates and sort codes in a run (`12 03 2024`) are not read as phone numbers."""

    _ZIP_PLUS_FOUR = regex.compile(r"\d{5}-\d{4}")
    _SPACED_DATE = regex.compile(r"\d{2} \d{2} \d{4}|\d{4} \d{2} \d{2}")
    _RUN = regex.compile(r"(?<![\w+])\+?\(?\d+\)?(?:[ \-./]\(?\d+\)?)+(?!\w)")
    _GROUP = regex.compile(r"\S+")  # the run's parts between spaces: `2024-11-03` stays whole

    def __init__(self) -> None:
        super().__init__(supported_regions=PHONE_REGIONS, name="RegionalPhoneRecognizer")

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if sum(char.isdigit() for char in text) < 7:
            return []
        results = [self._trimmed(text, r) for r in super().analyze(text, entities, cast(NlpArtifacts, nlp_artifacts))]
        results += self._possible(text, results)
        results += self._in_runs(text, results)
        return [result for result in results if self._plausible(text, result)]

    @staticmethod
    def _trimmed(text: str, result: RecognizerResult) -> RecognizerResult:
        """Without an opening bracket that is not closed inside the number (`(07911 123456)`)."""
        if text[result.start] == "(" and ")" not in text[result.start : result.end]:
            result.start += 1
        return result

    def _in_runs(self, text: str, found: list[RecognizerResult]) -> list[RecognizerResult]:
        extra = []
        for run in self._RUN.finditer(text):
            if any(r.start < run.end() and run.start() < r.end for r in found):
                continue
            parts = list(self._GROUP.finditer(text, run.start(), run.end()))
            digits = [0]  # digits[i]: the digits in parts[:i], each part counted once
            for part in parts:
                digits.append(digits[-1] + len(digits_of(part[0])))
            first = 0
            # A number starts where the run starts or where the number before it ends, never after digits that
            # belong to no number (`tracking 3321 0098 4412 77`).
            while first < len(parts) and (last := self._longest_number(text, parts, digits, first)) is not None:
                extra.append(RecognizerResult(self.supported_entities[0], parts[first].start(), parts[last].end(), 0.4))
                first = last + 1
        return extra

    def _longest_number(self, text: str, parts: list[regex.Match[str]], digits: list[int], first: int) -> int | None:
        """The last of `parts` of the longest phone number that starts at parts[first], if any: written with a
        trunk prefix or a country code, with 7 to 15 digits, and found whole by `phonenumbers`. `digits[i]` is
        the number of digits in parts[:i]. Only parts ending within 15 digits are tried (a part has a digit),
        so each start costs at most 15 tries, whatever the length of the run."""
        if not parts[first][0].lstrip("(").startswith(("0", "+")):
            return None
        longest = bisect.bisect_right(digits, digits[first] + 15) - 2  # the last part ending within 15 digits
        for last in range(longest, first - 1, -1):
            if digits[last + 1] - digits[first] < 7:
                break
            if self.found_whole(text[parts[first].start() : parts[last].end()]):
                return last
        return None

    @staticmethod
    def found_whole(number: str) -> bool:
        """`phonenumbers` finds all of `number` as one valid number of one of `PHONE_REGIONS`, or as a number masking
        takes among the possible ones (`possible_phone`)."""
        for region in PHONE_REGIONS:
            for match in phonenumbers.PhoneNumberMatcher(number, region, leniency=phonenumbers.Leniency.VALID):
                if match.start == 0 and match.end == len(number):
                    return True
        for region in _ALL_REGIONS:
            for match in phonenumbers.PhoneNumberMatcher(number, region, leniency=phonenumbers.Leniency.POSSIBLE):
                whole = match.start == 0 and match.end == len(number)
                if whole and possible_phone(match.raw_string, match.number, region):
                    return True
        return False

    def _possible(self, text: str, found: list[RecognizerResult]) -> list[RecognizerResult]:
        """Numbers `phonenumbers` does not know as allocated but that are phone numbers by their notation
        (`phone_notation`), and valid numbers of `LONG_NUMBER_REGIONS`, where nothing was found."""
        if not _NOTATION_HINT.search(text):
            return []
        extra: list[RecognizerResult] = []
        for region in _ALL_REGIONS:
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
                start, end = match.start, match.end
                if any(r.start < end and start < r.end for r in found + extra):
                    continue
                if possible_phone(match.raw_string, match.number, region):
                    extra.append(RecognizerResult(self.supported_entities[0], start, end, 0.4))
        return extra

    def _plausible(self, text: str, result: RecognizerResult) -> bool:
        number = text[result.start : result.end]
        if self._ZIP_PLUS_FOUR.fullmatch(number) or _AMOUNT.fullmatch(number) or contains_date(number):
            return False
        if self._SPACED_DATE.fullmatch(number) and looks_like_date(number):
            return False  # `03 04 2024`, even after `phone bill`
        if is_money(text, result.start, result.end) or regex.match(r"[.,:]\d", text[result.end : result.end + 2]):
            return False
        international = number.startswith(("+", "00"))
        return international or nearest_cue(text, result.start) != "not_pii"


class SortCodeRecognizer(FilteredPatternRecognizer):
    """UK sort codes: three pairs of digits joined by `-`, `.` or spaces (`20-45-67`, `40 11 62`, `20.45.67`),
    not part of a longer run of pairs. Pairs that also read as a date (`12-03-24`) are a sort code only with a
    sort-code cue before them (`sort code`, `s/c`, `sc`) or an account number right after; none after a reference
    cue (`reference 12-34-56`). Right after a sort-code cue, six digits are a sort code however they are written
    (`sort code 204567`, `s/c: 20/45/67`)."""

    PATTERN = (
        r"(?<![\w£$€.,:/+])(?<!(?<!\d)\d{1,2}[ .\-])"
        r"\d{2}(?P<sep>[-. \u00a0])\d{2}(?P=sep)\d{2}"
        r"(?![\w:/])(?![.,]\d)(?![-. \u00a0]\d{1,2}(?!\d))"
    )
    # Straight after a sort-code cue, six digits however written: `sort code 204567`, `s/c: 20/45/67`.
    CUED = (
        rf"(?<={_SORT_CUE}(?:\s?code)?(?:\s?(?:no|num|number|is))?\.?\s?[:#]?\s?)"
        r"\d{2}(?P<sep>[-./ ]?)\d{2}(?P=sep)\d{2}(?![\w/])(?![.,]\d)(?![-. ]\d)"
    )
    _ACCOUNT_AFTER = regex.compile(r"[ ,/]{1,3}\d{8}(?!\d)")

    def __init__(self) -> None:
        super().__init__(
            supported_entity=SORT_CODE,
            name="SortCodeRecognizer",
            patterns=[Pattern("UK sort code", self.PATTERN, 0.5), Pattern("cued", self.CUED, 0.6)],
        )

    def _plausible(self, text: str, result: RecognizerResult) -> bool:
        explanation = result.analysis_explanation
        if explanation is not None and explanation.pattern_name == "cued":
            return True
        cue = nearest_cue(text, result.start)
        if cue == "not_pii":
            return False  # `reference 12-34-56`
        pairs = [int(text[result.start + offset : result.start + offset + 2]) for offset in (0, 3, 6)]
        if not _day_month(pairs[0], pairs[1]):
            return True
        return cue == "sort" or bool(self._ACCOUNT_AFTER.match(text, result.end))


class AccountNumberRecognizer(FilteredPatternRecognizer):
    """UK account numbers. Straight after an account cue (`acc no. 123456`, `acc31926819`, `a/c 00451278`),
    6 to 10 digits; anywhere else, eight digits run together or in groups (`31926819`, `3192 6819`,
    `31 92 68 19`) unless they are a date, a money amount, or follow a reference cue (`ref`, `order`, `case`...).
    Longer and shorter numbers without a cue (`125000`, a 12-digit timestamp) are left alone."""

    PATTERNS = [
        Pattern(
            "cued",
            rf"(?<={_ACCOUNT_CUE}(?:\s?(?:no|num|number|nr)\.?)?\s?[.:#]?\s?)\d{{6,10}}(?!\d)(?![.,]\d)",
            0.6,
        ),
        Pattern("eight digits", r"(?<![\w.,£$€#/\-])\d{8}(?![\w/])(?![.,]\d)", 0.4),
        Pattern(
            "eight digits in groups",
            r"(?<![\w.,£$€#/])(?<!\d[ \-])\d{1,7}(?:[ \-]\d{1,7})+(?![\w/])(?![.,]\d)(?![ \-]\d)",
            0.4,
        ),
    ]

    def __init__(self) -> None:
        super().__init__(supported_entity=ACCOUNT_NUMBER, name="AccountNumberRecognizer", patterns=self.PATTERNS)

    def validate_result(self, pattern_text: str) -> bool | None:
        digits = len(digits_of(pattern_text))
        return None if 6 <= digits <= 10 else False

    def _plausible(self, text: str, result: RecognizerResult) -> bool:
        explanation = result.analysis_explanation
        if explanation is not None and explanation.pattern_name == "cued":
            return True
        number = text[result.start : result.end]
        if len(digits_of(number)) != 8 or looks_like_date(number) or is_money(text, result.start, result.end):
            return False
        return nearest_cue(text, result.start) != "not_pii"


_STREET_TYPES = (
    "street|st|road|rd|avenue|ave|lane|ln|close|way|drive|dr|court|ct|place|pl|crescent|cres|grove|gardens|gdns"
    "|terrace|square|sq|mews|boulevard|blvd"
)
# Words that do not name streets: "2 hours in the park" has a number and words, but is no address.
_NOT_A_STREET_NAME = (
    "the|a|an|in|on|at|to|of|for|and|or|my|your|our|their|his|her|this|that|by|from|with|near|into|is|was"
    "|times|hours|minutes|mins|days|weeks|months|years|pounds|quid|euros|dollars|more|other|same|one|way"
)
_NAME_WORD = rf"(?!(?:{_NOT_A_STREET_NAME})\b)[^\W\d_][\w'’.-]*"


class StreetAddressRecognizer(PatternRecognizer):
    """Street addresses with a house number, in the layouts of the customers' countries: `14 Elm Street`,
    `Flat 3, 27 Victoria Road`, `4/17 George St`, `1600 Pennsylvania Avenue NW` (number, one to three name
    words, a street type), `Hauptstraße 5`, `Prinsengracht 263` (a German or Dutch street word, number),
    `18 rue de la Paix`, `Calle Mayor 10`. A street without a number (`the branch on Main Street`), a town or a
    postcode is left alone: none of them finds a customer's door."""

    PATTERNS = [
        Pattern(
            "number, name, street type",
            rf"(?<![\w/])(?:(?:flat|apartment|apt|unit)\s+\d{{1,4}}[a-z]?,?\s+)?\d{{1,5}}[a-z]?(?:/\d{{1,5}}[a-z]?)?,?\s+"
            rf"(?:{_NAME_WORD}\s+){{1,3}}(?:{_STREET_TYPES})\b\.?(?:\s+(?:NW|NE|SW|SE)\b)?",
            0.5,
        ),
        Pattern(
            "German or Dutch street, number",
            r"(?<!\w)[^\W\d_][\w-]*(?:straße|strasse|str\.|weg|platz|allee|gasse|damm|straat|gracht|laan|plein|kade"
            r"|singel)\s+\d{1,4}[a-z]?(?!\w)",
            0.5,
        ),
        Pattern(
            "French street",
            r"(?<![\w/])\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|boulevard|bd|chemin|allée|impasse|quai)\s+"
            r"[^\d,.;:!?()\n]+?(?=\s*(?:[,.;:!?()\n]|\d|$))",
            0.5,
        ),
        Pattern(
            "Spanish street, number",
            r"(?<!\w)(?:calle|c/|avenida|avda\.?|plaza|paseo|camino)\s+[^\d,.;:!?()\n]{2,40}?\s*\d{1,4}(?!\w)",
            0.5,
        ),
    ]

    def __init__(self) -> None:
        super().__init__(supported_entity=STREET_ADDRESS, name="StreetAddressRecognizer", patterns=self.PATTERNS)


class UkPostcodeRecognizer(PatternRecognizer):
    """UK postcodes in the Royal Mail format, in any case, with or without the space (`SW1A 1AA`, `dn55 1pt`,
    `M11AE`): an outward code (one or two area letters, a district number, perhaps a letter) and an inward code (a
    digit and two letters from the 20 Royal Mail uses: no C, I, K, M, O, V). With a house number, a postcode finds
    a customer's door; the town before it is kept. Other countries' postcodes are plain numbers (`10115`), which
    no pattern tells from an amount or a reference, and are left alone."""

    PATTERN = (
        r"(?<![\w/£$€.-])(?:GIR ?0AA|[A-PR-UWYZ](?:\d[A-HJKPSTUW]?|\d\d|[A-HK-Y]\d[ABEHMNPRVWXY]?|[A-HK-Y]\d\d)"
        r" ?\d[ABD-HJLNP-UW-Z]{2})(?![\w/-])"
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity=UK_POSTCODE,
            name="UkPostcodeRecognizer",
            patterns=[Pattern("UK postcode", self.PATTERN, 0.5)],
        )


_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ORDINAL = r"(?:st|nd|rd|th)?"
_BIRTH_CUE = (
    r"(?<!\w)(?:d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday|b-?day|born(?:\s+on)?)"
    r"\s*(?:[:=\-]|is|was|'s)?\s*(?:is\s+|was\s+)?(?:on\s+)?(?:the\s+)?"
)


_NUMERIC_DATE = r"\d{1,2}[-./ ]\d{1,2}[-./ ](?:19|20)?\d{2}|(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2}"
_DAY_MONTH_YEAR = rf"\d{{1,2}}{_ORDINAL}\s+(?:of\s+)?{_MONTH},?\s+(?:19|20)?\d{{2}}"
_MONTH_DAY_YEAR = rf"{_MONTH}\s+\d{{1,2}}{_ORDINAL},?\s+(?:19|20)\d{{2}}"


class DateOfBirthRecognizer(PatternRecognizer):
    """A date of birth: a full date (day, month and year, in numbers or with the month's name) right after a cue
    that says it is one (`dob 01/02/1980`, `date of birth: 1 Feb 1980`, `born on 12th of March 1975`, `my birthday
    is 05-11-87`). Only the date is replaced; the cue stays, so QA still reads what was asked. Dates without such a
    cue (a payment's date, an expiry) are not personal data and are left alone, as is a year alone (`born in
    1980`)."""

    PATTERNS = [
        Pattern(
            "date of birth",
            rf"(?<={_BIRTH_CUE})(?:{_NUMERIC_DATE}|{_DAY_MONTH_YEAR}|{_MONTH_DAY_YEAR})(?![\w/.-]\d)(?!\w)",
            0.6,
        )
    ]

    def __init__(self) -> None:
        super().__init__(supported_entity=DATE_OF_BIRTH, name="DateOfBirthRecognizer", patterns=self.PATTERNS)


class SsnRecognizer(UsSsnRecognizer):
    """US social security numbers: three, two and four digits joined by dashes (`123-45-6789`) anywhere, and after
    an SSN cue (`ssn`, `social security number`) also with spaces, dots or none (`ssn 123 45 6789`,
    `SSN: 123456789`). Presidio's `UsSsnRecognizer` also takes any nine digits and the ZIP+4 shape (`94107-1234`)
    at a low score, which would mask references and postcodes here, and drops the sample numbers it knows
    (`123-45-6789`): a customer who types one means their own, so it is masked. Numbers the SSA never issues
    (area 000 or 666, a group or serial of zeros, one digit repeated) are left alone, as Presidio does."""

    PATTERNS = [
        Pattern("SSN with dashes", r"(?<![\w.,/-])\d{3}-\d{2}-\d{4}(?![\w/-])(?![.,]\d)", 0.5),
        Pattern(
            "SSN after a cue",
            r"(?<=(?<!\w)(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is|:|#)?\s*)"
            r"\d{3}(?P<sep>[ .]?)\d{2}(?P=sep)\d{4}(?![\w/-])(?![.,]\d)",
            0.6,
        ),
    ]

    def __init__(self) -> None:
        super().__init__(patterns=self.PATTERNS, supported_entity=US_SSN, name="SsnRecognizer")

    def invalidate_result(self, pattern_text: str) -> bool:
        digits = digits_of(pattern_text)
        return len(set(digits)) == 1 or digits[:3] in ("000", "666") or digits[3:5] == "00" or digits[5:] == "0000"
