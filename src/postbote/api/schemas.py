"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Optional, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SendRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", json_schema_extra={"examples": [
        {"from": "ACME HR <hr@acme.test>", "to": ["anna@beispiel.test"], "subject": "Ihr erster Arbeitstag",
         "text": "Willkommen!", "html": "<p>Willkommen!</p>"}]})

    sender: str = Field(alias="from", description="From address, e.g. 'ACME HR <hr@acme.com>'.")
    to: list[str] = Field(default_factory=list, max_length=1000, description="Recipients, each shown in To: of their own copy "
                          "(or of the one shared copy, with shared).")
    cc: list[str] = Field(default_factory=list, max_length=1000,
                          description="Copy recipients; shown in Cc: only with shared, else each gets a copy of their own.")
    bcc: list[str] = Field(default_factory=list, max_length=1000, description="Blind copies: never in any header.")
    shared: bool = Field(False, description="One copy for all, with To: and Cc: as given, so that recipients see "
                                            "each other. Default: one copy per recipient, each with only its own address in To:.")
    subject: str
    text: str = Field("", description="Plain-text body.")
    html: Optional[str] = Field(None, description="HTML body, sent as multipart/alternative.")
    reply_to: Optional[str] = None

    @model_validator(mode="after")
    def _someone(self) -> "SendRequest":
        if not (self.to or self.cc or self.bcc):
            raise ValueError("give at least one recipient in to, cc or bcc")
        return self


class AddressCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"addresses": ["anna@beispiel.test"]}]})

    addresses: list[str] = Field(min_length=1, max_length=10_000)


class SuppressionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"address": "lea@beispiel.test", "reason": "unsubscribed", "detail": "asked by phone"}]})

    address: str = Field(max_length=1000, description="The address, e.g. lea@kunde.example (a name beside it is dropped).")
    reason: str = "manual"
    detail: Optional[str] = Field(None, max_length=2000)


class DomainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"domain": "acme.test"}]})

    domain: str = Field(description="Your company's domain, e.g. acme.com.")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    helpful: bool
    lang: str = Field("en", description="The language of the text that was rated: de, en or es.")
    message_id: Optional[str] = Field(None, description="The message the explanation was shown for.")
    comment: Optional[str] = Field(None, max_length=2000)


class RecipientState(BaseModel):
    address: str
    state: str


class SenderUsed(BaseModel):
    used: str = Field(description="The From the message carries.")
    requested: str = Field(description="The From that was asked for.")
    note: Optional[str] = Field(None, description="Why they differ (domain not verified …), else null.")


class AddressResult(BaseModel):
    address: str
    ok: bool
    normalized: Optional[str]
    reason: Optional[str] = Field(None, description="A stable code; null when ok.")
    message: Optional[str] = None
    hint: Optional[str] = None
    suggestion: Optional[str] = Field(None, description="The address probably meant; never applied by itself.")


class SendResponse(BaseModel):
    id: str
    message_id_header: str
    recipients: list[RecipientState]
    sender: SenderUsed
    refused: list[AddressResult] = Field(description="Recipients that did not enter the queue, and why.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each message is checked on its own, so one malformed message is refused alone, not the batch.
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=10_000, description="Up to BATCH_MAX_MESSAGES messages, "
                                           "each the body of a POST /v1/messages.")


class BatchItem(BaseModel):
    index: int = Field(description="Position of the message in the request.")
    status: int = Field(description="202 accepted, else the status POST /v1/messages would have answered.")
    message: Optional[SendResponse] = None
    error: Optional["ErrorBody"] = None


class BatchResponse(BaseModel):
    accepted: int
    refused: int
    results: list[BatchItem] = Field(description="One per message, in the order given.")


class ErrorBody(BaseModel):
    code: str
    message: str
    hint: str
    request_id: str = Field("", description="The request's id, also in the X-Request-Id header; the log names it.")


class ErrorResponse(BaseModel):
    error: ErrorBody


BatchItem.model_rebuild()
