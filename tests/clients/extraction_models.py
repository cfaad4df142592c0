"""The pydantic models extraction scripts hand to client libraries: nested objects, lists, enums, Literal,
dates, constrained ints (and EmailStr when email-validator is installed). Strings and lists are bounded so
the tiny model, whose weights are random, ends its answer well inside the token budget: each test asserts
the request finished by `stop`, never what the model said."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

Short = Annotated[str, Field(max_length=6)]

MAX_TOKENS = 1000
"""The budget of an answer. Every string, list and number here is bounded, and so is the whitespace between
tokens (a newline and at most 20 spaces), so an answer is too; but the tiny model's random weights sample that
whitespace freely at temperature 0.7: Person's forced tool call took 110-300 tokens, and at a budget of 400
about one in 15 ran out. Its prompt is 960 tokens; the clients' server has a context of 2048."""


class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: Short
    zip_code: Annotated[int, Field(ge=1000, le=99999)]


class Person(BaseModel):
    """Nested object, enum, Literal, date, constrained int and a bounded list."""

    model_config = ConfigDict(extra="forbid")
    name: Short
    age: Annotated[int, Field(ge=0, le=120)]
    kind: Literal["customer", "vendor"]
    favourite: Color
    born: datetime.date
    address: Address
    tags: Annotated[list[Short], Field(max_length=2)]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Short
    count: Annotated[int, Field(ge=0, le=9)]


class Link(BaseModel):
    """HttpUrl is a string with format "uri" and a length range in the schema."""

    model_config = ConfigDict(extra="forbid")
    title: Short
    url: HttpUrl


class Basket(BaseModel):
    """A list of nested objects at the top level's only property."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[Item], Field(max_length=3)]


try:
    import email_validator  # noqa: F401
    from pydantic import EmailStr
except ImportError:  # pragma: no cover - email-validator is in the test extra
    EmailStr = None  # type: ignore[assignment,misc]

HAS_EMAIL_VALIDATOR = EmailStr is not None

if HAS_EMAIL_VALIDATOR:

    class Contact(BaseModel):
        """EmailStr is a string with format "email" in the schema; the grammar must produce an address
        email-validator accepts."""

        model_config = ConfigDict(extra="forbid")
        name: Short
        email: EmailStr
