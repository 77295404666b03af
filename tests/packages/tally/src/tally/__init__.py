"""Word counts, with toolz (a dependency the worker host does not have)."""

from toolz import frequencies


def count_words(text: str) -> dict[str, int]:
    return dict(frequencies(text.split()))


def most_common(text: str) -> str:
    counts = count_words(text)
    return max(sorted(counts), key=counts.get) if counts else ""


def top(text: str, n: int) -> list[str]:
    """The n most frequent words (not covered by the tests: coverage is below 100 %)."""
    counts = count_words(text)
    return sorted(counts, key=lambda word: (-counts[word], word))[:n]
