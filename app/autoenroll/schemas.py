"""Every request body, query string and header value the app reads, as a typed model checked at the
edge: a wrong type, a missing field, a value out of bounds or a control character is a 400 that
names the field, before any handler or database sees it."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from autoenroll.errors import BadRequest

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _printable(value: str) -> str:
    # NUL can't be stored in PostgreSQL text; other control characters have no place in a name.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address like name@example.ie")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(str.strip), AfterValidator(_printable)]
Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_printable), AfterValidator(_email)]
Password = Annotated[str, Field(min_length=12, max_length=1024), AfterValidator(_printable)]


class Body(BaseModel):
    # strict: a number is not a string, a list is not an e-mail; unknown fields are a mistake worth naming
    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)


class SignUp(Body):
    company: Name
    full_name: Name
    email: Email
    password: Password


class SignIn(Body):
    email: Annotated[str, Field(min_length=1, max_length=254), AfterValidator(_printable)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class TenantUpdate(Body):
    name: Name


class Page(BaseModel):
    """`?limit=&offset=`: integers; a limit above the page size is read as the page size."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=1_000_000)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


class Presign(Body):
    size_bytes: int = Field(ge=1)


Model = TypeVar("Model", bound=BaseModel)


def _where(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def parse_as(model: type[Model], data: Any, *, what: str = "body") -> Model:
    """`data` as `model`, or BadRequest naming the first field that is wrong and how."""
    if what == "body" and not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = _where(first)
        message = first["msg"].removeprefix("Value error, ")
        raise BadRequest(f"{field}: {message}", field=field,
                         extra={"fields": {_where(e): e["msg"].removeprefix("Value error, ")
                                           for e in exc.errors(include_url=False, include_input=False)}}) from None


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\"]")


def filename(raw: str | None) -> str:
    """The client's file name as metadata: no path, no control characters or quotes, at most 255 characters.
    API and page both use this, so the name stored is the name shown."""
    name = _UNSAFE_NAME.sub("_", (raw or "").strip()).strip(" .")
    return name[:255] or "upload"


def ppsn_path(raw: str) -> str:
    """The PPSN in `/api/employees/{ppsn}`: as stored (at most 20 characters, printable), so a PPSN the
    file spelled wrongly can still be erased."""
    value = raw.strip()
    if not 1 <= len(value) <= 20 or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise BadRequest("ppsn: must be 1 to 20 printable characters", field="ppsn")
    return value
