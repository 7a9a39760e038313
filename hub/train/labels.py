"""Label values in data tables: one spelling per class, and columns that look swapped.

Normalisation: JSONL and CSV give the same class in several spellings (``1``, ``1.0``, ``"1"``,
``" 1 "``, ``"01"``). A label that reads as a finite number becomes its shortest form (``"1"``,
``"2.5"``); ``true``/``false`` (JSON booleans, or those words in any case) become ``"true"`` /
``"false"``; any other text is kept as written, trimmed (``"Cat"`` and ``"cat"`` stay two classes).
Spellings merged into one class are reported in a warning. Booleans mixed with numbers are
refused: whether ``true`` means ``1`` is a guess the hub does not make. ``NaN`` (a spreadsheet's
empty cell) is a missing label. Two more things are kept as written but warned about, since each
is more often a slip than a choice: labels that differ only in case (``"One"``, ``"one"``: two
classes), and numbers mixed with words in one column (``1``, ``1.5``, ``"One"``: three classes).

Swapped columns: free text in the label column while the text column holds short names, or (in
training data) a different label on every row, are refused with the columns named and the
``--text-column`` / ``--label-column`` fix.
"""
from __future__ import annotations

import math
import re
import statistics

from hub.errors import HubError

BOOLEAN_WORDS = {"true": "true", "false": "false"}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
FREE_TEXT_WORDS = 4  # a median label of this many words reads as a sentence, not a class name
MIN_ROWS_ALL_DISTINCT = 5  # fewer rows with one label each can be a deliberate smoke test
FIX = "Name the right columns with --text-column/--label-column (text_column=/label_column= in Python)"


def canonical(value) -> str:
    """The class name of a raw label value: numbers in their shortest form, booleans as true/false."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(float(value)) if isinstance(value, float) else str(value)
    text = str(value).strip()
    if text.lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[text.lower()]
    if _NUMBER.fullmatch(text):
        return _number_text(float(text)) if not text.lstrip("+-").isdigit() else str(int(text))
    return text


def _number_text(number: float) -> str:
    if not math.isfinite(number):
        return ""  # NaN / inf: a missing label
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)


def spelling(value) -> str:
    """How a raw value was written, for the merge warning (``1``, ``1.0``, ``"1"``, ``true``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return f'"{value}"'


class LabelSpellings:
    """The raw spellings seen for each class name, and where each kind of label first appeared."""

    def __init__(self):
        self.seen: dict[str, dict[str, str]] = {}  # class name -> {spelling: first where}

    def add(self, value, where: str) -> str:
        name = canonical(value)
        if name:
            self.seen.setdefault(name, {}).setdefault(spelling(value), where)
        return name

    def check(self, what: str, column: str) -> str | None:
        """Refuse booleans mixed with numbers; return a warning listing merged spellings, if any."""
        booleans = [n for n in self.seen if n in BOOLEAN_WORDS.values()]
        numbers = [n for n in self.seen if _NUMBER.fullmatch(n)]
        if booleans and numbers:
            b_where = next(iter(self.seen[booleans[0]].values()))
            n_where = next(iter(self.seen[numbers[0]].values()))
            raise HubError(f"{what}: the label column '{column}' mixes true/false with numbers ({booleans[0]} at "
                           f"{b_where}, {numbers[0]} at {n_where}); whether true means 1 is not guessed. Use one "
                           "kind of label: all numbers, or all words")
        notes = [note for note in (self._merged(), self._case_variants(), self._numbers_and_words(column)) if note]
        return f"{what}: " + ". Also: ".join(notes) if notes else None

    def _merged(self) -> str | None:
        merged = [f"{', '.join(forms)} -> \"{name}\"" for name, forms in sorted(self.seen.items())
                  if len(forms) > 1]
        return f"label spellings merged into one class each: {_first(merged)}" if merged else None

    def _case_variants(self) -> str | None:
        """Word labels that differ only in case ("One", "one"): kept as separate classes, named here."""
        groups: dict[str, list[str]] = {}
        for name in sorted(self.seen):
            groups.setdefault(name.casefold(), []).append(name)
        variants = [", ".join(f'"{n}" ({self._where(n)})' for n in names) for names in groups.values()
                    if len(names) > 1]
        if not variants:
            return None
        return (f"labels that differ only in case are separate classes: {_first(variants)}; if they are one class, "
                "write it the same way on every row")

    def _numbers_and_words(self, column: str) -> str | None:
        """Numbers and words in one label column: each its own class, which is seldom what was meant."""
        numbers = sorted((n for n in self.seen if _NUMBER.fullmatch(n)), key=float)
        words = sorted(n for n in self.seen if not _NUMBER.fullmatch(n) and n not in BOOLEAN_WORDS.values())
        if not numbers or not words:
            return None
        return (f"the label column '{column}' mixes numbers ({self._shown(numbers)}) with words "
                f"({self._shown(words)}); each value is its own class, so a number and the word for it are two "
                "classes. Use one kind of label")

    def _where(self, name: str) -> str:
        return next(iter(self.seen[name].values()))

    def _shown(self, names: list[str], count: int = 3) -> str:
        return ", ".join(f'"{n}" ({self._where(n)})' for n in names[:count]) + (", ..." if len(names) > count else "")


def _first(items: list[str], count: int = 10) -> str:
    """The first ``count`` items joined with '; ', and how many more there are."""
    return "; ".join(items[:count]) + (f"; ... {len(items) - count} more" if len(items) > count else "")


def check_not_swapped(what: str, records, text_column: str, label_column: str, training: bool) -> None:
    """Refuse text-classification rows whose text and label columns look swapped."""
    rows = [r for r in records if isinstance(r.input, str) and isinstance(r.label, str)]
    if not rows:
        return
    labels = [r.label for r in rows]
    label_words = statistics.median(len(x.split()) for x in labels)
    label_chars = statistics.median(len(x) for x in labels)
    text_chars = statistics.median(len(r.input) for r in rows)
    example = max(labels, key=len)
    shown = example if len(example) <= 60 else example[:57] + "..."
    if label_words >= FREE_TEXT_WORDS and label_chars > text_chars:
        raise HubError(f"{what}: the label column '{label_column}' holds free text (e.g. '{shown}') and the text "
                       f"column '{text_column}' shorter values; the columns look swapped. {FIX}")
    distinct = len(set(labels))
    if training and len(rows) >= MIN_ROWS_ALL_DISTINCT and distinct == len(rows):
        raise HubError(f"{what}: every one of its {len(rows)} rows has a different label in column "
                       f"'{label_column}' (e.g. '{shown}'), so there are as many classes as rows; the text and "
                       f"label columns look swapped, or '{label_column}' is not a class column. {FIX}")


def check_media_not_swapped(what: str, rows, input_column: str, label_column: str, suffixes) -> None:
    """Refuse image/audio tables whose label column holds the file names and the input column does not."""
    def is_file(value) -> bool:
        return isinstance(value, str) and any(value.strip().lower().endswith(s) for s in suffixes)

    values = [row for _, row in rows]
    in_labels = sum(is_file(row.get(label_column)) for row in values)
    in_inputs = sum(is_file(row.get(input_column)) for row in values)
    if values and in_labels > len(values) / 2 and in_inputs == 0:
        example = next(row.get(label_column) for row in values if is_file(row.get(label_column)))
        raise HubError(f"{what}: the label column '{label_column}' holds file names (e.g. '{example}') and the "
                       f"file column '{input_column}' none; the columns look swapped. {FIX}")
