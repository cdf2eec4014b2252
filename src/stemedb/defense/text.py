"""Text views of an assertion for the detectors.

``fold`` turns any text into the form the injection rules are written against, so that
obfuscations collapse onto the plain phrase: HTML character references and %-escapes
decoded; Unicode compatibility forms unified (NFKD: full-width letters, ligatures,
mathematical and circled letters); accents and other combining marks dropped; invisible,
formatting and control characters removed; Unicode tag characters (used to smuggle
hidden ASCII) decoded; Cyrillic and Greek look-alike letters inside Latin words mapped to
Latin; case folded; light leetspeak undone (0→o 1→i 3→e 4→a 5→s 7→t @→a $→s); curly
quotes straightened. ASCII text, the common case, takes a byte-table fast path.

``words`` are the letter runs of a folded text (the rule triggers), ``compact`` its
letters only, which defeats word splitting ("ig-nore pre.vious in struc tions").
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any, NamedTuple
from urllib.parse import unquote

_LEET_FROM = "013457@$`"
_LEET_TO = "oieastas'"

# ASCII fast path: one byte table lower-cases, undoes leetspeak and drops control bytes.
_ASCII_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _LEET_FROM.encode(),
    b"abcdefghijklmnopqrstuvwxyz" + _LEET_TO.encode(),
)
_ASCII_CONTROLS = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
# The same with control bytes mapped to NUL, removed after by ``replace``: cheaper than the
# delete argument of ``bytes.translate``, which builds a 256-entry table on every call.
_ASCII_FOLD_NUL = bytes(0 if c in _ASCII_CONTROLS else _ASCII_FOLD[c] for c in range(256))
_LETTERS = bytes(range(ord("a"), ord("z") + 1))
_TO_SPACE_BUT_LETTERS = bytes(c if c in _LETTERS else 32 for c in range(256))

# Invisible or formatting characters removed before matching (they carry no meaning in a
# fact and are the usual way to split a keyword so that a filter misses it).
_INVISIBLE_CLASS = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
)
_CONTROL_CLASS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a"
_DROP_RE = re.compile(f"[{_INVISIBLE_CLASS}{_CONTROL_CLASS}{_MARKS}\U000e0000-\U000e007f]")
_TAG_RE = re.compile("[\U000e0020-\U000e007e]+")
_ENTITY_RE = re.compile(r"&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]{2,10});")
_PERCENT_RE = re.compile(r"%[0-9a-fA-F]{2}")
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")
_NON_LETTER_RE = re.compile(r"[\W\d_]+")
_CYRILLIC_GREEK_RE = re.compile("[\u0370-\u04ff]")

# Look-alike letters, applied only inside words that mix scripts ("іgnоre").
_CONFUSABLES = str.maketrans(
    {
        **dict(zip("аеорсхуіјѕԁһӏԛԝвмнткь", "aeopcxyijsdhlqwbmhtkb", strict=True)),
        **dict(zip("αεικνορτυχ", "aeikvoptux", strict=True)),
    }
)
_LATIN_RE = re.compile("[a-zA-Z]")
_LOOKALIKE_RE = re.compile("[\u0400-\u04ffαεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ]")
_TRANSLATE = str.maketrans(
    {
        **dict(zip(_LEET_FROM, _LEET_TO, strict=True)),
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\uff5c": "|",
    }
)


# ``str.translate`` looks every character up in a dict: it runs only on text holding one
# of the characters it maps.
_TRANSLATED_RE = re.compile("[" + re.escape("".join(map(chr, _TRANSLATE))) + "]")
# A letter run mixing ASCII letters with others has an ASCII letter next to another letter:
# text without such a pair holds no mixed-script word.
_SCRIPT_SEAM_RE = re.compile(r"[a-zA-Z][^\W\d_a-zA-Z]|[^\W\d_a-zA-Z][a-zA-Z]")


def _decode_tags(m: re.Match[str]) -> str:
    return " " + "".join(chr(ord(c) - 0xE0000) for c in m.group()) + " "


def _is_mixed(word: str) -> bool:
    return bool(not word.isascii() and _LATIN_RE.search(word) and _LOOKALIKE_RE.search(word))


def _unmix(m: re.Match[str]) -> str:
    w = m.group()
    return w.translate(_CONFUSABLES) if _is_mixed(w) else w


def mixed_script_words(s: str) -> list[str]:
    """Words mixing Latin letters with Cyrillic or Greek look-alikes ("Pаris")."""
    if s.isascii() or not _CYRILLIC_GREEK_RE.search(s) or not _SCRIPT_SEAM_RE.search(s):
        return []
    return [w for w in _LETTER_RUN_RE.findall(s) if _is_mixed(w)]


def decode_escapes(s: str) -> str:
    """Decode HTML character references and %-escapes, the cheap transport disguises."""
    if "&" in s and _ENTITY_RE.search(s):
        s = html.unescape(s)
    if "%" in s and _PERCENT_RE.search(s):
        s = unquote(s)
    return s


def fold(s: str) -> str:
    """The normalised matching form of ``s`` (see the module docstring)."""
    s = decode_escapes(s)
    if s.isascii():
        return s.encode().translate(_ASCII_FOLD_NUL).replace(b"\x00", b"").decode()
    if _TAG_RE.search(s):
        s = _TAG_RE.sub(_decode_tags, s)
    s = _DROP_RE.sub("", unicodedata.normalize("NFKD", s)).casefold()
    if s.isascii():  # case folded and controls dropped already: only leetspeak is left
        return s.encode().translate(_ASCII_FOLD).decode()
    if _CYRILLIC_GREEK_RE.search(s) and _SCRIPT_SEAM_RE.search(s):
        s = _LETTER_RUN_RE.sub(_unmix, s)
    return s.translate(_TRANSLATE) if _TRANSLATED_RE.search(s) else s


class View(NamedTuple):
    """A folded text with its letter runs (in order, repeats kept: a set is built only
    when a rule needs one) and its letters only, computed together."""

    text: str
    runs: list[str]
    letters: str


def view(s: str) -> View:
    """``fold(s)`` with the letter runs and ``compact`` of it; ASCII takes byte tables."""
    if "&" in s or "%" in s:
        s = decode_escapes(s)
    if s.isascii():
        fb = s.encode().translate(_ASCII_FOLD_NUL).replace(b"\x00", b"")
        runs = fb.translate(_TO_SPACE_BUT_LETTERS).decode().split()
        return _new_view(View, (fb.decode(), runs, "".join(runs)))
    folded = fold(s)
    return _new_view(View, (folded, _LETTER_RUN_RE.findall(folded), compact(folded)))


# The tuple itself, without the Python-level __new__ a NamedTuple generates.
_new_view = tuple.__new__


def words(folded: str) -> set[str]:
    """The distinct letter runs of a folded text."""
    if folded.isascii():
        return set(folded.encode().translate(_TO_SPACE_BUT_LETTERS).decode().split())
    return set(_LETTER_RUN_RE.findall(folded))


def compact(folded: str) -> str:
    """Only the letters of a folded text: "ig-nore pre.vious" → "ignoreprevious"."""
    if folded.isascii():
        return folded.encode().translate(_TO_SPACE_BUT_LETTERS).replace(b" ", b"").decode()
    return _NON_LETTER_RE.sub("", folded)


def fold_pattern(p: str) -> str:
    """Bring a rule's text into the folded form (compatibility forms, accents dropped)."""
    return _DROP_RE.sub("", unicodedata.normalize("NFKD", p))


def fold_literal(s: str) -> str:
    """A literal trigger or phrase in folded form, digits read as leetspeak like the text."""
    return fold_pattern(s).casefold().translate(_TRANSLATE)


def object_strings(value: Any) -> list[tuple[str, str]]:
    """Every string inside a JSON value, keys included, with a short path."""
    out: list[tuple[str, str]] = []
    _collect(value, "object", 0, out)
    return out


_CONTAINERS = (str, dict, list)


def _collect(value: Any, path: str, depth: int, out: list[tuple[str, str]]) -> None:
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, dict):
        for k, v in value.items():
            p = f"{path}.{k}" if depth < 4 else path
            out.append((f"{p}#key", str(k)))
            if isinstance(v, _CONTAINERS):
                _collect(v, p, depth + 1, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, _CONTAINERS):
                _collect(v, f"{path}[{i}]" if depth < 4 else path, depth + 1, out)


def has_substance(value: Any) -> bool:
    """True if a JSON value holds any non-blank string, number or boolean."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        return any(has_substance(v) for v in value.values())
    if isinstance(value, list):
        return any(has_substance(v) for v in value)
    return value is not None
