"""Junk text: blanks, placeholders and test values, keyboard mash, repeated filler, symbol
soup, and evidence that cites nothing.

The checks run on every write, so ASCII text (the common case) is measured with byte
tables (``bytes.translate``) instead of per-character loops or regexes, and the costly
analyses run only behind a cheap precheck.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from typing import NamedTuple

SUBJECT, PREDICATE, OBJECT, LEAF = range(4)


class Finding(NamedTuple):
    signal: str
    minor: bool
    detail: str


def quote(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return repr(s if len(s) <= n else s[: n - 1] + "…")


# --- Placeholders and templates ------------------------------------------------------------

_ANY_PLACEHOLDERS = frozenset(
    """test|testing|tests|test test|asdf|asdfasdf|qwer|zxcv|foo|foobar|foo bar|baz|qux|xxx|
    xxxx|yyy|zzz|tbd|tba|todo|fixme|placeholder|dummy|blah|blah blah|
    blabla|idk|dunno|whatever|[object object]|insert text here|your text here|text here|
    enter text|enter value|changeme|change me|replace me|sample text|n/a|#n/a|#ref!|#value!|
    #name?|#div/0!|???|?|lol|asd|sdf|jkl|aaa|abc123|hello world|lorem ipsum dolor sit amet|
    lorem ipsum dolor|n.a|n. a|n/d|tbc""".replace("\n    ", "").split("|")
)
_NOTHING = (
    "none|null|nil|undefined|nan|unknown|empty|blank|something|stuff|thing|abc|xyz|hi|hello|ok|okay"
)
_SUBJECT_PLACEHOLDERS = _ANY_PLACEHOLDERS | frozenset(
    f"""{_NOTHING}|x|xx|y|z|subject|predicate|object|entity|value|string|text|name|example|
    sample|item|data|key|default|field|attribute|attr|prop|property|relation|rel|yes|no|
    true|false""".replace("\n    ", "").split("|")
)
# Predicates such as "value", "name", "example" or "text" are common and fine.
_PREDICATE_PLACEHOLDERS = _ANY_PLACEHOLDERS | frozenset(
    f"""{_NOTHING}|x|xx|y|z|predicate|relation|rel|prop|subject|object""".split("|")
)
# Objects: "none", "unknown", "yes", "NaN", "Na", "object", "hello" can all be real answers.
_OBJECT_PLACEHOLDERS = _ANY_PLACEHOLDERS | frozenset(
    {"value", "subject", "predicate", "undefined", "null", "nil"}
)
_EVIDENCE_PLACEHOLDERS = _ANY_PLACEHOLDERS | frozenset(
    """none|null|nil|na|-|--|x|source|sources|link|url|urls|citation|citation needed|ref|
    refs|reference|references|evidence|proof|trust me|trust me bro|source: me|
    source: trust me|me|myself|my opinion|i think|i think so|i heard|i guess|
    heard it somewhere|somewhere|common knowledge|everyone knows|obviously|google|google it|
    just google it|the internet|internet|web|online|www|http|https|http://|https://|
    see above|see below|various|unknown|empty|no source|no evidence|self|made up|rumor|
    rumour|source: dude trust me|my brain|gut feeling|vibes""".replace("\n    ", "").split("|")
)
# Possessive quantifiers: no backtracking into "test1111…", which would be exponential.
_TEST_SUFFIX = (
    r"(?:[\s_.-]*+(?:\d++|subject|predicate|object|fact|data|value|entry|assertion|item|case|"
    r"string|text|record|thing|name|entity|relation|foo|bar|baz))"
)
_TEST_NAME_RE = re.compile(
    rf"^(?:test(?:ing)?|tst|dummy|fake|mock|placeholder|foo|baz|qux|asdf){_TEST_SUFFIX}*+$"
    rf"|^(?:example|sample|bar|xyz|abc){_TEST_SUFFIX}++$"
)
_TEST_OBJECT_RE = re.compile(
    r"^(?:test(?:ing)?|asdf|dummy|placeholder|foo|foobar|lorem ipsum)(?:[\s_-]*+\d++)?$"
    r"|^test[\s_.-]*(?:subject|predicate|object|fact|data|value|entry|assertion|string|text)"
    r"[\s_-]*\d*$"
)
# First two letters of every value the two regexes above can match (a cheap gate).
_TEST_NAME_HEADS = frozenset(
    ["te", "ts", "du", "fa", "mo", "pl", "fo", "ba", "qu", "as", "ex", "sa", "xy", "ab"]
)
_TEST_OBJECT_HEADS = frozenset(["te", "as", "du", "pl", "fo", "lo"])
# Indexed by field kind (SUBJECT, PREDICATE, OBJECT, LEAF).
_PLACEHOLDERS_BY_KIND = (
    _SUBJECT_PLACEHOLDERS,
    _PREDICATE_PLACEHOLDERS,
    _OBJECT_PLACEHOLDERS,
    _OBJECT_PLACEHOLDERS,
)
_TEST_HEADS_BY_KIND = (_TEST_NAME_HEADS, _TEST_NAME_HEADS, _TEST_OBJECT_HEADS, _TEST_OBJECT_HEADS)
_TEST_RE_BY_KIND = (_TEST_NAME_RE, _TEST_NAME_RE, _TEST_OBJECT_RE, _TEST_OBJECT_RE)
_LOREM_RE = re.compile(r"lorem ipsum dolor|dolor sit amet|consectetur adipiscing|sed do eiusmod")
_TEMPLATE_RE = re.compile(
    r"^(?:\{\{.*\}\}|\$\{.*\}|%[sdrf]|\{\d*\}|(?-i:__[A-Z][A-Z_]*__)|\[\[.*\]\]"
    r"|<[a-z_ -]{0,20}(?:subject|object|predicate|value|name|placeholder|insert|your|todo|"
    r"text|answer|fact|entity|here|tbd|fill)[a-z_ -]{0,20}>"
    r"|\{(?:subject|object|predicate|value|name|answer|fact|entity|placeholder)\})$",
    re.IGNORECASE | re.DOTALL,
)
_STRIP_CHARS = " \t\r\n\"'`.,;:!()"

# --- Byte tables for ASCII text ------------------------------------------------------------

_CV = bytes(
    ord("c") if chr(c) in "bcdfghjklmnpqrstvwxz" else ord("v") if chr(c) in "aeiouy" else 32
    for c in range(256)
)
_ROW = bytes(
    ord("2")
    if chr(c) in "asdfghjkl"
    else ord("3")
    if chr(c) in "zxcvbnm"
    else c
    if chr(c) in "qwer"
    else 32
    for c in range(256)
)
_A = ord("a")
# ASCII letters to "a", digits to "0", anything else to a space (a plain table: deleting
# characters in ``bytes.translate`` costs a 256-entry setup on every call).
_ALNUM_CLASS = bytes(
    ord("a")
    if chr(c).isascii() and chr(c).isalpha()
    else ord("0")
    if chr(c).isascii() and chr(c).isdigit()
    else ord(" ")
    for c in range(256)
)
_NON_ALNUM_RE = re.compile(r"[\W_]+")
_HAS_LETTER_RE = re.compile(r"[^\W\d_]")
_JUNK_PUNCT = frozenset("?.-_~!…,;: ")

# --- Keyboard mash ---------------------------------------------------------------------------

_OPAQUE_RE = re.compile(r"[A-Za-z0-9+/=_.:-]{16,}")
_ASCII_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_CONSONANTS_RE = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}")
_KEY_RUNS = frozenset(
    r[i : i + 4]
    for row in ("qwer", "asdfghjkl", "zxcvbnm")
    for r in (row, row[::-1])
    for i in range(len(r) - 3)
)
_KEY_RUN_EXEMPT = frozenset({"qwerty", "qwertz", "azerty", "qwertyuiop", "dvorak"})
_KEY_RUN_RE = re.compile("|".join(sorted(_KEY_RUNS)))
_KEY_RUN_B_RE = re.compile("|".join(sorted(_KEY_RUNS)).encode())


def _opaque_out(m: re.Match[str]) -> str:
    s = m.group()
    return " " if any(c.isdigit() for c in s) else s


_HEX_RE = re.compile(r"\b(?:0x[0-9a-fA-F]+|[0-9a-fA-F]*\d[0-9a-fA-F]*)\b")


def _mash_hint(low_b: bytes, cv: str | None = None) -> bool:
    """Cheap test on lower-cased ASCII bytes: a consonant run or a row run may be present.
    ``cv``: ``low_b`` through the ``_CV`` table, decoded, when the caller has it.

    The tests are ``in`` on decoded text: ``bytes in bytes`` pays for a TypeError (it
    tries the needle as an integer first) and ``bytes.find`` for its argument parsing."""
    if cv is None:
        cv = low_b.translate(_CV).decode()
    if "ccccc" in cv:
        return True
    # Only a word typed along one row can hold a row run; q, w, e and r map to themselves.
    row = low_b.translate(_ROW).decode()
    if "2222" in row or "3333" in row or "qwer" in row or "rewq" in row:
        return _KEY_RUN_B_RE.search(low_b) is not None
    return False


def _mash(text: str) -> tuple[int, int, str]:
    """(letters in mash-like words, letters in all words, first mash word).

    Mash: a run of four keys along a keyboard row ("asdf", "hjkl", "zxcv"), or a word of
    six or more letters with a run of five consonants and under 20 % vowels (y counts as
    a vowel). Hex literals and long ids with digits (hashes, keys) are left out.
    """
    if not text.isascii():
        text = text.encode("ascii", "replace").decode()
    text = _HEX_RE.sub(" ", _OPAQUE_RE.sub(_opaque_out, text))
    mash = total = 0
    first = ""
    for w in _ASCII_WORD_RE.findall(text):
        n = len(w)
        total += n
        if n < 4:
            continue
        low = w.lower()
        if low in _KEY_RUN_EXEMPT:
            continue
        is_mash = _KEY_RUN_RE.search(low) is not None
        if not is_mash and n >= 6:
            run = _CONSONANTS_RE.search(low)
            if run is not None:
                vowels = sum(low.count(v) for v in "aeiouy")
                is_mash = vowels * 5 < n
        if is_mash:
            mash += n
            first = first or w
    return mash, max(total, 1), first


# --- Repeated filler ---------------------------------------------------------------------------

_CHAR_RUN_RE = re.compile(r"(.)\1{5,}")
_BYTE_RUN_RE = re.compile(rb"(.)\1{5}", re.DOTALL)  # any byte, as the XOR test counts
_PUNCT = ".,;:!?\"'()[]"
_LONG_FIELD = 160


RUNS, REPEATS, PERIODIC = 1, 2, 4
ALL_FILLER = RUNS | REPEATS | PERIODIC


def _has_run(s: str, b: bytes | None = None) -> bool:
    """Six equal characters in a row? For ASCII, XOR the text with itself shifted by one:
    equal neighbours give zero bytes, so a run of six is five zero bytes (all in C); short
    text, the usual field, costs less as one regex search over its bytes.
    ``b``: ``s`` encoded, when the caller has it (ASCII only)."""
    if b is None:
        if not s.isascii():
            return _CHAR_RUN_RE.search(s) is not None
        b = s.encode()
    if len(b) < 48:
        return _BYTE_RUN_RE.search(b) is not None
    x = int.from_bytes(b[:-1], "big") ^ int.from_bytes(b[1:], "big")
    return x.to_bytes(len(b) - 1, "big").find(b"\x00\x00\x00\x00\x00") != -1


def _periodic(t: str) -> bool:
    """True if a token is one short unit repeated at least four times ("hahahaha")."""
    top = min(7, len(t) // 4 + 1)
    if top <= 2 or t[0] not in t[2:top]:  # a period p repeats the first character at p
        return False
    return any(t[p] == t[0] and t[p:] == t[:-p] for p in range(2, top))


def filler_hints(low: str, low_b: bytes | None = None, cv: str | None = None) -> int:
    """Which kinds of inner repetition may be present: a mask of RUNS and PERIODIC.
    ``low_b``: ``low`` encoded, when the caller has it (ASCII only). ``cv``: ``low`` encoded
    to ASCII (others as "?") through the ``_CV`` table and decoded, when the caller has
    it: six equal characters in a row are six equal classes there, and the text of a
    usual fact has none, so the exact test is skipped."""
    mask = 0
    if (
        len(low) >= 6
        and (cv is None or "cccccc" in cv or "vvvvvv" in cv or "      " in cv)
        and _has_run(low, low_b)
    ):
        mask = RUNS
    for t in low.split():
        if len(t) >= 8 and (
            (t[2] == t[0] and t[2:] == t[:-2])
            or (t[3] == t[0] and t[3:] == t[:-3])
            or (len(t) >= 16 and _periodic(t))
        ):
            return mask | PERIODIC
    return mask


def has_repeated_words(low: str) -> bool:
    tokens = low.split()
    return len(tokens) >= 4 and len(set(tokens)) < len(tokens)


def _token_filler(t: str, mask: int) -> int:
    """Characters of a token that are repetition: "aaaaaaaa", "hahahaha", "wow!!!!!!"."""
    n = len(t)
    c0 = t[0]
    if c0 == "0" and t[1:2] == "x" or (c0.isdigit() and _HEX_RE.fullmatch(t)):
        return 0  # hex literals such as 0xffffffff
    if t.count(c0) == n:
        return n if not c0.isdigit() and (n >= 8 or not c0.isalnum()) else 0
    if n < 8:
        return 0
    if mask & PERIODIC and _periodic(t):
        return n
    if mask & RUNS:
        for m in _CHAR_RUN_RE.finditer(t):
            c = m.group(1)
            if not c.isdigit() and (len(m.group()) >= 8 or not c.isalnum()):
                return len(m.group())
    return 0


def filler(low: str, mask: int = ALL_FILLER) -> tuple[int, str]:
    """(characters covered by repetition, an example) for one lower-cased field.

    ``mask`` (from ``filler_hints``) limits the search to the kinds of repetition that
    may be present. In a field longer than ``_LONG_FIELD`` characters only tokens of 20
    characters or more are searched for inner repetition, and repeated words only when
    they dominate (fewer than half the words distinct): prose stays cheap to check.
    """
    tokens = low.split()
    long_field = len(low) > _LONG_FIELD
    covered = 0
    example = ""
    if mask & (RUNS | PERIODIC):
        min_token = 20 if long_field else 6
        for t in tokens:
            if len(t) >= min_token:
                c = _token_filler(t, mask)
                if c:
                    covered += c
                    example = example or t
    if (
        mask & REPEATS
        and len(tokens) >= 4
        and (not long_field or len(set(tokens)) * 2 <= len(tokens))
    ):
        bare = [t.strip(_PUNCT) for t in tokens]
        uniq = len(set(bare))
        if uniq < len(bare):
            run = 1
            for i in range(1, len(bare)):
                run = run + 1 if bare[i] == bare[i - 1] and bare[i] else 1
                if run == 4:
                    covered += 4 * (len(bare[i]) + 1)
                    example = example or " ".join(bare[i - 3 : i + 1])
                elif run > 4:
                    covered += len(bare[i]) + 1
        if not covered and len(bare) >= 8 and uniq * 2 <= len(bare):
            word, count = Counter(bare).most_common(1)[0]
            if count * 2 >= len(bare) and len(word) > 1:
                covered = count * (len(word) + 1)
                example = f"{word!r} × {count}"
    return covered, example


# --- Subject, predicate, object ---------------------------------------------------------------


def _basic(text: str, low: str, kind: int, is_ascii: bool) -> Finding | None:
    """Blank, no-letters, placeholder, lorem ipsum and symbol-soup checks of one field."""
    n = len(text)
    # The usual fields take a short path: one word of letters and digits (any script; in
    # ASCII also with inner underscores), or such words between single spaces. A field like
    # that is not blank nor a template, is its own normal form, is mostly letters (as many
    # words as spaces and one more), and only with spaces can it be lorem ipsum.
    if text.isalnum() or (is_ascii and text.isidentifier() and text[0] != "_"):
        words = False
    elif "  " not in text and text.replace(" ", "").isalnum():
        words = True
    else:
        words = None
    if words is not None:
        if kind == PREDICATE and text.replace(" ", "").isdecimal():
            return Finding("empty_text", False, f"has no letters: {quote(text)}")
        if n < 64 and (
            low in _PLACEHOLDERS_BY_KIND[kind]
            or (low[:2] in _TEST_HEADS_BY_KIND[kind] and _TEST_RE_BY_KIND[kind].match(low))
            or (kind == PREDICATE and n == 1 and text.isalpha())
        ):
            return Finding("placeholder_text", False, f"is a placeholder: {quote(text)}")
        if words:
            if ("dolor" in low or "adipiscing" in low or "eiusmod" in low) and _LOREM_RE.search(
                low
            ):
                return Finding("placeholder_text", False, "is lorem ipsum filler")
        elif n >= 6 and "_" in text:
            alnum = n - text.count("_")
            if n - alnum >= 4 and alnum * 4 < n:
                return Finding("symbol_noise", False, f"is mostly symbols: {quote(text)}")
        return None
    # Empty: no letters (predicate) or no letters or digits; a short operator such as
    # "+", "->" or a flag emoji is a fine object.
    if is_ascii:
        cls = low.encode().translate(_ALNUM_CLASS)
        alnum = n - cls.count(b" ")
        no_letters = kind == PREDICATE and _A not in cls  # an int: no TypeError
    else:
        alnum = len(_NON_ALNUM_RE.sub("", text))
        no_letters = kind == PREDICATE and _HAS_LETTER_RE.search(text) is None
    if no_letters:
        return Finding("empty_text", False, f"has no letters: {quote(text)}")
    if not alnum:
        if n > 3 or set(text) <= _JUNK_PUNCT:
            return Finding("empty_text", False, f"has no letters or digits: {quote(text)}")
        return None

    # Placeholders, test values, unfilled templates, lorem ipsum.
    if n < 64:
        norm = (" ".join(low.split()) if " " in low else low).strip(_STRIP_CHARS)
        if (
            norm in _PLACEHOLDERS_BY_KIND[kind]
            or (norm[:2] in _TEST_HEADS_BY_KIND[kind] and _TEST_RE_BY_KIND[kind].match(norm))
            or (kind == PREDICATE and n == 1 and text.isalpha())
            or (n >= 2 and text[0] in "{$%<_[" and _TEMPLATE_RE.match(text))
        ):
            return Finding("placeholder_text", False, f"is a placeholder: {quote(text)}")
    if ("dolor" in low or "adipiscing" in low or "eiusmod" in low) and _LOREM_RE.search(low):
        return Finding("placeholder_text", False, "is lorem ipsum filler")

    # Mostly symbols: under a quarter of the visible characters are letters or digits.
    if n >= 6 and alnum * 4 < n:
        visible = len("".join(text.split()))
        if visible - alnum >= 4 and alnum * 4 < visible:
            return Finding("symbol_noise", False, f"is mostly symbols: {quote(text)}")
    return None


_LOW = operator.itemgetter(2)


def check_core(items: list[tuple[str, str, int]]) -> list[tuple[str, Finding]]:
    """Junk findings for (where, text, kind) fields: subject, predicate, object (leaves).

    The per-field checks are cheap; mash and filler, the costly ones, first run one
    precheck over all fields together and look at single fields only when it hits.
    """
    found: list[tuple[str, Finding]] = []
    rest: list[tuple[str, str, str]] = []
    for where, raw, kind in items:
        text = raw.strip()
        if not text:
            if kind != LEAF:
                found.append((where, Finding("empty_text", False, "is blank")))
            continue
        is_ascii = text.isascii()
        low = text.lower() if is_ascii else text.casefold()
        basic = _basic(text, low, kind, is_ascii)
        if basic is not None:
            found.append((where, basic))
            if basic.signal != "symbol_noise":
                continue
        rest.append((where, text, low))
    if not rest:
        return found
    joined = "\n".join(map(_LOW, rest))
    joined_ascii = joined.isascii()
    joined_b = joined.encode() if joined_ascii else joined.encode("ascii", "replace")
    cv = joined_b.translate(_CV).decode()
    if _mash_hint(joined_b, cv):
        for where, text, low in rest:
            # A field can hold mash only where its own hint fires (the joined one is an OR).
            if len(rest) > 1 and not _mash_hint(low.encode("ascii", "replace")):
                continue
            mash, words, first = _mash(text)
            if mash:
                minor = mash * 10 < words * 4
                found.append((where, Finding("keyboard_mash", minor, quote(first))))
    mask = filler_hints(joined, joined_b if joined_ascii else None, cv)
    if not mask and joined.count(" ") < 3:
        return found  # no field holds the four words a repetition needs
    for where, text, low in rest:
        field_mask = mask | REPEATS if low.count(" ") >= 3 and has_repeated_words(low) else mask
        if field_mask:
            covered, example = filler(low, field_mask)
            if covered:
                minor = len(text) > 24 and covered * 10 < len(text) * 3
                found.append((where, Finding("repeated_filler", minor, quote(example))))
    return found


# --- Evidence ----------------------------------------------------------------------------------

_URL_RE = re.compile(
    r"^(?:https?|ftp|ftps|s3|gs|ipfs|git|ssh|file|hdfs|wss?)://"
    r"(?:[^\s/?#@]*@)?(?:(?:[\w-]+\.)+[\w-]{2,}|localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:.]+\])"
    r"(?::\d{1,5})?(?:[/?#]\S*)?$|^file:///\S+$|^s3://[\w.-]+(?:/\S*)?$",
    re.IGNORECASE,
)
_ID_RE = re.compile(
    r"^(?:doi|urn|isbn|issn|arxiv|pmid|pmcid|oclc|wikidata|wd|rfc|cve|sha256|sha1|md5|git|hdl|"
    r"ark|iso|ieee|ietf|nist|ecli|cik|lccn|ean|gtin|orcid|ror|bibcode|uri)\b[\s:#-]*\S"
    r"|^10\.\d{4,9}/\S+|^q\d+$",
    re.IGNORECASE,
)
_BAD_SCHEME_RE = re.compile(r"^\s*(?:javascript|data|vbscript)\s*:", re.IGNORECASE)


def _plain_web_url(text: str) -> bool:
    """The common case without a regex: http(s)://host.tld/... with no whitespace."""
    if " " in text or "\t" in text or "\n" in text:
        return False
    host = text.partition("//")[2].partition("/")[0]
    if "?" in host:
        host = host.partition("?")[0]
    if "#" in host:
        host = host.partition("#")[0]
    if "@" in host:
        host = host.rpartition("@")[2]
    if ":" in host:
        host = host.partition(":")[0]
    return "." in host[1:-1] and host.replace(".", "").replace("-", "").isalnum()


def evidence_junk(e: str) -> str | None:
    """Why an evidence entry is junk, or None if it is a usable URL, identifier or citation."""
    text = e.strip()
    if not text:
        return "blank"
    if text.startswith(("https://", "http://")) and _plain_web_url(text):
        return None
    if text[:4].lower() in ("java", "data", "vbsc") and _BAD_SCHEME_RE.match(text):
        return "script or data URL"
    if _URL_RE.match(text) or _ID_RE.match(text):
        return None
    if "://" in text[:12]:
        return "malformed URL"
    low = text.lower() if text.isascii() else text.casefold()
    norm = " ".join(low.split()).strip(_STRIP_CHARS)
    if norm in _EVIDENCE_PLACEHOLDERS or _TEST_NAME_RE.match(norm) or _TEMPLATE_RE.match(text):
        return "placeholder"
    if len(_NON_ALNUM_RE.sub("", text)) < 3 or not _HAS_LETTER_RE.search(text):
        return "no words"
    hint = _mash_hint(low.encode("ascii", "replace"))
    mash, words, _ = _mash(text) if hint else (0, 1, "")
    if mash * 10 >= words * 4:
        return "keyboard mash"
    covered, _ = filler(low)
    if covered * 10 >= len(text) * 3:
        return "repeated filler"
    return None
