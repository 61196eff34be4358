"""`manage.py logs`: the newest request logs as a table (the original `btvep logs`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from rich.table import Table
from rich.text import Text

from endpoint.core.commands import OperatorCommand
from endpoint.core.english_dates import parse_english_moment
from endpoint.core.errors import OperatorError
from keys.services import find_key
from logs.queries import DEFAULT_LINES, filter_requests, first_prompt

TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
PROMPT_WIDTH = 40


def parse_moment(text: str, option: str) -> tuple[datetime, bool]:
    """``text`` as an aware datetime (naive input is in TIME_ZONE, UTC by
    default), and whether it named a whole day rather than a moment. English
    ("yesterday", "1 hour ago") counts back from now, as `key -v` reads it."""
    for fmt in TIME_FORMATS:
        try:
            moment = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return timezone.make_aware(moment), fmt == TIME_FORMATS[0]
    # Only words go to dateparser: it would read a mistyped date ("2030-13-01")
    # as another day rather than refuse it.
    has_words = any(c.isalpha() for c in text)
    moment = parse_english_moment(text, base=timezone.now(), prefer="past") if has_words else None
    if moment is None:
        raise OperatorError(
            f"{option} {text!r} is not a time: use one of {', '.join(TIME_FORMATS)} or English like '1 hour ago'"
        )
    return moment, False


def parse_lines(text: str) -> int:
    try:
        lines = int(text)
    except ValueError:
        lines = 0
    if lines < 1:
        raise OperatorError(f"-l/--lines must be a whole number of at least 1, got {text!r}")
    return lines


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Command(OperatorCommand):
    help = "Show the newest request logs, optionally filtered by key, responding miner and time."

    def add_arguments(self, parser):
        parser.add_argument("-k", "--key", help="Only this API key's requests (its id, prefix or full value).")
        parser.add_argument(
            "-r", "--responder-hotkey", help="Only requests a miner with this hotkey answered successfully."
        )
        parser.add_argument(
            "-i", "--request-id", help="Only the call an answer's x-request-id names, or a client's own request id."
        )
        parser.add_argument("-l", "--lines", default=str(DEFAULT_LINES), help="How many rows at most (default 100).")
        parser.add_argument(
            "-s",
            "--start",
            help="From this time on: YYYY-MM-DD, or with HH:MM:SS after T or a space, or English ('yesterday').",
        )
        parser.add_argument(
            "-e", "--end", help="Up to this time ('1 hour ago' works too); a date alone includes that whole day."
        )

    def handle(self, *args, key, responder_hotkey, request_id, lines, start, end, **options):
        start_at = parse_moment(start, "-s/--start")[0] if start else None
        end_at = None
        if end:
            end_at, whole_day = parse_moment(end, "-e/--end")
            if whole_day:
                end_at += timedelta(days=1)
        requests = filter_requests(
            key=find_key(key) if key else None,
            hotkey=responder_hotkey,
            start=start_at,
            end=end_at,
            request_id=request_id,
            lines=parse_lines(lines),
        )
        self.print_requests(list(requests))

    def print_requests(self, requests) -> None:
        if not requests:
            self.stdout.write("No requests match.")
            return
        table = Table("time", "route", "status", "error", "key", "strategy", "credits", "ms", "responders", "prompt")
        for request in requests:
            table.add_row(
                *(
                    Text(str(cell))
                    for cell in (
                        timezone.localtime(request.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                        request.route,
                        request.status,
                        request.api_error,
                        request.key.prefix if request.key else "",
                        request.strategy,
                        request.credits_charged,
                        round(request.elapsed_ms),
                        "\n".join(f"{r.uid}/{r.hotkey}" for r in request.responders),
                        shorten(first_prompt(request.messages), PROMPT_WIDTH),
                    )
                )
            )
        self.console.print(table)
