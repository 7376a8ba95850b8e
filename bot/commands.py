"""The `/review` command language, parsed once for every platform.

`parse(text)` reads what Slack and the console send; `parse_options(verb, options)` reads Discord's
typed options. Both return a Command or a UsageError whose message is one sentence for the user.
Nothing here raises on user input.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, available_timezones

import idna

from bot.model import QuietHours

MAX_LINK = 2000
MAX_NOTE = 500
MAX_RESPONSE = 1000
MAX_NAME = 80
MAX_TOPICS = 10
MAX_TOPIC_LEN = 32
MAX_PAUSE_DAYS = 365
MAX_REVIEWERS = 3
_MAX_ID_DIGITS = 9

_TOPIC = re.compile(r"[a-z0-9][a-z0-9_+.-]*")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_REVIEWERS = re.compile(r"x(\d{1,9})", re.IGNORECASE)
_REVIEWERS_RANGE = f"Ask for 1 to {MAX_REVIEWERS} reviewers, e.g. x2 after the topics."
# Bidi overrides and isolates can make a note read differently from what it is.
_BIDI = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
)


@dataclass(frozen=True, slots=True)
class UsageError:
    message: str


@dataclass(frozen=True, slots=True)
class Ask:
    link: str
    topics: tuple[str, ...]
    note: str = ""
    local: bool = False
    reviewers: int = 1  # `x2`: how many reviewers the requester wants
    note_cut: bool = False  # the note was longer than MAX_NOTE (the reply says so)


@dataclass(frozen=True, slots=True)
class Link:
    code: str | None = None  # None: give me a code; else: join me to the code's owner


@dataclass(frozen=True, slots=True)
class Unlink:
    pass


@dataclass(frozen=True, slots=True)
class VolunteerFor:
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unvolunteer:
    topics: tuple[str, ...] = ()  # empty: stop volunteering altogether


@dataclass(frozen=True, slots=True)
class Pause:
    days: int


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class ListOpen:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Mine:
    pass


@dataclass(frozen=True, slots=True)
class Claim:
    request_id: int


@dataclass(frozen=True, slots=True)
class Release:
    request_id: int


@dataclass(frozen=True, slots=True)
class Cancel:
    request_id: int


@dataclass(frozen=True, slots=True)
class Reopen:
    request_id: int


@dataclass(frozen=True, slots=True)
class Snooze:
    """ "Still on it": the claimer asks not to be nudged for a while."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Done:
    request_id: int
    response: str = ""


@dataclass(frozen=True, slots=True)
class Setup:
    timezone: str | None = None
    reminder_time: str | None = None
    share: bool | None = None
    recognition: bool | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    pass


@dataclass(frozen=True, slots=True)
class Quiet:
    """Quiet hours: no notifications between `start` and `end` in `timezone`; None turns off."""

    hours: QuietHours | None


@dataclass(frozen=True, slots=True)
class Renotify:
    """`nudge <id>`: the requester asks for the next volunteers to hear about it."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Close:
    """`close <id> enough`: the requester got enough feedback."""

    request_id: int


@dataclass(frozen=True, slots=True)
class ForgetMe:
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class ExportMe:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


Command = (
    Ask
    | VolunteerFor
    | Unvolunteer
    | Pause
    | Resume
    | ListOpen
    | Mine
    | Claim
    | Release
    | Cancel
    | Done
    | Reopen
    | Snooze
    | Setup
    | Link
    | Unlink
    | Stats
    | Quiet
    | Renotify
    | Close
    | ForgetMe
    | ExportMe
    | Help
)
_BY_ID: dict[str, type[Claim | Release | Cancel | Reopen | Snooze]] = {
    "claim": Claim,
    "release": Release,
    "cancel": Cancel,
    "reopen": Reopen,
    "snooze": Snooze,
}
_LOCAL_WORDS = ("local", "!local")
_KEYED_OPTIONS = ("tz", "time", "share", "recognition")  # options that become key=value words
# Schemes with no "//" that must still be read (and refused) as links, not as unknown verbs.
_DANGEROUS_SCHEMES = ("javascript:", "data:", "file:", "vbscript:", "mailto:", "blob:", "about:")
# Dot-separated labels, none empty, none starting or ending with "-" (IPv4 matches too).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")
# A link without its scheme, as people paste it: example.com/draft, docs.google.com/d/1.
_BARE_LINK = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}(/\S*)?", re.IGNORECASE)
_NO_LINK = "Add a link to what you want reviewed, e.g. /review https://example.com/draft."
_OWN_COMPUTER = (
    "That link points to your own computer ({host}), which no one else can open: share a link "
    "others can reach."
)
VERBS = (
    "ask",
    "volunteer",
    "unvolunteer",
    "pause",
    "resume",
    "list",
    "mine",
    "claim",
    "release",
    "cancel",
    "done",
    "reopen",
    "snooze",
    "setup",
    "link",
    "unlink",
    "stats",
    "quiet",
    "nudge",
    "close",
    "forget-me",
    "export-me",
    "help",
)


def clean_text(text: str, limit: int) -> str:
    """Strip control characters and bidi overrides, fold whitespace, and cut to `limit`."""
    text = text.translate(_BIDI)
    # Printable ASCII (most names and notes) has no control, format or separator character:
    # skip the walk through every character's category.
    if not (text.isascii() and text.isprintable()):
        text = "".join(
            " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
            for c in text
            # Invisible format characters (bidi marks, zero-width space) can disguise text; the
            # zero-width joiner stays because emoji sequences need it.
            if unicodedata.category(c) != "Cf" or c == "\u200d"
        )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spaced_or_invisible(raw: str) -> bool:
    if raw.isascii():  # ASCII has no format characters; its controls are what is not printable
        return " " in raw or not raw.isprintable()
    return any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in raw)


def parse_link(raw: str) -> str | UsageError:
    """Validate a review link and return it with its host in punycode (homographs stay visible)."""
    if not raw:
        return UsageError(_NO_LINK)
    if raw != raw.strip():
        return UsageError("The link must not start or end with spaces.")
    if _spaced_or_invisible(raw) or "\\" in raw:
        return UsageError("The link contains spaces, backslashes or invisible characters.")
    if len(raw) > MAX_LINK:
        return UsageError(f"That link is {len(raw)} characters long; the limit is {MAX_LINK}.")
    try:
        parts = urlsplit(raw)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return UsageError("That link is not a valid URL.")
    if parts.scheme.lower() not in ("http", "https"):
        return UsageError("Only http:// and https:// links can be shared for review.")
    if "@" in parts.netloc:
        return UsageError("Links with a user name or password before the host are not accepted.")
    if not host:
        return UsageError("That link has no host name.")
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return UsageError("That link's bracketed host is not an IPv6 address.")
        netloc = f"[{host}]"
    else:
        try:
            # IDNA 2008 with UTS 46 mapping, as browsers resolve it (the stdlib codec is IDNA
            # 2003). Plain ASCII hosts (most links) need only lower case and the check below.
            plain = host.isascii() and "xn--" not in host
            netloc = host.lower() if plain else idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return UsageError("That link's host name is not valid.")
    if "[" not in netloc and not _HOST.fullmatch(netloc):
        return UsageError("That link's host name is not valid.")
    if _on_own_computer(netloc.strip("[]")):
        return UsageError(_OWN_COMPUTER.format(host=netloc))
    if port is not None:
        netloc = f"{netloc}:{port}"
    link = urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))
    if len(link) > MAX_LINK:  # punycode can lengthen a link that passed the first check
        return UsageError(f"That link is {len(link)} characters long; the limit is {MAX_LINK}.")
    return link


def _on_own_computer(host: str) -> bool:
    """Whether `host` names the machine of whoever opens the link: localhost (RFC 6761), a
    loopback, unspecified or link-local address. Private ranges stay allowed: a company's
    community may share intranet links."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    if ":" not in host and not host.rpartition(".")[2].isdigit():
        return False  # a name, not an address: skip ip_address's two failed parses (~8 us)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_link_local


def parse_topics(words: list[str] | tuple[str, ...]) -> tuple[str, ...] | UsageError:
    """Normalise topics (lower case, no leading '#'), dropping duplicates and keeping order."""
    topics: list[str] = []
    for word in words:
        topic = word.strip(",").lstrip("#").lower()
        if not topic:
            continue
        if len(topic) > MAX_TOPIC_LEN or not _TOPIC.fullmatch(topic):
            shown = clean_text(word, 40)
            return UsageError(
                f"'{shown}' is not a topic: use letters, digits, '-', '_', '+' or '.', "
                f"up to {MAX_TOPIC_LEN} characters."
            )
        if topic not in topics:
            topics.append(topic)
    if len(topics) > MAX_TOPICS:
        return UsageError(f"Use at most {MAX_TOPICS} topics.")
    return tuple(topics)


def _parse_id(words: list[str], verb: str) -> int | UsageError:
    if not words:
        return UsageError(f"Say which request, e.g. /review {verb} 12.")
    raw = words[0].lstrip("#")
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_ID_DIGITS or int(raw) == 0:
        return UsageError(f"'{clean_text(words[0], 20)}' is not a request number.")
    return int(raw)


def _ask(link_word: str, rest: list[str]) -> Command | UsageError:
    link = parse_link(link_word)
    if isinstance(link, UsageError):
        return link
    # Topics and `x2` (two reviewers) come before the note, in any order; later, they are note.
    tags, reviewers = [], 1
    while rest:
        wanted = _REVIEWERS.fullmatch(rest[0])
        if wanted:
            reviewers = int(wanted[1])
            if not 1 <= reviewers <= MAX_REVIEWERS:
                return UsageError(_REVIEWERS_RANGE)
        elif rest[0].startswith("#") and len(rest[0]) > 1:
            tags.append(rest[0])
        else:
            break
        rest = rest[1:]
    topics = parse_topics(tags)
    if isinstance(topics, UsageError):
        return topics
    # A trailing `local` keeps the request in this community (design: /review ask ... local).
    local = bool(rest) and rest[-1].lower() in _LOCAL_WORDS
    if local:
        rest = rest[:-1]
    note, cut = _note(" ".join(rest))
    return Ask(link=link, topics=topics, note=note, local=local, reviewers=reviewers, note_cut=cut)


def _note(raw: str) -> tuple[str, bool]:
    """A request's note as stored, and whether it had to be cut to MAX_NOTE."""
    full = clean_text(raw, len(raw) + 1)  # cleaning never lengthens text: nothing is cut here
    return clean_text(full, MAX_NOTE), len(full) > MAX_NOTE


def _setup(words: list[str]) -> Command | UsageError:
    tz: str | None = None
    at: str | None = None
    share: bool | None = None
    recognition: bool | None = None
    for word in words:
        # `share=off` and Discord-style `share:off` both work; times keep their colon.
        key, _, value = word.partition("=") if "=" in word else word.partition(":")
        if key in ("tz", "timezone") and value:
            tz = value
        elif key == "time" and value:
            at = value
        elif key == "share" and value.lower() in ("on", "off"):
            share = value.lower() == "on"
        elif key == "recognition" and value.lower() in ("on", "off"):
            recognition = value.lower() == "on"
        else:
            return UsageError(
                "Use /review setup [tz=Europe/Berlin] [time=09:00] [share=on|off] "
                "[recognition=on|off]."
            )
    zone = _zone(tz) if tz is not None else None
    if tz is not None and zone is None:
        return UsageError(f"'{clean_text(tz, 40)}' is not a time zone name like Europe/Berlin.")
    if at is not None and not _TIME.match(at):
        return UsageError("The reminder time must look like 09:00 (24-hour clock).")
    if zone is not None:
        ZoneInfo(zone)  # fail here, not at reminder time, if the zone data is broken
    return Setup(timezone=zone, reminder_time=at, share=share, recognition=recognition)


def _quiet(words: list[str]) -> Command | UsageError:
    usage = UsageError("Use /review quiet 22:00-08:00 Europe/Berlin, or /review quiet off.")
    if words == ["off"]:
        return Quiet(None)
    if len(words) != 2:  # noqa: PLR2004 - a window and a zone
        return usage
    start, _, end = words[0].partition("-")
    if not (_TIME.match(start) and _TIME.match(end)) or start == end:
        return usage
    zone = _zone(words[1])
    if zone is None:
        return UsageError(
            f"'{clean_text(words[1], 40)}' is not a time zone name like Europe/Berlin."
        )
    return Quiet(QuietHours(start=start, end=end, timezone=zone))


@functools.cache
def _zones_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def _zone(name: str) -> str | None:
    """The IANA zone `name` means, in any letter case (utc, europe/berlin); None if none."""
    return _zones_by_lower().get(name.lower())


def _looks_like_link(word: str) -> bool:
    lowered = word.lower()
    return "://" in word or lowered.startswith(("www.", *_DANGEROUS_SCHEMES))


def parse(text: str) -> Command | UsageError:
    """Parse the text after `/review`."""
    words = text.split()
    if not words:
        return Help()
    head, rest = words[0], words[1:]
    verb = head.lower().rstrip(":")
    if _looks_like_link(head):
        return _ask(head, rest)
    match verb:
        case "ask":
            return _ask(rest[0], rest[1:]) if rest else UsageError(_NO_LINK)
        case "volunteer":
            topics = parse_topics(rest)
            if isinstance(topics, UsageError):
                return topics
            if not topics:
                return UsageError("Name at least one topic, e.g. /review volunteer python writing.")
            return VolunteerFor(topics)
        case "unvolunteer":
            topics = parse_topics(rest)
            return topics if isinstance(topics, UsageError) else Unvolunteer(topics)
        case "pause":
            if len(rest) == 2 and rest[1].lower() in ("day", "days", "d"):  # noqa: PLR2004
                rest = rest[:1]  # "pause 3 days"
            if (
                len(rest) != 1
                or not rest[0].isascii()
                or not rest[0].isdigit()
                or len(rest[0]) > len(str(MAX_PAUSE_DAYS))
            ):
                return UsageError("Say for how many days, e.g. /review pause 14.")
            days = int(rest[0])
            if not 1 <= days <= MAX_PAUSE_DAYS:
                return UsageError(f"Pause for 1 to {MAX_PAUSE_DAYS} days.")
            return Pause(days)
        case "resume":
            return Resume()
        case "list":
            if len(rest) > 1:
                return UsageError("List one topic at a time, e.g. /review list #python.")
            topics = parse_topics(rest)
            if isinstance(topics, UsageError):
                return topics
            return ListOpen(topics[0] if topics else None)
        case "mine":
            return Mine()
        case "claim" | "release" | "cancel" | "done" | "reopen" | "snooze":
            request_id = _parse_id(rest, verb)
            if isinstance(request_id, UsageError):
                return request_id
            if verb == "done":
                return Done(request_id, clean_text(" ".join(rest[1:]), MAX_RESPONSE))
            return _BY_ID[verb](request_id)
        case "setup":
            return _setup(rest)
        case "link":
            if len(rest) > 1:
                return UsageError("Use /review link, then /review link CODE on your other account.")
            return Link(rest[0].upper() if rest else None)
        case "unlink":
            return Unlink()
        case "stats":
            return Stats()
        case "forget-me":
            return ForgetMe(confirmed=[w.lower() for w in rest] == ["confirm"])
        case "export-me":
            return ExportMe()
        case "quiet":
            return _quiet(rest)
        case "nudge" | "close":
            request_id = _parse_id(rest, verb)
            if isinstance(request_id, UsageError):
                return request_id
            return Renotify(request_id) if verb == "nudge" else Close(request_id)
        case "help":
            return Help()
    shown = clean_text(head, 30)
    if head.startswith("#"):  # topics first: the link is missing
        return UsageError(_NO_LINK)
    if _BARE_LINK.fullmatch(head):
        return UsageError(f"Links start with https:// (or http://): add it before '{shown}'.")
    return UsageError(
        f"I don't know '{shown}'. Try /review help, or /review <link> to ask for a review."
    )


def parse_options(verb: str, options: Mapping[str, str | int]) -> Command | UsageError:
    """Parse a Discord-style subcommand with typed options by the same rules as `parse`."""
    verb = verb.lower()
    if verb == "ask":
        link = parse_link(str(options.get("link", "")))
        if isinstance(link, UsageError):
            return link
        topics = parse_topics(str(options.get("topics", "")).replace(",", " ").split())
        if isinstance(topics, UsageError):
            return topics
        local = str(options.get("local", "")).lower() in ("true", "1", "yes", "on")
        note, cut = _note(str(options.get("note", "")))
        reviewers = str(options.get("reviewers", 1)).strip()
        if not (
            reviewers.isascii() and reviewers.isdigit() and 0 < int(reviewers) <= MAX_REVIEWERS
        ):
            return UsageError(_REVIEWERS_RANGE)
        return Ask(
            link=link,
            topics=topics,
            note=note,
            local=local,
            reviewers=int(reviewers),
            note_cut=cut,
        )
    parts = [verb]
    for name in (
        "id",
        "code",
        "hours",
        "timezone",
        "topics",
        "topic",
        "days",
        "response",
        *_KEYED_OPTIONS,
    ):
        if name in options and str(options[name]).strip():
            value = str(options[name])
            if name == "topics":  # comma-separated, as `ask` reads its topics option
                value = value.replace(",", " ")
            parts.append(f"{name}={value}" if name in _KEYED_OPTIONS else value)
    if verb not in VERBS:
        return UsageError(f"I don't know '{clean_text(verb, 30)}'. Try /review help.")
    return parse(" ".join(parts))
