"""Request and response models of the HTTP service (pydantic only: importable without fastapi)."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

MAX_K = 10_000
MAX_HISTORY = 10_000
MAX_FACTS = 100
MAX_USERS = 1_000  # ids per GET /users

#: a raw id in a JSON body: a string, or a number that `jnskr.api` would read as ``str(number)``
#: (no booleans, no NaN or infinities)
RawId = Union[StrictStr, StrictInt, Annotated[StrictFloat, AllowInfNan(False)]]


class Fact(BaseModel):
    relation: str
    entity: str = Field(description="raw entity id")
    entity_name: str | None = Field(None, description="name when the dataset has one (item title for items)")
    alpha: float = Field(description="attention weight of the fact in q_v")
    contribution: float = Field(description="alpha * h.(p_u * x_t)")


class Explanation(BaseModel):
    score: float
    base: float = Field(description="h.(p_u * e_v)")
    kg: float = Field(description="sum of all fact contributions; score = base + kg")
    n_facts: int
    facts: list[Fact]
    rest: float = Field(description="sum of the contributions of the facts not listed")


class Item(BaseModel):
    rank: int
    item: str
    score: float
    name: str | None = None
    explanation: Explanation | None = None


class Recommendations(BaseModel):
    user: str | None
    k: int
    fallback: str | None = None
    explained: int | None = Field(None, description="with explain: how many of the first items carry an explanation "
                                                    "(at most 100)")
    items: list[Item]


class Similar(BaseModel):
    item: str
    k: int
    similarity: str
    items: list[Item]


class Error(BaseModel):
    error: str


class History(BaseModel):
    model_config = ConfigDict(extra="forbid")
    history: list[RawId] = Field(..., min_length=1, max_length=MAX_HISTORY,
                                 description="raw item ids the user liked: strings, or numbers that stand for "
                                             "the id Python's str() writes (289 -> \"289\")")
    k: int = Field(20, ge=1, le=MAX_K)
    explain: bool = False
    facts: int = Field(5, ge=1, le=MAX_FACTS)
    exclude_history: bool = True


class Users(BaseModel):
    prefix: str
    users: list[str]
    more: bool = Field(description="more users start with the prefix")


class HistoryItem(BaseModel):
    item: str
    name: str | None = None


class UserHistory(BaseModel):
    user: str
    n_items: int = Field(description="the user's training items, all of them")
    items: list[HistoryItem] = Field(description="the first `limit` of them")
