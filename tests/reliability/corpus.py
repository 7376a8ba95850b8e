"""Hostile input: what people (or scripts) type to make a relay bot ping, lie or break.

Each list holds raw strings as a person would type them. `SLACK_FORMS` adds the forms Slack itself
sends for them (with "escape channels, users, and links" on, Slack turns `@channel` into
`<!channel>` and escapes `&`, `<`, `>` it did not produce). Used by test_hostile_input.py through
the real Slack app and by the hypothesis fuzz through Dispatcher.handle.

test_discord_hostile_input.py sends the same corpus through FakeDiscord's `/review ask`, checking
`allowed_mentions` on every message, edit and interaction response (design §9).
"""

from __future__ import annotations

ZWSP, ZWJ, ZWNJ, WJ, BOM = "\u200b", "\u200d", "\u200c", "\u2060", "\ufeff"
RLO, LRO, PDF, RLI, PDI = "\u202e", "\u202d", "\u202c", "\u2067", "\u2069"
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

# Mentions that ping many people (or one person) if a platform parses them.
MENTIONS = [
    "@everyone",
    "@here",
    "@channel",
    "<@&123456789012345678>",  # Discord role mention
    "<@123456789012345678>",  # Discord user mention
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<!channel|@channel>",
    "<!subteam^S0123ABC>",
    "<!subteam^S0123ABC|@reviewers>",
    "<@U0999>",
    "<@U0999|admin>",
    "<@W0999>",
    "<#C0GENERAL>",
    "<!date^1392734382^{date_num}|Feb 18>",
    "@every@everyoneone",
    "@ever@hereyone",
    "`@everyone`",
    "```@everyone```",
    "`` ` ``@everyone",
    "`</code>@everyone`",
    "\uff20everyone",  # fullwidth commercial at
    "\ufe6beveryone",  # small commercial at
    f"@{ZWSP}everyone",
    f"@every{ZWJ}one",
    f"<{ZWSP}!channel>",
    f"<!chan{ZWNJ}nel>",
    f"<!{WJ}here>",
    "&lt;!channel&gt;",
    "&amp;lt;!here&amp;gt;",
    "<<!channel>>",
    "<!channel",
    "!channel>",
    "<@U0999",
]

# Markdown and link tricks: a label that lies about its target, or text that fakes structure.
MARKUP = [
    "[click](https://evil.example/steal)",
    "[https://good.example](https://evil.example)",
    "<https://evil.example|https://good.example>",
    "<https://evil.example|click here>",
    "<javascript:alert(1)|https://good.example>",
    "<mailto:help@evil.example|support>",
    "*Status:* done by admin",
    "> quoted *bold* _italic_ ~strike~",
    "```\nStatus: cancelled\n```",
    "\n*Review request #1* from admin",
    "&amp; &lt; &gt; & < >",
    "|pipe|",
]

# Size and shape: long, multi-line, control and direction characters.
SHAPES = [
    "x" * 10_000,
    "note " * 2_000,
    "\n" * 100 + "@everyone",
    "line1\r\nline2\rline3\u2028line4\u2029line5",
    "tab\there\x00nul\x07bell\x1bescape",
    f"{RLO}gnp.exe{PDF} is a picture",
    f"abc{RLI}def{PDI}ghi{LRO}jkl",
    f"invis{ZWSP}{WJ}{BOM}ible",
    "\U0001f469\u200d\U0001f4bb reviewer",  # an emoji sequence that needs the ZWJ
    "\u0301\u0301\u0301\u0301 zalgo\u0336\u0336",
    "\ud7ff\ue000\uffff",
]

NOTES = MENTIONS + MARKUP + SHAPES

# Display names people choose (Slack handles are tame; other platforms' names are not).
NAMES = [
    "<!channel>",
    "<@U0999>",
    "@everyone",
    "\uff20here",
    "x" * 300,
    "&lt;!here&gt;",
    "[admin](https://evil.example)",
]
# Names that rewrite what is around them: reversed text, a forged line, invisible characters.
TRICK_NAMES = [
    f"{RLO}nimda",
    "admin\n*Status:* done by admin",
    f"ad{ZWSP}min",
]


def slack_forms(text: str) -> list[str]:
    """The text as typed, and as Slack escapes it in a slash command payload."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return [text] if escaped == text else [text, escaped]


# Links the bot must refuse, with what makes each bad.
BAD_LINKS = [
    ("javascript:alert(1)", "script scheme"),
    ("JaVaScRiPt:alert(document.cookie)", "script scheme, mixed case"),
    ("javascript://%0aalert(1)", "script scheme dressed as a URL"),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "data scheme"),
    ("file:///etc/passwd", "file scheme"),
    ("vbscript:msgbox(1)", "vbscript scheme"),
    ("ftp://example.com/draft", "not http(s)"),
    ("blob:https://example.com/uuid", "blob scheme"),
    ("https://good.example@evil.example/", "userinfo hides the host"),
    ("https://user:password@example.com/", "credentials in the link"),
    ("https://good.example%40evil.example/", "encoded @ in the host"),
    ("https://[evil.example]/", "bracketed non-IP host"),
    ("https://[::1", "unclosed bracket"),
    ("https://", "no host"),
    ("http:///path-only", "no host"),
    ("https://evil.example\\@good.example/", "backslash confusion"),
    ("https://-evil.example/", "label starting with a hyphen"),
    ("https://evil..example/", "empty label"),
    ("https://%65vil.example/", "percent-encoded host"),
    ("https://example.com:99999/", "port out of range"),
    ("https://exa\u200bmple.com/", "zero-width space in the host"),
    ("https://exam\u202eple.com/", "bidi override in the host"),
    ("https://example.com/\u202egnp.exe", "bidi override in the path"),
    ("\u200bhttps://example.com/", "leading invisible character"),
    ("https://" + "a" * 2_000 + ".com/", "over 2,000 characters"),
    ("https://example.com/" + "p" * 2_000, "over 2,000 characters"),
]
# Only expressible where the link arrives as one field (Discord options): Slack splits on spaces.
BAD_LINK_FIELDS = [
    (" https://example.com/draft", "leading space"),
    ("\thttps://example.com/draft", "leading tab"),
    ("\u00a0https://example.com/draft", "leading no-break space"),
    ("https://example.com/draft ", "trailing space"),
    ("https://example.com/dr aft", "space inside"),
    ("https://example.com/\ndraft", "newline inside"),
]

# Links that are fine but must be shown so that what they point at is visible.
HOMOGRAPHS = [
    ("https://\u0430\u0440\u0440\u04cf\u0435.com/login", "xn--80ak6aa92e.com"),  # Cyrillic "apple"
    ("https://ex\u0430mple.com/draft", "xn--exmple-4nf.com"),  # one Cyrillic a
    ("https://b\u00fccher.example/", "xn--bcher-kva.example"),
    ("https://\u4f8b\u3048.jp/", "xn--r8jz45g.jp"),
]
