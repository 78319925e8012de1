# ruff: noqa: RUF001, RUF002
"""Which legacy single-byte encoding a non-UTF-8 text export was saved in, judged, never guessed.

Every single-byte encoding decodes almost any bytes, so "it decodes" proves nothing: a Polish
cp1250 file read as cp1252 gives "£ukasz Wiœniewski", exit 0. Instead each encoding that
spreadsheet programs write is tried on the file's words that hold non-ASCII bytes, and the text it
produces is judged the way a reader would: letters inside words are normal, symbols between
letters are not (``Wi¿niewski``), nor are an uppercase letter inside a lowercase word
(``JŸrgen``), scripts mixed inside one word (``Јukasz``), three accented vowels in a row
(``Èâàí``), a Greek final sigma inside a word, or letters that no single language would use
together (French read as cp1250 needs Czech, Slovak and Polish letters at once). Encodings that
give the same text are one reading. One reading is used only when it is clearly more plausible
than every other; otherwise the file is refused and the candidates are named with sample words.
"""

import codecs
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from importer.errors import InputError

__all__ = ["CANDIDATES", "Reading", "choose_legacy", "normalise_encoding", "sample_words"]

CANDIDATES = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "cp850", "cp437", "mac_roman",
    "iso8859_1", "iso8859_2", "iso8859_15", "koi8_r", "cp866",
)
"""Tried in this order; when several give the same text, the first one names the reading."""

ALIASES = {
    "ms-dos": "cp850", "msdos": "cp850", "dos": "cp850", "csv (ms-dos)": "cp850",
    "x-mac-roman": "mac_roman", "mac": "mac_roman", "macroman": "mac_roman",
    "csv (macintosh)": "mac_roman", "windows": "cp1252", "ansi": "cp1252",
    "x-mac-cyrillic": "mac_cyrillic", "x-mac-ce": "mac_latin2",
}
"""Names spreadsheet programs and people use that Python's codec registry does not know."""

WORD = re.compile(rb"(?<![A-Za-z\x80-\xff])[A-Za-z]*+[\x80-\xff][A-Za-z\x80-\xff]*")
"""A word with a byte above 0x7F; tried only where a word starts, and its ASCII head never
backtracked (a possessive ``*+``), so ordinary ASCII words cost one look each."""
SCAN_BYTES = 1 << 20
MAX_WORDS = 20_000
CLEAR_MARGIN = 5.0
ODD = 10.0
CLUSTER = 3.0
PLAUSIBLE_ODD_SHARE = 0.05
NEW_LANGUAGE = 6.0
VOWELS = frozenset("aeiouyæøœåаеёиоуыэюяіїєαεηιουω")
EXEMPT = frozenset("\u00b7\u02bc\u2019\u2018")

LANGUAGES: dict[str, str] = {
    "German": "äöüß",
    "French": "éèàçêôâîûëïùœÿæ",
    "Spanish": "óíáéñúü",
    "Portuguese": "ãçéáóíêõôâúà",
    "Italian": "àèòùìéóí",
    "Dutch": "ëéïöèáü",
    "Danish/Norwegian": "øåæéó",
    "Swedish/Finnish": "äåöéü",
    "Icelandic": "áðíóúþéæýö",
    "Catalan": "àèéòóíúçïü",
    "Polish": "ęąółżśćńź",
    "Czech": "íáéěřýčšžůúňťďó",
    "Slovak": "áíéýčšžúôäľňťďóŕĺ",
    "Hungarian": "éáőöüóíűú",
    "Croatian/Slovene": "čšžćđ",
    "Romanian": "ășțîâşţ",
    "Albanian": "ëç",
    "Turkish": "ışğüçöâî",
    "Lithuanian": "ąčęėįšųūž",
    "Latvian": "āčēģīķļņšūž",
    "Estonian": "äöüõšž",
    "Russian": "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
    "Ukrainian": "оаніветрсклудмпяизьбгчйхжшюцщєїґф",
    "Bulgarian/Serbian": "оаеинтрсвлкдпмзгяубчцжшйщъьюхфђјљњћџ",
    "Greek": "αοειτνσρκπμυληωγδχθφβξζψςάέίόύήώϊϋΐΰ",
}
"""Non-ASCII letters of the languages single-byte encodings serve (Cyrillic and Greek in full)."""


@dataclass(frozen=True)
class Reading:
    """One way to decode the file: the encodings that give it, its cost, and sample words."""

    encodings: tuple[str, ...]
    cost: float
    odd: float
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.encodings[0]


def normalise_encoding(name: str) -> str:
    """Python's codec name for what a person wrote (``MS-DOS``, ``x-mac-roman``, ``latin1``);
    raises ``LookupError`` for a name nobody knows."""
    wanted = ALIASES.get(name.strip().lower(), name.strip())
    return codecs.lookup(wanted).name


def choose_legacy(path: Path) -> Reading:
    """The one plausible legacy encoding of a file that is not UTF-8; ``InputError`` otherwise."""
    words, present = _scan(path)
    readings = _readings(words, present)
    limit = ODD * max(1.0, PLAUSIBLE_ODD_SHARE * sum(words.values()))
    if not readings or readings[0].odd >= limit:
        likeliest = "; ".join(f"{r.name} ({', '.join(r.words[:4])})" for r in readings[:3])
        raise InputError(f"{path}: the text is not UTF-8 and no single-byte encoding reads it "
                         f"as plausible text (likeliest: {likeliest or 'none'}); pass --encoding "
                         "with the encoding it was saved in")
    best = readings[0]
    rivals = [r for r in readings[1:] if r.cost < best.cost + CLEAR_MARGIN]
    if rivals:
        listed = "; ".join(f"{r.name} ({', '.join(r.words[:4])})" for r in [best, *rivals[:3]])
        raise InputError(f"{path}: the text is not UTF-8, and more than one legacy encoding "
                         f"reads it plausibly: {listed}; pass --encoding with the one whose "
                         "words look right (or set encoding: in the mapping)")
    return best


def sample_words(path: Path, encoding: str, limit: int = 5) -> tuple[str, ...]:
    """The most frequent words with non-ASCII letters, as ``encoding`` decodes them."""
    words, _ = _scan(path)
    return _sample(words, encoding, limit)


def _scan(path: Path) -> tuple[Counter[bytes], set[int]]:
    """Words holding non-ASCII bytes (how often each occurs), and every byte above 0x7F; the
    last file's answer is kept, since choosing the encoding and the summary both need it."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _LAST_SCAN:
        _LAST_SCAN.clear()
        _LAST_SCAN[key] = _scan_file(path)
    return _LAST_SCAN[key]


_LAST_SCAN: dict[tuple[str, int, int], tuple[Counter[bytes], set[int]]] = {}


def _scan_file(path: Path) -> tuple[Counter[bytes], set[int]]:
    words: Counter[bytes] = Counter()
    present: set[int] = set()
    carry = b""
    with path.open("rb") as f:
        while block := f.read(SCAN_BYTES):
            block = carry + block
            cut = max(block.rfind(b"\n"), 0)
            block, carry = block[:cut], block[cut:]
            _count(block, words, present)
    _count(carry, words, present)
    return words, present


def _count(block: bytes, words: Counter[bytes], present: set[int]) -> None:
    """Counted in C (``Counter.update``); past ``MAX_WORDS`` distinct words only the most
    frequent are kept, so memory stays bounded on any file."""
    if block.isascii():
        return
    present.update(block.translate(None, bytes(range(128))))
    words.update(WORD.findall(block))
    if len(words) > 2 * MAX_WORDS:
        kept = dict(words.most_common(MAX_WORDS))
        words.clear()
        words.update(kept)


def _readings(words: Counter[bytes], present: set[int]) -> list[Reading]:
    """Every candidate that decodes all bytes, merged by the text it gives, cheapest first."""
    high = bytes(sorted(present))
    by_text: dict[tuple[str, ...], list[str]] = {}
    for encoding in CANDIDATES:
        try:
            text = tuple(high.decode(encoding))
        except UnicodeDecodeError:
            continue
        by_text.setdefault(text, []).append(encoding)
    readings = [Reading(tuple(names), *_cost(words, names[0]), _sample(words, names[0], 5))
                for names in by_text.values()]
    return sorted(readings, key=lambda r: r.cost)


def _sample(words: Counter[bytes], encoding: str, limit: int) -> tuple[str, ...]:
    out: list[str] = []
    for word, _ in words.most_common():
        text = word.decode(encoding, errors="replace")
        if any(ch.isalpha() and not ch.isascii() for ch in text) and text not in out:
            out.append(text)
        if len(out) == limit:
            break
    return tuple(out)


def _cost(words: Counter[bytes], encoding: str) -> tuple[float, float]:
    """Implausibility of the text, and the part of it that no real text has.

    Odd characters and letters of no language weigh ``ODD`` per occurrence; consonant clusters
    and every language beyond the first needed to account for the letters cost a little (a
    pan-European customer list mixes German, French and Danish names)."""
    cost = odd_cost = 0.0
    letters: Counter[str] = Counter()
    for word, count in words.items():
        text = word.decode(encoding)
        odd, clusters = _oddities(text)
        odd_cost += count * ODD * odd
        cost += count * CLUSTER * clusters
        for ch in text:
            key = ch.lower()[:1]
            if ch.isalpha() and not key.isascii():
                letters[key] += count
    uncovered, languages = _cover(letters)
    odd_cost += ODD * (uncovered + _stray_letters(words, encoding))
    return odd_cost + cost + NEW_LANGUAGE * max(0, languages - 1), odd_cost


def _stray_letters(words: Counter[bytes], encoding: str) -> int:
    """Cyrillic or Greek letters standing alone (``5 Ђ`` for ``5 €``) in a file that has no
    word of two or more letters in that script: a symbol read as a letter."""
    lone: Counter[str] = Counter()
    scripts: set[str] = set()
    for word, count in words.items():
        text = word.decode(encoding)
        letters = [ch for ch in text if ch.isalpha()]
        if len(letters) == 1 and not letters[0].isascii():
            lone[_script(letters[0])] += count
        elif len(letters) > 1:
            scripts.update(_script(ch) for ch in letters)
    return sum(n for script, n in lone.items() if script != "LATIN" and script not in scripts)


def _oddities(word: str) -> tuple[int, int]:
    """Clear oddities, and softer ones: a non-ASCII consonant between two consonants
    (``Lefčvre``, French ``è`` read as cp1250), which real names have only now and then."""
    odd = clusters = 0
    scripts = {_script(ch) for ch in word if ch.isalpha()}
    if len(scripts) > 1:
        odd += 1
    run = 0
    for i, ch in enumerate(word):
        if ch.isascii():
            run = 0
            continue
        before = word[i - 1] if i else ""
        after = word[i + 1] if i + 1 < len(word) else ""
        if not ch.isalpha():
            odd += _odd_symbol(ch, before, after)
            run = 0
            continue
        run = run + 1 if _script(ch) == "LATIN" and _kind(ch) == "v" else 0
        odd += run == 3
        odd += _odd_case(ch, before, after)
        odd += ch == "ς" and after.isalpha()
        clusters += all(_kind(c) == "c" for c in (before, ch, after))
    return odd, clusters


def _kind(ch: str) -> str:
    """``v`` vowel, ``c`` consonant, ``""`` not a letter (accents stripped first)."""
    if not ch.isalpha():
        return ""
    base = unicodedata.normalize("NFD", ch.lower())[:1]
    return "v" if base in VOWELS else "c"


def _odd_symbol(ch: str, before: str, after: str) -> bool:
    """A control character or a graphic symbol (box drawing) anywhere, a symbol between two
    letters, or a currency, maths or
    modifier sign touching a letter (``£ukasz``)."""
    category = unicodedata.category(ch)
    if category in ("Cc", "Cn", "Co") or (category == "So" and ch not in "®™©°"):
        return True
    if ch in EXEMPT or category in ("Pd", "Pi", "Pf"):
        return False
    if before.isalpha() and after.isalpha():
        return True
    touching = before.isalpha() or after.isalpha()
    return touching and category[0] in "SNC" and ch not in "®™©°"


def _odd_case(ch: str, before: str, after: str) -> bool:
    """An uppercase letter after a lowercase one, or inside a capitalised word (``MŸller``)."""
    if not ch.isupper():
        return False
    return before.islower() or (before.isalpha() and after.islower())


def _script(ch: str) -> str:
    return unicodedata.name(ch, "UNKNOWN").split(" ")[0]


def _cover(letters: Counter[str]) -> tuple[int, int]:
    """Greedy cover of the letters by languages: occurrences left uncovered, languages used."""
    left = dict(letters)
    used = 0
    while left:
        name, covered = max(((n, sum(c for ch, c in left.items() if ch in alphabet))
                             for n, alphabet in LANGUAGES.items()), key=lambda pair: pair[1])
        if not covered:
            break
        used += 1
        left = {ch: c for ch, c in left.items() if ch not in LANGUAGES[name]}
    return sum(left.values()), used

