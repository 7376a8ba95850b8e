"""The `/review` command language: parse, parse_options, parse_link, parse_topics, clean_text."""

from __future__ import annotations

import unicodedata
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import (
    MAX_LINK,
    MAX_NOTE,
    MAX_TOPICS,
    VERBS,
    Ask,
    Cancel,
    Claim,
    Command,
    Done,
    Help,
    ListOpen,
    Mine,
    Pause,
    Quiet,
    Release,
    Resume,
    Setup,
    Unvolunteer,
    UsageError,
    VolunteerFor,
    clean_text,
    parse,
    parse_link,
    parse_options,
    parse_topics,
)

LINK = "https://example.com/draft"
IDN_LINK = "https://пример.рф/x"
IDN_PUNYCODE = "https://xn--e1afmkfd.xn--p1ai/x"


def refused(result: Command | UsageError | str | tuple[str, ...]) -> str:
    """Return the message of a refusal, failing the test when the input was accepted."""
    assert isinstance(result, UsageError), f"expected a UsageError, got {result!r}"
    return result.message


def link_of_length(length: int) -> str:
    """An otherwise valid link padded with a query string to exactly `length` characters."""
    head = f"{LINK}?q="
    return head + "a" * (length - len(head))


def words(count: int) -> list[str]:
    """`count` distinct, valid topic words."""
    return [f"topic{i}" for i in range(count)]


def assert_user_message(error: UsageError) -> None:
    """A refusal reads as one short line that ends with a full stop."""
    message = error.message
    assert len(message.splitlines()) == 1, message
    assert message.endswith("."), message
    assert len(message) < 200, message


# --- parse: the happy path of every verb ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"{LINK} #Python #writing please check section 2",
            Ask(LINK, ("python", "writing"), "please check section 2"),
            id="link-topics-note",
        ),
        pytest.param(LINK, Ask(LINK, ()), id="bare-link"),
        pytest.param(f"ask {LINK} #go short one", Ask(LINK, ("go",), "short one"), id="ask"),
        pytest.param("volunteer python Writing", VolunteerFor(("python", "writing")), id="vol"),
        pytest.param("unvolunteer python", Unvolunteer(("python",)), id="unvolunteer-some"),
        pytest.param("unvolunteer", Unvolunteer(()), id="unvolunteer-all"),
        pytest.param("pause 14", Pause(14), id="pause"),
        pytest.param("resume", Resume(), id="resume"),
        pytest.param("list", ListOpen(None), id="list"),
        pytest.param("list #Python", ListOpen("python"), id="list-topic"),
        pytest.param("mine", Mine(), id="mine"),
        pytest.param("claim 12", Claim(12), id="claim"),
        pytest.param("claim #12", Claim(12), id="claim-hash"),
        pytest.param("release 12", Release(12), id="release"),
        pytest.param("cancel #7", Cancel(7), id="cancel"),
        pytest.param("done 3", Done(3), id="done"),
        pytest.param("done #3 lgtm, see comments", Done(3, "lgtm, see comments"), id="done-resp"),
        pytest.param(
            "setup tz=Europe/Berlin time=09:30", Setup("Europe/Berlin", "09:30"), id="setup"
        ),
        pytest.param("setup", Setup(), id="setup-bare"),
        pytest.param("help", Help(), id="help"),
        pytest.param("", Help(), id="empty"),
        pytest.param("  \t ", Help(), id="blank"),
        pytest.param("CLAIM 4", Claim(4), id="verb-case"),
    ],
)
def test_parse_verbs(text: str, expected: Command) -> None:
    """Each verb's documented form parses to its command."""
    assert expected == parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "ask",
        "volunteer",
        "pause",
        "pause soon",
        "pause 0",
        "pause 366",
        "pause 1 2",
        "claim",
        "claim 0",
        "claim abc",
        "release 1234567890",
        "done twelve",
        "setup color=blue",
        "setup tz=Mars/Olympus",
        "setup time=25:00",
        "setup time=9:00",
    ],
)
def test_parse_refuses_malformed_arguments(text: str) -> None:
    """A known verb with missing or malformed arguments gets a one-line usage message."""
    error = parse(text)
    assert isinstance(error, UsageError)
    assert_user_message(error)


def test_parse_refuses_unknown_verb_naming_it() -> None:
    """An unknown first word is refused with a message that names it."""
    assert "'frobnicate'" in refused(parse("frobnicate 12"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#python please look", "Add a link to what you want reviewed"),
        (
            "example.com/draft #python",
            "Links start with https:// (or http://): add it before 'example.com/draft'.",
        ),
        ("docs.google.com/d/1", "Links start with https://"),
        ("v2.0", "I don't know 'v2.0'"),
    ],
)
def test_parse_says_what_is_missing_from_a_link(text: str, expected: str) -> None:
    """Topics without a link, or a link without its scheme, get a hint, not "I don't know"."""
    assert refused(parse(text)).startswith(expected)


def test_time_zones_in_any_case_and_pause_in_days() -> None:
    """`tz=utc` and `europe/berlin` name their zones; `pause 3 days` is `pause 3`."""
    setup = parse("setup tz=utc")
    assert isinstance(setup, Setup)
    assert setup.timezone == "UTC"
    quiet = parse("quiet 22:00-07:00 europe/berlin")
    assert isinstance(quiet, Quiet)
    assert quiet.hours is not None
    assert quiet.hours.timezone == "Europe/Berlin"
    assert parse("pause 3 days") == parse("pause 3") == Pause(3)
    assert "is not a time zone" in refused(parse("setup tz=Mars/Base"))


def test_parse_treats_other_schemes_as_refused_links() -> None:
    """Text that starts with a non-http scheme is refused as a link, not as an unknown verb."""
    assert "http" in refused(parse("javascript:alert(1) #python"))


def test_pause_with_thousands_of_digits_is_refused() -> None:
    """A pause of thousands of digits is refused instead of raising."""
    assert isinstance(parse("pause " + "9" * 5000), UsageError)


# --- topics ---------------------------------------------------------------------------------------


def test_topics_are_normalised_keeping_first_order() -> None:
    """Topics lose their '#', are lower-cased, and repeat only once, in first-seen order."""
    assert parse_topics(["#Python", "python", "GO", "#go", "rust"]) == ("python", "go", "rust")


def test_empty_hash_is_ignored() -> None:
    """A bare '#' is not a topic and is skipped."""
    assert parse_topics(["#", "go"]) == ("go",)


def test_ten_topics_are_accepted() -> None:
    """Exactly the maximum number of topics is accepted."""
    assert tuple(words(MAX_TOPICS)) == parse_topics(words(MAX_TOPICS))


def test_more_than_ten_topics_are_refused() -> None:
    """One topic over the maximum is refused with a message stating the maximum."""
    assert str(MAX_TOPICS) in refused(parse_topics(words(MAX_TOPICS + 1)))


def test_duplicates_do_not_count_towards_the_maximum() -> None:
    """Repeated topics are dropped before the count is checked."""
    assert tuple(words(MAX_TOPICS)) == parse_topics([*words(MAX_TOPICS), "TOPIC0", "#topic1"])


@pytest.mark.parametrize("word", ["py/thon", "-lead", "café", "a" * 33, "<!channel>", "c#"])
def test_bad_topic_characters_are_refused(word: str) -> None:
    """A topic outside [a-z0-9][a-z0-9_+.-]{0,31} is refused with a message quoting it."""
    error = parse_topics(["go", word])
    assert isinstance(error, UsageError)
    assert_user_message(error)
    assert f"'{word}'" in error.message


def test_bad_topic_in_ask_refuses_the_request() -> None:
    """An ask whose tags contain a bad topic is refused as a whole."""
    assert "'#py/thon'" in refused(parse(f"{LINK} #go #py/thon note"))


def test_only_leading_tags_are_topics() -> None:
    """Hash words after the first note word stay in the note."""
    assert Ask(LINK, ("go",), "see #python part") == parse(f"{LINK} #go see #python part")


# --- links (design section 9) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "link", ["http://example.com", "https://example.com/a/b?c=d#e", "https://example.com:8443/x"]
)
def test_http_and_https_links_are_kept(link: str) -> None:
    """A plain http or https link comes back unchanged."""
    assert link == parse_link(link)


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://example.com/file",
        "//example.com/x",
        "www.example.com",
    ],
)
def test_other_schemes_are_refused(link: str) -> None:
    """Only http and https links are accepted."""
    assert "http" in refused(parse_link(link))


@pytest.mark.parametrize("link", ["https://", "https:///path", "http:example.com", "https://:80/"])
def test_links_without_a_host_are_refused(link: str) -> None:
    """A link with no host name is refused."""
    assert "host" in refused(parse_link(link))


@pytest.mark.parametrize("link", ["https://good@evil.com", "https://user:pw@example.com/x"])
def test_userinfo_is_refused(link: str) -> None:
    """A user name or password before the host is refused, since it disguises the real host."""
    assert "user name" in refused(parse_link(link))


@pytest.mark.parametrize("link", ["https://[evil.com]/x", "https://[v1.evil]/x"])
def test_bracketed_non_ipv6_host_is_refused(link: str) -> None:
    """A bracketed host that is not an IPv6 address is refused."""
    refused(parse_link(link))


def test_bracketed_ipv6_host_is_accepted() -> None:
    """A bracketed IPv6 literal is a valid host."""
    assert parse_link("https://[2001:db8::1]/x") == "https://[2001:db8::1]/x"


@pytest.mark.parametrize(
    ("link", "host"),
    [
        ("http://localhost:3000/draft", "localhost"),
        ("http://LOCALHOST./x", "localhost."),
        ("http://blog.localhost/x", "blog.localhost"),
        ("http://127.0.0.1:8000/x", "127.0.0.1"),
        ("http://127.1.2.3/x", "127.1.2.3"),
        ("http://0.0.0.0:8080/", "0.0.0.0"),  # noqa: S104 - a link being refused, not a bind
        ("http://169.254.1.1/x", "169.254.1.1"),
        ("http://[::1]:8000/x", "[::1]"),
        ("http://[fe80::1]/x", "[fe80::1]"),
    ],
)
def test_links_to_the_readers_own_computer_are_refused(link: str, host: str) -> None:
    """A link no one else can open (localhost, loopback) is refused, naming the host."""
    message = refused(parse_link(link))
    assert "your own computer" in message
    assert f"({host})" in message


@pytest.mark.parametrize(
    "link", ["http://10.0.0.5/wiki", "http://192.168.1.20/doc", "http://intranet/page"]
)
def test_private_network_links_are_kept(link: str) -> None:
    """Intranet links stay allowed: others in the same company can open them."""
    assert parse_link(link) == link


@pytest.mark.parametrize("link", [f" {LINK}", f"{LINK} ", f"\t{LINK}", f"{LINK}\n"])
def test_surrounding_whitespace_is_refused(link: str) -> None:
    """A link option with leading or trailing whitespace is refused."""
    assert "spaces" in refused(parse_options("ask", {"link": link}))


def test_link_at_the_limit_is_accepted() -> None:
    """A link of exactly the maximum length is accepted."""
    assert link_of_length(MAX_LINK) == parse_link(link_of_length(MAX_LINK))


def test_overlong_link_is_refused_naming_the_limit() -> None:
    """A link one character over the limit is refused with a message stating the limit."""
    assert str(MAX_LINK) in refused(parse(link_of_length(MAX_LINK + 1)))


def test_idn_host_is_shown_in_punycode() -> None:
    """An internationalised host is rewritten to punycode so homographs are visible."""
    assert parse_link(IDN_LINK) == IDN_PUNYCODE


def test_scheme_and_host_are_lower_cased() -> None:
    """The scheme and host are lower-cased while the path keeps its case."""
    assert parse_link("HTTPS://Example.COM/Draft") == "https://example.com/Draft"


@pytest.mark.parametrize("link", ["https://example.com:99999/", "https://exa..mple.com/"])
def test_invalid_port_or_host_is_refused(link: str) -> None:
    """A port out of range or an empty host label is refused."""
    refused(parse_link(link))


def test_idn_host_keeps_its_identity() -> None:
    """A host with 'ß' is encoded to the punycode browsers use, not mapped to another host."""
    assert parse_link("https://faß.de/x") == "https://xn--fa-hia.de/x"


def test_returned_link_respects_the_limit() -> None:
    """A returned link is within the length limit after its host is converted to punycode."""
    host = ".".join(["пример" * 5] * 12)
    raw = f"https://{host}/"
    link = parse_link(raw + "a" * (MAX_LINK - len(raw)))
    assert isinstance(link, UsageError) or len(link) <= MAX_LINK


# --- notes and clean_text -------------------------------------------------------------------------


def test_control_characters_are_removed() -> None:
    """Control characters (NUL, ESC, BEL, newlines) do not survive into cleaned text."""
    cleaned = clean_text("one\x00two\x1b[31m\x07three\nfour\r\x85five", 100)
    assert not [c for c in cleaned if unicodedata.category(c) == "Cc"]
    assert cleaned == "one two [31m three four five"


@pytest.mark.parametrize(
    "bidi", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"]
)
def test_bidi_controls_are_stripped(bidi: str) -> None:
    """Bidi overrides, embeddings and isolates are removed without leaving a gap."""
    assert clean_text(f"gnp{bidi}.exe\u2069", 100) == "gnp.exe"


def test_whitespace_is_folded() -> None:
    """Runs of whitespace become single spaces and the ends are trimmed."""
    assert clean_text("  a \t\n b\u00a0\u2028 c  ", 100) == "a b c"


def test_text_at_the_limit_is_kept() -> None:
    """Text exactly at the limit is not cut."""
    assert clean_text("x" * MAX_NOTE, MAX_NOTE) == "x" * MAX_NOTE


def test_long_text_is_cut_with_an_ellipsis() -> None:
    """Text over the limit is cut to the limit, the last character being an ellipsis."""
    assert clean_text("x" * (MAX_NOTE + 100), MAX_NOTE) == "x" * (MAX_NOTE - 1) + "…"


def test_ask_note_is_cleaned() -> None:
    """The note of an ask loses bidi overrides and control characters, and is bounded."""
    ask = parse(f"{LINK} #go fix\u202eed\x00now " + "y" * MAX_NOTE)
    assert isinstance(ask, Ask)
    assert ask.note.startswith("fixed now y")
    assert len(ask.note) == MAX_NOTE
    assert ask.note.endswith("…")


# --- parse_options (Discord) ----------------------------------------------------------------------


def test_options_ask_splits_topics_on_commas() -> None:
    """A Discord ask takes comma-separated topics and a cleaned note."""
    options = {"link": LINK, "topics": "python, #Go", "note": " section\n2\u202e "}
    assert Ask(LINK, ("python", "go"), "section 2") == parse_options("ask", options)


def test_options_ask_without_topics_or_note() -> None:
    """A Discord ask with only a link has no topics and an empty note."""
    assert Ask(LINK, ()) == parse_options("ask", {"link": LINK})


def test_options_ask_without_link_is_refused() -> None:
    """A Discord ask without a link asks for one."""
    assert "link" in refused(parse_options("ask", {"topics": "go"}))


def test_options_ask_refuses_bad_link_and_topic() -> None:
    """A Discord ask applies the same link and topic rules as the text form."""
    refused(parse_options("ask", {"link": "javascript:alert(1)"}))
    refused(parse_options("ask", {"link": LINK, "topics": "py/thon"}))


@pytest.mark.parametrize(
    ("verb", "options", "expected"),
    [
        pytest.param("done", {"id": 3, "response": "lgtm"}, Done(3, "lgtm"), id="done"),
        pytest.param("done", {"id": "3"}, Done(3), id="done-no-response"),
        pytest.param("claim", {"id": 12}, Claim(12), id="claim"),
        pytest.param("Release", {"id": 12}, Release(12), id="release"),
        pytest.param("cancel", {"id": "#7"}, Cancel(7), id="cancel"),
        pytest.param("pause", {"days": 14}, Pause(14), id="pause"),
        pytest.param("volunteer", {"topics": "python go"}, VolunteerFor(("python", "go")), id="v"),
        pytest.param(
            "volunteer", {"topics": "python,go"}, VolunteerFor(("python", "go")), id="v-commas"
        ),
        pytest.param(
            "unvolunteer", {"topics": "python,#go"}, Unvolunteer(("python", "go")), id="unv-commas"
        ),
        pytest.param("unvolunteer", {}, Unvolunteer(), id="unvolunteer"),
        pytest.param("list", {"topic": "#Python"}, ListOpen("python"), id="list"),
        pytest.param("list", {"topic": " "}, ListOpen(None), id="list-blank"),
        pytest.param("mine", {}, Mine(), id="mine"),
        pytest.param("resume", {}, Resume(), id="resume"),
        pytest.param("setup", {"tz": "UTC", "time": "18:05"}, Setup("UTC", "18:05"), id="setup"),
        pytest.param("help", {}, Help(), id="help"),
    ],
)
def test_options_verbs(verb: str, options: dict[str, str | int], expected: Command) -> None:
    """Each Discord subcommand with its typed options parses like the text form."""
    assert expected == parse_options(verb, options)


def test_options_unknown_verb_is_refused() -> None:
    """An unknown Discord subcommand is refused with a message naming it."""
    error = parse_options("frobnicate", {"id": 1})
    assert isinstance(error, UsageError)
    assert_user_message(error)
    assert "'frobnicate'" in error.message


# --- reviewers (x2) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"{LINK} #python x2 check the intro",
            Ask(LINK, ("python",), "check the intro", reviewers=2),
            id="x2",
        ),
        pytest.param(f"{LINK} X3", Ask(LINK, (), reviewers=3), id="no-topics"),
        pytest.param(f"{LINK} #python x1", Ask(LINK, ("python",)), id="x1"),
        pytest.param(
            f"{LINK} #python x2 intro local",
            Ask(LINK, ("python",), "intro", local=True, reviewers=2),
            id="local",
        ),
        pytest.param(
            f"{LINK} #python check x2 speed", Ask(LINK, ("python",), "check x2 speed"), id="in-note"
        ),
        pytest.param(f"{LINK} #python x2x", Ask(LINK, ("python",), "x2x"), id="not-a-count"),
        pytest.param(
            f"{LINK} x2 #python", Ask(LINK, ("python",), reviewers=2), id="before-the-topics"
        ),
        pytest.param(
            f"{LINK} #go x2 #rust intro x3",
            Ask(LINK, ("go", "rust"), "intro x3", reviewers=2),
            id="between-the-topics",
        ),
    ],
)
def test_reviewers_follow_the_topics(text: str, expected: Command) -> None:
    """`x2` among the topics, before the note, asks for two reviewers; in the note it is text."""
    assert expected == parse(text)


def test_a_long_note_is_cut_and_says_so() -> None:
    """A note over MAX_NOTE is cut, and the command carries that, for the reply to say it."""
    cut = parse(f"{LINK} #python " + "word " * 200)
    assert isinstance(cut, Ask)
    assert cut.note_cut
    assert len(cut.note) == MAX_NOTE
    whole = parse(f"{LINK} #python " + "x" * MAX_NOTE)
    assert isinstance(whole, Ask)
    assert not whole.note_cut
    option = parse_options("ask", {"link": LINK, "note": "y" * (MAX_NOTE + 1)})
    assert isinstance(option, Ask)
    assert option.note_cut


@pytest.mark.parametrize("count", ["x0", "x4", "x10", "x999999999"])
def test_reviewers_out_of_range_are_refused(count: str) -> None:
    """Zero or more than three reviewers is refused with one sentence naming the range."""
    error = parse(f"{LINK} #python {count} intro")
    assert isinstance(error, UsageError)
    assert_user_message(error)
    assert "1 to 3 reviewers" in error.message


@pytest.mark.parametrize(
    ("reviewers", "expected"), [(2, 2), ("3", 3), (1, 1)], ids=["int", "str", "one"]
)
def test_options_reviewers(reviewers: int | str, expected: int) -> None:
    """Discord's `reviewers` option maps to the same parsed request."""
    assert Ask(LINK, ("python",), reviewers=expected) == parse_options(
        "ask", {"link": LINK, "topics": "python", "reviewers": reviewers}
    )


@pytest.mark.parametrize("reviewers", [0, 4, "two", ""])
def test_options_reviewers_out_of_range_are_refused(reviewers: int | str) -> None:
    """A `reviewers` option outside 1 to 3 is refused like the text form."""
    assert "1 to 3 reviewers" in refused(
        parse_options("ask", {"link": LINK, "reviewers": reviewers})
    )


# --- properties -----------------------------------------------------------------------------------

ANY_COMMAND = (*get_args(Command), UsageError)
HEADS = st.sampled_from([*VERBS, LINK, "https://", "HTTP://[", "#12"])
# Discord caps integer options at 2**53, well below the int-to-str digit limit.
OPTION_VALUES = st.text() | st.integers(min_value=-(2**53), max_value=2**53)
OPTION_NAMES = st.sampled_from(
    ["id", "topics", "topic", "days", "response", "tz", "time", "link", "note"]
) | st.text(max_size=8)


def check_outcome(result: object) -> None:
    """Any outcome is a command, or a refusal that reads as one short line."""
    assert isinstance(result, ANY_COMMAND), result
    if isinstance(result, UsageError):
        assert_user_message(result)


@given(st.text())
def test_parse_never_raises(text: str) -> None:
    """For any text, parse returns a command or a well-formed usage error."""
    check_outcome(parse(text))


@given(HEADS, st.text())
def test_parse_never_raises_after_a_known_head(head: str, rest: str) -> None:
    """For any arguments after a verb or link, parse returns a command or a usage error."""
    check_outcome(parse(f"{head}{rest}"))
    check_outcome(parse(f"{head} {rest}"))


@given(st.text() | HEADS, st.dictionaries(OPTION_NAMES, OPTION_VALUES, max_size=5))
def test_parse_options_never_raises(verb: str, options: dict[str, str | int]) -> None:
    """For any verb and options, parse_options returns a command or a usage error."""
    check_outcome(parse_options(verb, options))
