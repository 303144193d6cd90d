"""Text as the safety rule reads it: disguises undone, every character traced to the original.

People in distress type fast, on phones, and some hide what they write from a filter or from
someone looking over their shoulder. So before any pattern is tried the text is folded:
Unicode NFKC (full-width letters, ligatures), format characters removed (zero-width spaces and
joiners, soft hyphens, byte-order marks, bidi controls), accents stripped, Cyrillic and Greek
look-alike letters read as the Latin letters they imitate, apostrophes dropped ("don't" and
"dont" read alike), leetspeak inside words read as letters ("su1c1dal"), letter-spaced words
joined ("d i e", "k.m.s"), long letter runs shortened ("diieee") and a few common misspellings
of the words that matter corrected ("myslef", "sucidal").

Each folded character remembers which original character produced it, so a match can be shown
(and tested) as a span of what the person actually wrote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Look-alikes a filter-dodger (or a Cyrillic keyboard) produces: a small table on purpose.
# Unicode's full confusables skeleton also maps "rn" to "m" and digits to letters, which would
# change ordinary English words.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "д": "d", "л": "l", "п": "n", "г": "r", "у": "y", "х": "x", "ѕ": "s",
    "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ո": "n", "ս": "u", "ց": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s", "σ": "s", "γ": "y", "δ": "d",
    "λ": "l", "π": "n", "θ": "o",
    # Latin extensions and symbols that read as letters
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ß": "ss", "æ": "ae", "œ": "oe",
    "ⅰ": "i", "ℓ": "l",
}
_APOSTROPHES = set("'’‘‛ʼʹʻ`´′＇")
_DASHES = set("-‐‑‒–—―−﹘﹣－_~")
# leetspeak: read as a letter only inside a word (next to a letter), so "2 pills", "100%" and
# a closing "!" stay as they are
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "l", "€": "e", "£": "l", "+": "t", "¡": "i"}
_WILDCARDS = set("*#")

# Misspellings that no ordinary English word is one slip away from. Short words are corrected
# only from this list; long ones (six letters or more) also by one edit.
_TYPOS = {
    "kil": "kill", "kiling": "killing", "klil": "kill", "kll": "kill", "kilme": "kill me",
    "wnat": "want", "watn": "want", "wnt": "want", "wana": "wanna", "wanan": "wanna",
    "dei": "die", "diee": "die", "diie": "die", "dyin": "dying", "ded": "dead", "daed": "dead",
    "lfie": "life", "lif": "life", "liev": "live", "lvie": "live", "liveing": "living",
    "slef": "self", "sefl": "self", "hram": "harm", "harn": "harm", "hamr": "harm",
    "myslf": "myself", "mysel": "myself", "myselfe": "myself", "meself": "myself",
    "mysefl": "myself", "myslef": "myself", "msyelf": "myself", "mysself": "myself",
    "sucide": "suicide", "suiside": "suicide", "suicde": "suicide", "sucidal": "suicidal",
    "suicdal": "suicidal", "suisidal": "suicidal", "sucicidal": "suicidal",
    "suidical": "suicidal", "sucidial": "suicidal", "suicidial": "suicidal",
    "suicida": "suicidal", "suacide": "suicide", "sueside": "suicide", "siucide": "suicide",
    "overdoes": "overdose", "overdosed": "overdosed", "overdsoe": "overdose",
    "cuting": "cutting", "cuttin": "cutting", "cutitng": "cutting", "burnin": "burning",
    "anymroe": "anymore", "anymor": "anymore", "nomore": "no more", "nobdy": "nobody",
    "noone": "no one", "evryone": "everyone", "everyon": "everyone", "becuase": "because",
    "tablest": "tablets", "tabs": "tablets", "paracetomol": "paracetamol",
    "paracetemol": "paracetamol", "paracetmol": "paracetamol", "parcetamol": "paracetamol",
    "pils": "pills", "idw": "i dont want", "idwt": "i dont want", "idwanna": "i dont want to",
    "saf": "safe", "sfae": "safe", "sefe": "safe", "wud": "would", "wd": "would",
    "beter": "better", "bettr": "better",
    "nite": "night", "tonigt": "tonight", "tonihgt": "tonight", "plls": "pills",
    "wakeup": "wake up", "cnat": "cant",
    "dnot": "dont", "odnt": "dont", "didnt": "didnt", "imma": "im going to",
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "kinda": "kind of",
    "u": "you", "ur": "your", "r": "are", "2day": "today", "2nite": "tonight",
    "tonite": "tonight", "2night": "tonight", "tmrw": "tomorrow", "b4": "before",
    "unalive": "unalive", "sewerslide": "suicide", "suicied": "suicide", "sucid": "suicid",
    "seppuku": "suicide", "selfharm": "self harm", "selfharming": "self harming",
    "selfharmed": "self harmed", "killmyself": "kill myself", "endmylife": "end my life",
    "alvie": "alive", "aliv": "alive", "dissapear": "disappear", "disapear": "disappear",
    "forevr": "forever", "tierd": "tired", "jsut": "just", "bout": "about", "abt": "about",
    "tae": "to", "nae": "no", "mair": "more", "mesen": "myself", "masel": "myself",
    "mysen": "myself", "maself": "myself", "owt": "anything", "nowt": "nothing",
    "cannae": "cant", "aboot": "about", "noo": "now", "rarther": "rather",
    "rahter": "rather", "honnestly": "honestly", "wi": "with", "dinnae": "dont",
    "wantin": "wanting", "nicht": "night", "saef": "safe", "wivout": "without",
    "witout": "without", "wihtout": "without", "savign": "saving", "wen": "when",
    "bin": "been",
    "hopless": "hopeless", "hopelss": "hopeless", "burdon": "burden", "bruden": "burden",
}
_FUZZY_WORDS = ("myself", "disappear", "suicide", "suicidal", "overdose", "overdosed",
                "overdosing",
                "paracetamol", "ligature", "hopeless", "worthless", "pointless", "unalive",
                "tablets", "anymore", "everyone", "everybody", "nobody", "tonight")
_SPACED = re.compile(r"(?<![a-z])[a-z](?:([ .\-*/,])\1?[a-z](?![a-z])){2,}(?:[.\-*/,](?= ))?")
_INNER_PUNCT = re.compile(r"(?<=[a-z])[.\-/\\,:](?=[a-z])")
_RUNS = re.compile(r"([a-z])\1{2,}")
_WORD = re.compile(r"[a-z0-9*#@$!|€£+¡]+")
_SPACES = re.compile(r"\s{2,}")
# "want 2 die": text-speak "2" for "to" after the verbs that take it
_TEXT_TWO = re.compile(r"\b(want|wanna|going|gonna|need|wish|like|try|trying|about|ready|"
                       r"decided|plan|planning|tempted|able|have|got|urge) 2 (?=[a-z])")


@dataclass(frozen=True, slots=True)
class Folded:
    """Folded text; ``origin[i]`` is the index in the original of folded character ``i``."""

    text: str
    origin: tuple[int, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if not self.origin:
            return (0, 0)
        start = min(start, len(self.origin) - 1)
        end = max(start + 1, min(end, len(self.origin)))
        return self.origin[start], self.origin[end - 1] + 1


def _fold_char(ch: str) -> str:
    if ch in _APOSTROPHES:
        return ""
    if ch in _DASHES:
        return "-"
    if ch.isspace():
        return " "
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        if c in _APOSTROPHES:
            continue
        if c in _DASHES:
            out.append("-")
            continue
        if c.isspace():
            out.append(" ")
            continue
        cat = unicodedata.category(c)
        if cat == "Cf" or cat.startswith("M"):  # format characters, combining marks
            continue
        low = c.lower()
        low = _CONFUSABLES.get(low, low)
        if not low.isascii():
            decomposed = unicodedata.normalize("NFKD", low)
            low = "".join(d for d in decomposed if not unicodedata.combining(d)) or low
            low = _CONFUSABLES.get(low, low)
        out.append(low)
    return "".join(out)


class _Builder:
    """Characters with origins, rewritten pass by pass."""

    def __init__(self, chars: list[str], origin: list[int]) -> None:
        self.chars = chars
        self.origin = origin

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def sub(self, pattern: re.Pattern[str], repl: object) -> None:
        """Replace each match by ``repl(match)``; new characters take origins from the
        characters they replace, in order (the last one repeating)."""
        text = self.text
        chars: list[str] = []
        origin: list[int] = []
        pos = 0
        for m in pattern.finditer(text):
            new = repl(m) if callable(repl) else str(repl)
            if new == m.group(0):
                continue
            chars.extend(self.chars[pos:m.start()])
            origin.extend(self.origin[pos:m.start()])
            span = self.origin[m.start():m.end()] or self.origin[max(m.start() - 1, 0):
                                                                  m.start()] or [0]
            for k, ch in enumerate(new):
                chars.append(ch)
                # the last new character ends where the replaced text ended
                origin.append(span[-1] if k == len(new) - 1 else span[min(k, len(span) - 1)])
            pos = m.end()
        chars.extend(self.chars[pos:])
        origin.extend(self.origin[pos:])
        self.chars, self.origin = chars, origin


# a number with its ordinal or unit ("1st year", "in my 20s", "3rd", "6ft", "50mg"): no leet
_NUMBER_WORD = re.compile(
    r"\d*1st|\d*2nd|\d*3rd|\d+th|\d+(?:s|am|pm|ft|mg|ml|kg|hrs?|yrs?|wks?|mins?)")


def _deleet(m: re.Match[str]) -> str:
    word = m.group(0)
    if not any(c.isalpha() for c in word) or _NUMBER_WORD.fullmatch(word):
        return word
    out = []
    for k, c in enumerate(word):
        # inside a word or leading one ("3nd", "k1ll"), never trailing ("die!", "ok!!")
        rest = word[k + 1:]
        if (c in _LEET and (k == 0 or word[k - 1].isalpha() or word[k - 1] in _LEET)
                and (any(d.isalpha() for d in rest)
                     # trailing digits too ("d13"), never trailing punctuation ("ok!!")
                     or (k > 0 and c.isdigit() and all(d.isdigit() for d in rest)))):
            out.append(_LEET[c])
        else:
            out.append(c)
    return "".join(out)


def _within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance at most 1, or one swap of neighbours."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [k for k in range(la) if a[k] != b[k]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b = b, a
    k = 0
    while k < len(a) and a[k] == b[k]:
        k += 1
    return a[k:] == b[k + 1:]


_VOCABULARY = sorted(set(_TYPOS.values()) | set(_FUZZY_WORDS) | {
    "kill", "killing", "die", "dead", "death", "dying", "life", "live", "living", "self",
    "harm", "hurt", "hurting", "cut", "burn", "burning", "want", "wanna", "wake", "sleep",
    "forever", "pills", "end", "ending", "suicid"})


_SHORT_WORDS = frozenset({"dead", "die", "life", "live", "want", "self", "harm", "hurt", "cut",
                          "burn", "pills", "end", "wake", "safe"})


_ING_WORDS = frozenset({
    "thinking", "ending", "cutting", "doing", "wanting", "dragging", "knocking", "killing",
    "hurting", "burning", "harming", "planning", "saving", "googling", "looking", "wishing",
    "hoping", "dying", "feeling", "going", "trying", "taking", "giving", "saying", "writing",
    "scratching", "hitting", "living", "starving", "punching", "jumping", "crying",
    "sleeping", "waking", "stockpiling", "hiding", "coping", "drinking", "hanging",
    "topping", "having", "offing"})


def _fix_word(m: re.Match[str]) -> str:
    word = m.group(0)
    if word in _TYPOS:
        return _TYPOS[word]
    if any(c in _WILDCARDS for c in word) and any(c.isalpha() for c in word):
        # "k*ll", "su*cide": a symbol standing for a letter of a word that matters
        pattern = re.compile("".join("[a-z]" if c in _WILDCARDS else re.escape(c)
                                     for c in word) + r"\Z")
        found = [w for w in _VOCABULARY if " " not in w and pattern.match(w)]
        if len(found) == 1:
            return found[0]
        return word
    if word.isalpha() and word not in _VOCABULARY:
        single = re.sub(r"([a-z])\1", r"\1", word)
        if single != word and single in _SHORT_WORDS:
            return single
    if len(word) >= 4 and word.endswith("in") and word + "g" in _ING_WORDS:
        return word + "g"  # "thinkin", "endin", "cuttin"
    if len(word) >= 6 and word.isalpha():
        for target in _FUZZY_WORDS:
            if word == target + "s":
                continue  # a plural is a word of its own ("overdoses" is mostly clinical)
            if word != target and _within_one_edit(word, target):
                return target
    return word


_GLUE_WORDS = frozenset({
    "i", "im", "want", "wanna", "to", "die", "dead", "be", "kill", "killing", "myself", "end",
    "ending", "my", "life", "it", "all", "self", "harm", "harming", "hurt", "cut", "cutting",
    "not", "dont", "live", "alive", "here", "anymore", "wake", "up", "suicide", "suicidal",
    "feel", "safe", "tonight", "no", "one", "would", "miss", "me", "better", "off", "without",
    "just", "so", "done", "with"})


def _unglue(m: re.Match[str]) -> str:
    """A long token made wholly of the words that matter, split back into them."""
    word = m.group(0)
    if word in _VOCABULARY or word in _GLUE_WORDS:
        return word
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 9), end):
            head = best[start]
            if head is not None and word[start:end] in _GLUE_WORDS and (
                    best[end] is None or len(head) + 1 < len(best[end] or [])):
                best[end] = [*head, word[start:end]]
    parts = best[len(word)]
    return " ".join(parts) if parts and len(parts) >= 3 else word


_GLUED = re.compile(r"[a-z]{8,}")


def fold(text: str) -> Folded:
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for c in _fold_char(ch):
            chars.append(c)
            origin.append(index)
    b = _Builder(chars, origin)
    b.sub(_WORD, _deleet)
    b.sub(_SPACED, lambda m: re.sub(r"[ .\-*/,]", "", m.group(0)))  # "k.i.l.l. m.y.s.e.l.f"
    b.sub(_INNER_PUNCT, " ")
    b.sub(_RUNS, lambda m: m.group(1))
    b.sub(_GLUED, _unglue)
    b.sub(_WORD, _fix_word)
    b.sub(_TEXT_TWO, lambda m: m.group(1) + " to ")
    b.sub(_SPACES, " ")
    return Folded(b.text, tuple(b.origin))
