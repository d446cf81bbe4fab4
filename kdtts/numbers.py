"""Numbers as English words: cardinals, ordinals, years, digits and decimals (the text front end's vocabulary)."""
from __future__ import annotations

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                      "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
MONTHS = ("January February March April May June July August September October November "
           "December").split()


def number_to_words(n: int) -> str:
    """Cardinal reading of an integer: 1234 -> 'one thousand two hundred thirty-four'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("-" + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_to_words(rest) if rest else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_to_words(head) + " " + name + (" " + number_to_words(rest) if rest else "")
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    """Ordinal reading: 21 -> 'twenty-first'."""
    words = number_to_words(n)
    head, sep, last = words.rpartition("-" if "-" in words.split(" ")[-1] else " ")
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year_words(n: int) -> str:
    """Year reading: 1999 -> 'nineteen ninety-nine', 2005 -> 'two thousand five'."""
    century, rest = divmod(n, 100)
    if 2000 <= n < 2010 or n % 1000 == 0:
        return number_to_words(n)
    if rest == 0:
        return number_to_words(century) + " hundred"
    if rest < 10:
        return number_to_words(century) + " oh " + number_to_words(rest)
    return number_to_words(century) + " " + number_to_words(rest)


def digit_words(s: str) -> str:
    """Digit by digit: '2005' -> 'two oh oh five'."""
    return " ".join("oh" if d == "0" else _ONES[int(d)] for d in s)


def decimal_words(whole: str, frac: str) -> str:
    """'3', '14' -> 'three point one four'."""
    return number_to_words(int(whole.replace(",", "") or 0)) + " point " + " ".join(_ONES[int(d)] for d in frac)
