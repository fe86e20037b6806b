"""The one table of column names: for each field the check reads, the header spellings payroll exports use.

Headers match case-, space- and punctuation-insensitively (`Gross Pay (EUR)` = `gross_pay_eur`). A field is
never silently left at its default: a header the table does not know but that looks like a field the check reads
rejects the file (UnrecognisedColumns) until the employer says what it is with a column map, and the yes/no
fields accept only the values in YES and NO. The table in docs/app.md and the page's help are generated from FIELDS.

    python -m autoenroll.validation.columns docs/app.md   # rewrite docs/app.md's section after editing FIELDS
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from autoenroll.files import RejectedFile


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    required: bool
    spellings: tuple[str, ...]  # the first is the canonical name
    absent: str = ""  # what the check assumes when an optional field's column is not in the file
    yes_no: bool = False


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("employee_id", "Employee id", True,
          ("employee_id", "employee number", "employee no", "employee ref", "employee reference", "emp id",
           "emp no", "staff id", "staff number", "staff no", "payroll id", "payroll number", "payroll no",
           "works number", "works no")),
    Field("ppsn", "PPS number", True,
          ("ppsn", "pps", "pps number", "pps no", "ppsn number", "ppsn no", "personal public service number")),
    Field("first_name", "First name", True,
          ("first_name", "forename", "forenames", "first names", "given name", "given names", "christian name")),
    Field("last_name", "Last name", True, ("last_name", "surname", "family name")),
    Field("date_of_birth", "Date of birth", True, ("date_of_birth", "dob", "birth date", "birthday")),
    Field("employment_start", "Employment start date", True,
          ("employment_start", "employment start date", "start date", "start", "date started", "date joined",
           "joined", "joining date", "join date", "hire date", "date hired", "date of hire", "commencement date",
           "date of commencement")),
    Field("gross_pay", "Gross pay this period", True,
          ("gross_pay", "gross", "gross pay eur", "gross pay this period", "period gross", "gross this period",
           "gross earnings", "gross wage", "gross wages", "gross salary")),
    Field("pay_frequency", "Pay frequency", True,
          ("pay_frequency", "frequency", "pay period", "pay cycle", "payment frequency", "pay freq", "period type")),
    Field("email", "E-mail", False, ("email", "email address", "work email"),
          absent="no e-mail recorded"),
    Field("ytd_13_week_gross", "Gross pay over the last 13 weeks", False,
          ("ytd_13_week_gross", "13 week gross", "gross 13 weeks", "13 weeks gross", "thirteen week gross",
           "gross last 13 weeks", "last 13 weeks gross", "13 week pay", "ytd 13 weeks", "13 week gross ytd"),
          absent="only the annualised pay is used"),
    Field("in_pension", "Already in a pension through payroll", False,
          ("in_pension", "in pension scheme", "pension scheme", "pension scheme member",
           "pension member", "pension", "member of pension scheme", "occupational pension",
           "occupational pension member", "occ pension", "occ pension member", "prsa", "prsa member", "in prsa",
           "has pension", "existing pension"),
          absent="no one is treated as already in a pension", yes_no=True),
    Field("prsi_exempt", "Exempt from PRSI", False,
          ("prsi_exempt", "prsi exemption", "exempt from prsi", "prsi exempt flag", "prsi exempt yn"),
          absent="no one is treated as exempt from PRSI", yes_no=True),
    Field("director", "Company director", False,
          ("director", "company director", "is director", "director flag", "proprietary director"),
          absent="directors are known only from the employment type", yes_no=True),
    Field("employment_type", "Employment type", False,
          ("employment_type", "employee type", "worker type", "type of employment", "employment category",
           "employment status", "contract type"),
          absent="no one is treated as a director or self-employed from their type"),
)}
REQUIRED = tuple(f.name for f in FIELDS.values() if f.required)
YES = ("yes", "y", "true", "1")
NO = ("no", "n", "false", "0")
# employment_type values that exclude someone, matched like headers (`Self Employed` = `self-employed`)
EXCLUDED_TYPES = {"director": "company directors", "company director": "company directors",
                  "proprietary director": "company directors", "self-employed": "the self-employed"}
# Words that mean a header is probably a field the check reads, and which fields it could be.
LOOKALIKE: dict[str, tuple[str, ...]] = {
    "pension": ("in_pension",), "prsa": ("in_pension",), "scheme": ("in_pension",), "pps": ("ppsn",),
    "pay": ("gross_pay", "pay_frequency", "ytd_13_week_gross"), "gross": ("gross_pay", "ytd_13_week_gross"),
    "salary": ("gross_pay",), "wage": ("gross_pay",), "earning": ("gross_pay", "ytd_13_week_gross"),
    "13week": ("ytd_13_week_gross",), "thirteen": ("ytd_13_week_gross",), "ytd": ("ytd_13_week_gross",),
    "freq": ("pay_frequency",), "birth": ("date_of_birth",), "dob": ("date_of_birth",),
    "start": ("employment_start",), "hire": ("employment_start",), "joined": ("employment_start",),
    "prsi": ("prsi_exempt",), "exempt": ("prsi_exempt",), "director": ("director", "employment_type"),
}
IGNORE = "ignore"  # the column map's key for columns the employer says the check should not read
MAX_MAP_BYTES = 8192
MAX_OFFERED = 50  # unrecognised columns the 422 offers for mapping; a payroll extract has far fewer


@lru_cache(maxsize=4096)  # also used on employment_type cells, which repeat a handful of values
def key(header: str) -> str:
    """What a header is matched by: lower case, letters and digits only (`Gross Pay (EUR)` -> `grosspayeur`)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", header).casefold())


def _spellings() -> dict[str, str]:
    table: dict[str, str] = {}
    for f in FIELDS.values():
        for spelling in f.spellings:
            if key(spelling) in table:  # two fields, or the same one twice: the docs would mislead
                raise AssertionError(f"{spelling!r} reads as {table[key(spelling)]} already")
            table[key(spelling)] = f.name
    return table


SPELLINGS = _spellings()


def yes_no(value: str) -> bool | None:
    """True or False for a recognised yes/no (any case), None for anything else, a blank included."""
    text = value.strip().lower()
    return True if text in YES else False if text in NO else None


def _quote(names: list[str], most: int = 10) -> str:
    """Column names for a message, kept short: a hostile header can be megabytes or thousands of columns."""
    shown = ", ".join(f"'{_short(n)}'" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _short(name: str) -> str:
    return name if len(name) <= 80 else name[:77] + "..."


class ColumnProblem(RejectedFile):
    """The file's headers can't be read as the fields the check needs (always a 422: the employer can fix it)."""


class BadColumnMap(ColumnProblem):
    """A column map that cannot be used: not JSON, an unknown field, a column the file does not have."""


class UnrecognisedColumns(ColumnProblem):
    """Headers the table does not know that the employer must place: they look like fields the check reads, or
    required fields are missing and these columns might be them."""

    def __init__(self, columns: dict[str, tuple[str, ...]], message: str | None = None) -> None:
        self.columns = dict(list(columns.items())[:MAX_OFFERED])
        fields = dict.fromkeys(f for fs in columns.values() for f in fs)
        shown = [f"'{_short(c)}' (could be {' or '.join(fs)})" for c, fs in list(columns.items())[:10]]
        more = f" and {len(columns) - 10} more" if len(columns) > 10 else ""
        super().__init__(message or
            f"unrecognised column{'s' if len(columns) > 1 else ''} " + "; ".join(shown) + more
            + ": the check reads these fields only from the accepted names ("
            + "; ".join(f"{f}: {', '.join(FIELDS[f].spellings)}" for f in fields)
            + "). Rename the column, or send a column map saying which field it is or that it is to be ignored")

    def detail(self) -> dict[str, Any]:
        """For the API's 422 body: what the page needs to offer the mapping."""
        return {"unrecognised_columns": [{"column": c, "could_be": list(fs),
                                          "accepted": {f: list(FIELDS[f].spellings) for f in fs}}
                                         for c, fs in self.columns.items()],
                "fields": list(FIELDS)}


@dataclass(frozen=True)
class ColumnMap:
    """The employer's explicit mapping: field -> header in the file, and headers to ignore."""

    fields: Mapping[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()


def column_map(raw: str | None) -> ColumnMap:
    """Parse `{"in_pension": "Scheme Flag", "ignore": ["Country of Birth"]}`; BadColumnMap names what is wrong."""
    if raw is None or not raw.strip():
        return ColumnMap()
    if len(raw) > MAX_MAP_BYTES:
        raise BadColumnMap(f"the column map is longer than {MAX_MAP_BYTES} characters")
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadColumnMap('the column map is not JSON: send an object like {"in_pension": "Scheme Flag"}') \
            from None
    if not isinstance(body, dict):
        raise BadColumnMap('the column map must be a JSON object like {"in_pension": "Scheme Flag"}')
    unknown = [k for k in body if k not in FIELDS and k != IGNORE]
    if unknown:
        raise BadColumnMap(f"the column map names fields the check does not read: {_quote(unknown)}; "
                           f"the fields are {', '.join(FIELDS)} (and {IGNORE!r} for columns to leave out)")
    ignore = body.pop(IGNORE, [])
    if not isinstance(ignore, list) or not all(isinstance(i, str) for i in ignore):
        raise BadColumnMap(f"the column map's {IGNORE!r} must be a list of column names")
    bad = [k for k, v in body.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise BadColumnMap(f"the column map must give each field a column name: {_quote(bad)} do not")
    fields = {k: v.strip() for k, v in body.items()}
    sources = [*fields.values(), *(i.strip() for i in ignore)]
    twice = sorted({s for s in sources if sources.count(s) > 1})
    if twice:
        raise BadColumnMap(f"the column map uses a column for more than one thing: {_quote(twice)}")
    return ColumnMap(fields, tuple(i.strip() for i in ignore))


@dataclass(frozen=True)
class Resolved:
    """Which field each header of the file feeds (None: not read), and where each field came from."""

    fields: list[str | None]
    sources: dict[str, str]  # field -> the header in the file that fed it
    mapped: tuple[str, ...]  # the fields the column map decided
    warnings: list[str]


def _lookalike(header: str) -> tuple[str, ...]:
    k = key(header)
    return tuple(dict.fromkeys(f for word, fs in LOOKALIKE.items() if word in k for f in fs))


def resolve(headers: list[str], mapping: ColumnMap | None = None) -> Resolved:
    mapping = mapping or ColumnMap()
    names = [h.strip() for h in headers]
    missing_sources = [s for s in (*mapping.fields.values(), *mapping.ignore) if s not in names]
    if missing_sources:
        raise BadColumnMap(f"the column map names columns the file does not have: {_quote(missing_sources)}; "
                           f"its columns are {_quote([n for n in names if n])}")
    by_source = {s: f for f, s in mapping.fields.items()}
    fields: list[str | None] = []
    unread: list[str] = []
    unknown: dict[str, tuple[str, ...]] = {}
    overridden: list[str] = []
    for name in names:
        target = by_source.get(name) or (None if name in mapping.ignore else SPELLINGS.get(key(name)))
        if target is not None and target in mapping.fields and name not in by_source:
            overridden.append(f"'{_short(name)}' (the column map reads {target} from "
                              f"'{_short(mapping.fields[target])}')")
            target = None
        elif target is None and name and name not in mapping.ignore:
            if looks := _lookalike(name):
                unknown[name] = looks
            else:
                unread.append(name)
        fields.append(target)
    if unknown:
        raise UnrecognisedColumns(unknown)
    fed: dict[str, list[str]] = {}
    for name, target in zip(names, fields, strict=True):
        if target:
            fed.setdefault(target, []).append(name)
    clashes = {f: hs for f, hs in fed.items() if len(hs) > 1}
    if clashes:
        raise ColumnProblem("more than one column reads as the same field: " + "; ".join(
            f"{_quote(hs)} are all {f}" for f, hs in clashes.items()) + ". Remove one, or send a column map "
            "saying which to read")
    missing = tuple(f for f in REQUIRED if f not in fed)
    if missing:
        message = (f"missing required columns: {', '.join(missing)} (accepted names: "
                   + "; ".join(f"{f}: {', '.join(FIELDS[f].spellings)}" for f in missing) + ")")
        if unread:  # one of them may be a missing field under a name unlike any in the table
            raise UnrecognisedColumns(dict.fromkeys(unread, missing), f"{message}. The check does not read the "
                                      f"columns {_quote(unread)}: if one is a missing field, send a column map "
                                      "saying so")
        raise ColumnProblem(message)
    warnings = [f"ignored extra columns: {', '.join(map(_short, unread[:50]))}"
                f"{f' and {len(unread) - 50} more' if len(unread) > 50 else ''}"] if unread else []
    if overridden:
        warnings.append(f"not read, because of the column map: {', '.join(overridden)}")
    if mapping.ignore:
        warnings.append(f"not read, as the column map asked: {_quote(list(mapping.ignore), 50)}")
    return Resolved(fields, {f: hs[0] for f, hs in fed.items()}, tuple(mapping.fields), warnings)


def markdown() -> str:
    """docs/app.md's table (between the `columns:` markers)."""
    lines = ["| field | accepted column names | if the column is missing |", "|---|---|---|"]
    for f in FIELDS.values():
        absent = "the file is rejected (required)" if f.required else f.absent
        kind = " (yes/no)" if f.yes_no else ""
        lines.append(f"| `{f.name}`: {f.label}{kind} | {', '.join(f'`{s}`' for s in f.spellings[1:])} | "
                     f"{absent} |")
    words = ", ".join(f"`{w}`" for w in LOOKALIKE)
    types = ", ".join(f"`{t}`" for t in EXCLUDED_TYPES)
    return "\n".join([*lines, "", f"Yes/no columns accept only {'/'.join(YES)} for yes and {'/'.join(NO)} for "
                      "no, in any case; any other value, a blank included, is a row error naming the row, the "
                      f"column and the value. An `employment_type` of {types} excludes the employee. A column "
                      f"not in the table whose name (as letters and digits) contains {words} rejects the upload "
                      "(422) until a column map says which field it is or that it is to be ignored; other extra "
                      "columns are ignored with a warning."])


def html_help() -> str:
    """The page's list of accepted column names, from the same table."""
    rows = "".join(f"<tr><td>{escape(f.label)}{' (yes/no)' if f.yes_no else ''}"
                   f"{'' if f.required else ' <i>optional</i>'}</td>"
                   f"<td>{escape(', '.join(f.spellings))}</td></tr>" for f in FIELDS.values())
    return (f"<details id='columns-help'><summary>Column names the check reads</summary><table>"
            f"<tr><th>Field</th><th>Accepted column names (case, spaces and punctuation don't matter)</th></tr>"
            f"{rows}</table><p>Yes/no columns: {escape('/'.join(YES))} or {escape('/'.join(NO))}."
            f" Employment types that exclude: {escape(', '.join(EXCLUDED_TYPES))}.</p></details>")


START, END = "<!-- columns:start (generated: python -m autoenroll.validation.columns docs/app.md) -->", \
    "<!-- columns:end -->"


def with_readme_section(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{markdown()}\n{END}{after}"


if __name__ == "__main__":
    path = Path(sys.argv[1])
    path.write_text(with_readme_section(path.read_text()))
