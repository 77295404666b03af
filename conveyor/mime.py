"""A mail as SMTP servers take it: bodies in quoted-printable (lines of at most 76 characters;
servers refuse lines over 1,000, RFC 5321, and mostly-ASCII text stays about its own size where
base64 adds a third), and at most MAIL_MAX bytes. Plain Python (the email package)."""

from __future__ import annotations

from email import charset as email_charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

MAIL_MAX = 100_000  # bytes of a whole mail, as sent
ADDRESSES_MAX = 100  # addresses a header lists (the rest: the envelope only)
HEADERS = 12_000  # bytes for a mail's headers: ADDRESSES_MAX addresses and the rest
UTF8_QP = email_charset.Charset("utf-8")
UTF8_QP.body_encoding = email_charset.QP
CUT_NOTE = "\n\n… (cut here: the mail would exceed 100 kB; the build's page has it all)\n"


def _text_part(text: str, subtype: str) -> MIMEText:
    return MIMEText(text, subtype, UTF8_QP)


def _size(text: str, html_body: str | None) -> int:
    """An upper bound of the encoded size: quoted-printable adds a few % to mostly-ASCII text
    (soft line breaks; =XX for the rest); HEADERS for the headers."""
    raw = len(text.encode()) + len(html_body.encode() if html_body else b"")
    return int(1.1 * raw) + HEADERS


def fit(text: str, html_body: str | None, limit: int = MAIL_MAX) -> tuple[str, str | None]:
    """The bodies of a mail that stays within `limit` bytes as sent: both; else the plain text
    alone; else its beginning and a line that says where the rest is."""
    if _size(text, html_body) <= limit:
        return text, html_body
    if _size(text, None) <= limit:
        return text, None
    keep = (limit - HEADERS) * 10 // 11 - 200
    head = text.encode()[:keep].decode("utf-8", "ignore").rsplit("\n", 1)[0]
    return head + CUT_NOTE, None


def mime_message(text: str, html_body: str | None, subtype: str = "plain") -> Message:
    """A mail's body: multipart/alternative (text, HTML) or text alone, quoted-printable, at
    most MAIL_MAX bytes (fit); the caller adds the headers."""
    text, html_body = fit(text, html_body)
    if not html_body:
        return _text_part(text, subtype)
    m = MIMEMultipart("alternative")
    m.attach(_text_part(text, "plain"))
    m.attach(_text_part(html_body, "html"))
    return m


def address_header(addresses: list[str]) -> str:
    """A To or Cc header's value: the addresses, folded (one line of a thousand is longer than
    SMTP allows, and Message.as_string folds nothing); more than ADDRESSES_MAX: a group that
    says how many (each still gets the mail: the envelope names them all)."""
    if len(addresses) > ADDRESSES_MAX:
        return f"{len(addresses)} authors of the changes:;"
    return ",\n ".join(addresses)
