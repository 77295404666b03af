"""A mail sink for the demo and the tests: an SMTP server (aiosmtpd) on loopback that delivers
nothing and keeps every message it accepts as one file in a directory.

    python -m ops.mailsink --host 127.0.0.1 --port 8025 --dir var/mail

Each message is `<UTC time>-<n>.eml`: the message as received, preceded by two headers with its
envelope (`X-Envelope-From`, `X-Envelope-To`), written to a temporary name and renamed, so that a
reader never sees half a message. `ops.services` starts it when the settings send mail to a
non-privileged port on this machine (the demo's 127.0.0.1:8025).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import itertools
import os
import signal
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

from aiosmtpd.smtp import SMTP


class FileSink:
    """aiosmtpd handler: every accepted message becomes a file in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        name = f"{stamp}-{os.getpid()}-{next(self._numbers):04d}.eml"
        envelope_headers = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content or b""
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(envelope_headers + content)
        temporary.rename(self.directory / name)
        return "250 Message accepted for delivery"


def messages(directory: Path) -> list[Path]:
    """The stored messages, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix == ".eml" and not p.name.startswith(".")
    )


def read(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def text_of(message: email.message.EmailMessage, subtype: str = "plain") -> str:
    """The text/<subtype> part of a message (multipart/alternative or not)."""
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def wait_for_mail(mail_dir: Path, known: set[Path], timeout: float = 60) -> list[Path]:
    """Stored messages that are not in `known`, waiting up to timeout for one."""
    deadline = time.monotonic() + timeout
    while True:
        new = [p for p in messages(mail_dir) if p not in known]
        if new or time.monotonic() > deadline:
            return new
        time.sleep(0.5)


async def serve(host: str, port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = FileSink(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="conveyor-mail-sink"), host=host, port=port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mail sink on {host}:{port}, messages in {directory}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.mailsink",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
