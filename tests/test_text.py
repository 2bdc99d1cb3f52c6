"""Plain-text hygiene: folding, slugs, truncation, control characters, paragraphs."""

from __future__ import annotations

import pytest

from syndicate.errors import ContentError
from syndicate.text import SLUG, check_text, fold, html_paragraphs, slugify, truncate_words

# --- fold -----------------------------------------------------------------------------------


def test_fold_lowercases() -> None:
    assert fold("TRAFFICKING") == "trafficking"


@pytest.mark.parametrize("spelling", ["Türkiye", "TÜRKİYE", "TURKIYE", "turkiye", "Turkıye"])
def test_fold_makes_turkiye_spellings_equal(spelling: str) -> None:
    assert fold(spelling) == "turkiye"


@pytest.mark.parametrize(("word", "folded"), [("İstanbul", "istanbul"), ("ıI", "ii")])
def test_fold_reads_turkish_dotted_and_dotless_i_as_i(word: str, folded: str) -> None:
    assert fold(word) == folded


def test_fold_removes_turkish_cedillas_and_breves() -> None:
    assert fold("Şanlıurfa Göç Ağı") == "sanliurfa goc agi"


def test_fold_removes_other_accents() -> None:
    assert fold("Genève, São Paulo, Kraków") == "geneve, sao paulo, krakow"


def test_fold_spells_out_letters_without_marks() -> None:
    assert fold("Łódź Øresund Straße") == "lodz oresund strasse"


def test_fold_keeps_punctuation_and_spaces() -> None:
    assert fold("A–B, c d!") == "a–b, c d!"


def test_fold_is_idempotent() -> None:
    once = fold("İSTANBUL’da Göç")
    assert fold(once) == once


# --- slugify --------------------------------------------------------------------------------


def test_slugify_lowercases_and_joins_words_with_hyphens() -> None:
    assert slugify("IOM and EU Help Migrants") == "iom-and-eu-help-migrants"


def test_slugify_collapses_punctuation_into_one_hyphen() -> None:
    assert slugify("Migration -- with   dignity!?") == "migration-with-dignity"


def test_slugify_strips_leading_and_trailing_hyphens() -> None:
    assert slugify("  «Going home» ") == "going-home"


def test_slugify_spells_turkish_letters_in_ascii() -> None:
    assert slugify("Göç İdaresi Şanlıurfa'da Çalıştay") == "goc-idaresi-sanliurfa-da-calistay"


def test_slugify_gives_ascii_only() -> None:
    slug = slugify("Türkiye — 2026: Ürün, Çağrı & Øre")
    assert slug.isascii()
    assert SLUG.match(slug)


def test_slugify_keeps_digits() -> None:
    assert slugify("2025 Report: 1 in 5") == "2025-report-1-in-5"


def test_slugify_keeps_short_text_whole() -> None:
    assert slugify("voluntary return", max_length=80) == "voluntary-return"


def test_slugify_cuts_long_text_at_a_hyphen() -> None:
    assert slugify("counter trafficking expertise", max_length=20) == "counter-trafficking"


def test_slugify_never_exceeds_max_length() -> None:
    title = "IOM and DGMM strengthen counter-trafficking expertise in Türkiye " * 3
    for limit in range(5, 90):
        slug = slugify(title, max_length=limit)
        assert len(slug) <= limit
        assert SLUG.match(slug)


def test_slugify_keeps_word_ending_exactly_at_max_length() -> None:
    assert slugify("ab cd ef", max_length=5) == "ab-cd"


def test_slugify_cuts_a_single_long_word_at_max_length() -> None:
    assert slugify("Counterterrorism", max_length=7) == "counter"


def test_slugify_default_max_length_is_80() -> None:
    slug = slugify("word " * 40)
    assert len(slug) <= 80
    assert slug.endswith("word")


def test_slugify_of_punctuation_only_is_empty() -> None:
    assert slugify("— !? —") == ""


# --- truncate_words -------------------------------------------------------------------------

LONG = "IOM and the European Union help vulnerable migrants return home in safety and dignity"


def test_truncate_words_leaves_short_text_untouched() -> None:
    assert truncate_words("Short summary.", limit=300) == "Short summary."


def test_truncate_words_leaves_text_of_exactly_the_limit_untouched() -> None:
    assert truncate_words("abcde", limit=5) == "abcde"


def test_truncate_words_marks_the_cut_with_an_ellipsis() -> None:
    assert truncate_words(LONG, limit=30).endswith("…")


def test_truncate_words_cuts_at_a_word_boundary() -> None:
    cut = truncate_words(LONG, limit=30)
    assert cut == "IOM and the European Union…"
    assert LONG.startswith(cut.removesuffix("…") + " ")


def test_truncate_words_never_exceeds_the_limit() -> None:
    for limit in range(1, len(LONG)):
        assert len(truncate_words(LONG, limit=limit)) <= limit


def test_truncate_words_drops_trailing_punctuation_before_the_ellipsis() -> None:
    assert truncate_words("Ankara, Istanbul, Izmir and Gaziantep", limit=20) == "Ankara, Istanbul…"


def test_truncate_words_cuts_a_single_long_word_within_the_limit() -> None:
    assert truncate_words("Counterterrorism", limit=8) == "Counter…"


def test_truncate_words_default_limit_is_300() -> None:
    text = "word " * 100
    cut = truncate_words(text)
    assert len(cut) <= 300
    assert cut.endswith("word…")


# --- check_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f", "\ufffe", "\uffff"],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_check_text_rejects_xml_illegal_characters(char: str) -> None:
    with pytest.raises(ContentError) as caught:
        check_text(f"ab{char}cd", "summary")
    assert str(caught.value) == (f"summary: contains the control character U+{ord(char):04X} at 2")
    assert caught.value.field == "summary"


@pytest.mark.parametrize("char", ["\ud800", "\udbff", "\udc00", "\udfff"], ids=ascii)
def test_check_text_rejects_lone_surrogates(char: str) -> None:
    with pytest.raises(ContentError) as caught:
        check_text(f"a{char}", "title")
    assert str(caught.value) == f"title: contains the control character U+{ord(char):04X} at 1"


@pytest.mark.parametrize("char", ["\t", "\n", "\r"], ids=["tab", "newline", "return"])
def test_check_text_allows_tab_and_newlines(char: str) -> None:
    assert check_text(f"a{char}b", "body") == f"a{char}b"


def test_check_text_allows_ordinary_unicode() -> None:
    text = "İstanbul – “göç” 🌍 \u00a0 \u2028 \U0010fffd"
    assert check_text(text, "title") == text


def test_check_text_reports_the_first_illegal_character() -> None:
    with pytest.raises(ContentError) as caught:
        check_text("a\x07b\x00", "title")
    assert str(caught.value) == "title: contains the control character U+0007 at 1"


def test_check_text_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        check_text("\x00", "title")


# --- html_paragraphs ------------------------------------------------------------------------


def test_html_paragraphs_first_is_the_first_paragraph() -> None:
    html = "<p>ANKARA – IOM <strong>welcomes</strong> the news.</p><p>More details.</p>"
    assert html_paragraphs(html)[0] == "ANKARA – IOM welcomes the news."


def test_html_paragraphs_splits_blocks() -> None:
    html = (
        "<h2>Title</h2><p>One</p><ul><li>Two</li><li>Three</li></ul><blockquote>Four</blockquote>"
    )
    assert html_paragraphs(html) == ["Title", "One", "Two", "Three", "Four"]


def test_html_paragraphs_collapses_white_space() -> None:
    assert html_paragraphs("<p>  one\n\n   two\tthree </p>") == ["one two three"]


def test_html_paragraphs_decodes_entities() -> None:
    assert html_paragraphs("<p>Fish &amp; chips&nbsp;&mdash; T&uuml;rkiye</p>") == [
        "Fish & chips — Türkiye"
    ]


def test_html_paragraphs_drops_script_content() -> None:
    html = "<p>Before</p><script>var secret = '<p>not text</p>';</script><p>After</p>"
    assert html_paragraphs(html) == ["Before", "After"]


def test_html_paragraphs_drops_style_content() -> None:
    html = "<style>p { color: red }</style><p>Visible</p>"
    assert html_paragraphs(html) == ["Visible"]


def test_html_paragraphs_drops_uppercase_script_tags() -> None:
    assert html_paragraphs("<SCRIPT>alert(1)</SCRIPT><P>Text</P>") == ["Text"]


def test_html_paragraphs_skips_empty_blocks() -> None:
    assert html_paragraphs("<p> </p><div></div><p>Only</p>") == ["Only"]


def test_html_paragraphs_reads_plain_text_as_one_paragraph() -> None:
    assert html_paragraphs("Just text, no markup.") == ["Just text, no markup."]


def test_html_paragraphs_splits_at_line_breaks() -> None:
    assert html_paragraphs("Line one<br>Line two") == ["Line one", "Line two"]


def test_html_paragraphs_ignores_attributes() -> None:
    html = '<p><a href="https://example.org/x" title="Hidden">Shown</a></p>'
    assert html_paragraphs(html) == ["Shown"]


def test_html_paragraphs_of_empty_html_is_empty() -> None:
    assert html_paragraphs("") == []
