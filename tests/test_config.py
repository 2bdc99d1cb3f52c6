"""The configuration file: what loads, how paths resolve, and how every mistake is reported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicate.config import (
    Config,
    CsvSource,
    FeedSource,
    HtmlSource,
    JsonSource,
    MarkdownSource,
    config_path,
    load_config,
)
from syndicate.errors import ConfigError
from syndicate.model import Kind
from tests.conftest import ROOT, WriteConfig

MINIMAL = """\
site:
  title: Press Office
  base_url: https://press.example.org/news
"""

# The example from issue 2, with `keywords` given as a string instead of a list.
ISSUE_EXAMPLE = """\
site:
  title: IOM Türkiye — Press Releases
  base_url: https://example.org/news       # absolute, no trailing slash needed
  language: en
  timezone: Europe/Istanbul
  output_dir: public                        # relative paths are relative to this config file
database:
  url: sqlite:///var/syndicate.db           # relative sqlite paths: relative to the config file
sources:
  - {type: markdown, path: ../content/releases}
  - {type: html, path: listing.html, item: "li.release", title: "h3", link: "a@href", summary: "p", date: "time@datetime"}
  - {type: feed, url: https://example.org/upstream.atom}   # also a local path
  - {type: json, path: export.json}          # an array or JSON Lines of release objects
  - {type: csv, path: export.csv}
topics:
  trafficking:
    title: Human trafficking
    description: Counter-trafficking, victim assistance and prevention.
    keywords: trafficking
"""  # noqa: E501


def config_file(project: Path) -> Path:
    return project / "config" / "syndicate.yaml"


def line(text: str, needle: str) -> int:
    """1-based number of the one line of `text` that contains `needle`."""
    found = [n for n, row in enumerate(text.splitlines(), 1) if needle in row]
    assert len(found) == 1, f"{needle!r} is on lines {found}"
    return found[0]


def error_of(write_config: WriteConfig, text: str) -> str:
    """The message of the ConfigError that loading `text` (dedented) raises."""
    with pytest.raises(ConfigError) as caught:
        write_config(text)
    return str(caught.value)


def sqlite_file(url: str) -> Path:
    """The file a `sqlite:///PATH` URL names."""
    scheme, sep, path = url.partition(":///")
    assert scheme == "sqlite" and sep, url
    return Path(path.partition("?")[0])


# --- the sample configuration -------------------------------------------------------------


def test_sample_config_loads() -> None:
    config = load_config(ROOT / "config" / "syndicate.yaml", environ={})
    assert config.site.title
    assert config.site.base_url.startswith("https://")


def test_sample_config_has_five_to_eight_topics() -> None:
    config = load_config(ROOT / "config" / "syndicate.yaml", environ={})
    assert 5 <= len(config.topics) <= 8


def test_sample_config_reads_the_sample_releases() -> None:
    config = load_config(ROOT / "config" / "syndicate.yaml", environ={})
    markdown = [s for s in config.sources if isinstance(s, MarkdownSource)]
    assert [s.path.resolve() for s in markdown] == [ROOT / "content" / "releases"]


# --- defaults -------------------------------------------------------------------------------


def test_site_language_defaults_to_english(write_config: WriteConfig) -> None:
    assert write_config(MINIMAL).site.language == "en"


def test_site_timezone_defaults_to_utc(write_config: WriteConfig) -> None:
    site = write_config(MINIMAL).site
    assert site.timezone == "UTC"
    assert site.tz == ZoneInfo("UTC")


def test_output_dir_defaults_to_public_beside_the_config_file(
    write_config: WriteConfig, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "content")
    output_dir = write_config(MINIMAL).site.output_dir
    assert output_dir.is_absolute()
    assert output_dir.resolve() == project / "config" / "public"


def test_database_defaults_to_sqlite_file_beside_the_config_file(
    write_config: WriteConfig, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "content")
    url = write_config(MINIMAL).database.url
    assert sqlite_file(url).is_absolute()
    assert sqlite_file(url).resolve() == project / "config" / "var" / "syndicate.db"


def test_sources_and_topics_default_to_empty(write_config: WriteConfig) -> None:
    config = write_config(MINIMAL)
    assert config.sources == []
    assert config.topics == {}


def test_topic_needs_only_a_title(write_config: WriteConfig) -> None:
    topic = write_config(MINIMAL + "topics:\n  events:\n    title: Events\n").topics["events"]
    assert (topic.description, topic.keywords, topic.datelines, topic.kinds) == ("", [], [], [])


def test_topic_kinds_are_read_as_kinds(write_config: WriteConfig) -> None:
    config = write_config(MINIMAL + "topics:\n  opinion:\n    title: O\n    kinds: [op-ed]\n")
    assert config.topics["opinion"].kinds == [Kind.OP_ED]


def test_topics_keep_the_order_of_the_file(write_config: WriteConfig) -> None:
    text = MINIMAL + "topics:\n  zeta: {title: Z}\n  alpha: {title: A}\n  mid: {title: M}\n"
    assert list(write_config(text).topics) == ["zeta", "alpha", "mid"]


def test_base_url_loses_its_trailing_slash(write_config: WriteConfig) -> None:
    config = write_config(MINIMAL.replace("/news", "/news/"))
    assert config.site.base_url == "https://press.example.org/news"


def test_config_remembers_its_path(project: Path) -> None:
    config = load_config(config_file(project), environ={})
    assert config.path == config_file(project)
    assert config.base_dir == project / "config"


def test_utf8_byte_order_mark_is_tolerated(project: Path) -> None:
    config_file(project).write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_config(config_file(project), environ={}).site.title == "Press Office"


# --- relative paths resolve against the config file's folder, not the working directory -----


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from a folder that is neither the project nor its config folder."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_relative_output_dir_resolves_against_config_folder(project: Path, elsewhere: Path) -> None:
    # BASE_CONFIG says `output_dir: ../public`.
    output_dir = load_config(config_file(project), environ={}).site.output_dir
    assert output_dir.is_absolute()
    assert output_dir.resolve() == project / "public"


def test_relative_config_path_still_resolves_against_config_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    output_dir = load_config("config/syndicate.yaml", environ={}).site.output_dir
    monkeypatch.chdir(project / "content")
    assert output_dir.resolve() == project / "public"


def test_absolute_output_dir_is_kept(write_config: WriteConfig, tmp_path: Path) -> None:
    target = tmp_path / "www"
    config = write_config(MINIMAL + f"  output_dir: {target}\n")
    assert config.site.output_dir == target


def test_relative_source_paths_resolve_against_config_folder(
    write_config: WriteConfig, project: Path, elsewhere: Path
) -> None:
    config = write_config(
        MINIMAL
        + "sources:\n"
        + "  - {type: markdown, path: ../content}\n"
        + "  - {type: html, path: listing.html}\n"
        + "  - {type: json, path: data/export.json}\n"
        + "  - {type: csv, path: export.csv}\n"
    )
    assert [s.type for s in config.sources] == ["markdown", "html", "json", "csv"]
    paths = [s.path for s in config.sources if not isinstance(s, FeedSource)]
    assert all(p.is_absolute() for p in paths)
    assert [p.resolve() for p in paths] == [
        project / "content",
        project / "config" / "listing.html",
        project / "config" / "data" / "export.json",
        project / "config" / "export.csv",
    ]


def test_source_kinds_are_told_apart_by_type(write_config: WriteConfig) -> None:
    config = write_config(
        MINIMAL
        + "sources:\n"
        + "  - {type: markdown, path: a}\n"
        + "  - {type: html, path: b.html}\n"
        + "  - {type: feed, url: https://example.org/up.atom}\n"
        + "  - {type: json, path: c.json}\n"
        + "  - {type: csv, path: d.csv}\n"
    )
    kinds = [type(s) for s in config.sources]
    assert kinds == [MarkdownSource, HtmlSource, FeedSource, JsonSource, CsvSource]


def test_local_feed_path_resolves_against_config_folder(
    write_config: WriteConfig, project: Path, elsewhere: Path
) -> None:
    config = write_config(MINIMAL + "sources:\n  - {type: feed, url: upstream.atom}\n")
    source = config.sources[0]
    assert isinstance(source, FeedSource)
    assert Path(source.url).resolve() == project / "config" / "upstream.atom"


def test_feed_http_url_is_kept(write_config: WriteConfig) -> None:
    url = "https://example.org/upstream.atom"
    source = write_config(MINIMAL + f"sources:\n  - {{type: feed, url: '{url}'}}\n").sources[0]
    assert isinstance(source, FeedSource)
    assert source.url == url


def test_relative_sqlite_url_resolves_against_config_folder(project: Path, elsewhere: Path) -> None:
    # BASE_CONFIG says `url: sqlite:///../var/test.db`.
    url = load_config(config_file(project), environ={}).database.url
    assert sqlite_file(url).is_absolute()
    assert sqlite_file(url).resolve() == project / "var" / "test.db"


def test_relative_sqlite_url_keeps_its_query(write_config: WriteConfig, project: Path) -> None:
    url = write_config(MINIMAL + "database:\n  url: sqlite:///x.db?timeout=5\n").database.url
    assert url == f"sqlite:///{project / 'config' / 'x.db'}?timeout=5"


def test_absolute_sqlite_url_is_kept(write_config: WriteConfig) -> None:
    url = "sqlite:////srv/syndicate/syndicate.db"
    assert write_config(MINIMAL + f"database:\n  url: {url}\n").database.url == url


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_url_is_kept(write_config: WriteConfig, url: str) -> None:
    assert write_config(MINIMAL + f"database:\n  url: '{url}'\n").database.url == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://syndicate@db.example.org/syndicate",
        "postgresql+psycopg://user:secret@localhost:5432/press",
        "postgresql://localhost/press",
    ],
)
def test_postgresql_url_is_kept(write_config: WriteConfig, url: str) -> None:
    assert write_config(MINIMAL + f"database:\n  url: '{url}'\n").database.url == url


# --- which file: config_path() -------------------------------------------------------------


def test_config_path_explicit_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_CONFIG", "from-env.yaml")
    assert config_path("explicit.yaml") == Path("explicit.yaml")


def test_config_path_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_CONFIG", "from-env.yaml")
    assert config_path() == Path("from-env.yaml")


def test_config_path_defaults_to_config_syndicate_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNDICATE_CONFIG", raising=False)
    assert config_path() == Path("config/syndicate.yaml")


def test_config_path_ignores_empty_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_CONFIG", "")
    assert config_path() == Path("config/syndicate.yaml")


def test_load_config_without_path_reads_default_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert load_config(environ={}).site.title == "Test Press Office"


def test_load_config_takes_config_file_from_given_environment(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(MINIMAL, encoding="utf-8")
    config = load_config(environ={"SYNDICATE_CONFIG": str(other)})
    assert config.path == other
    assert config.site.title == "Press Office"


# --- errors: FILE:LINE: dotted.field: message ----------------------------------------------


def test_issue_example_names_file_line_and_field(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file(project).write_text(ISSUE_EXAMPLE, encoding="utf-8")
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as caught:
        load_config(environ={})
    assert str(caught.value) == (
        "config/syndicate.yaml:19: topics.trafficking.keywords: expected a list of strings"
    )


def test_config_error_is_a_value_error_with_exit_code_2(write_config: WriteConfig) -> None:
    with pytest.raises(ValueError) as caught:
        write_config(MINIMAL + "bogus: 1\n")
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == 2


def test_unknown_top_level_key_is_error_with_hint(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topcs:\n  x: {title: X}\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, 'topcs')}: topcs: unknown key (did you mean 'topics'?)"
    )


def test_unknown_site_key_is_error_with_hint(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "  timezon: Europe/Istanbul\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:4: site.timezon: unknown key (did you mean 'timezone'?)"
    )


def test_unknown_database_key_is_error_with_hint(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "database:\n  uri: sqlite:///x.db\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:5: database.uri: unknown key (did you mean 'url'?)"
    )


def test_unknown_source_key_is_error_with_hint(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "sources:\n  - type: markdown\n    path: a\n    paths: [b, c]\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, 'paths')}: sources[0].paths: "
        "unknown key (did you mean 'path'?)"
    )


def test_unknown_html_source_key_hints_at_html_options(
    write_config: WriteConfig, project: Path
) -> None:
    text = MINIMAL + "sources:\n  - type: html\n    path: l.html\n    summry: p\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:7: sources[0].summry: unknown key (did you mean 'summary'?)"
    )


def test_unknown_topic_key_is_error_with_hint(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics:\n  trafficking:\n    title: T\n    keyword: [trafficking]\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, 'keyword:')}: topics.trafficking.keyword: "
        "unknown key (did you mean 'keywords'?)"
    )


def test_misspelt_required_key_is_reported_once(write_config: WriteConfig, project: Path) -> None:
    text = "site:\n  titel: Press Office\n  base_url: https://example.org\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:2: site.titel: unknown key (did you mean 'title'?)"
    )


def test_misspelt_source_path_is_reported_once(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "sources:\n  - type: markdown\n    paht: ../content\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:6: sources[0].paht: unknown key (did you mean 'path'?)"
    )


def test_missing_key_beside_an_unrelated_unknown_key_is_still_reported(
    write_config: WriteConfig, project: Path
) -> None:
    text = MINIMAL + "topics:\n  data:\n    zzz: 1\n"
    assert error_of(write_config, text).splitlines() == [
        f"{config_file(project)}:5: topics.data.title: required, but missing",
        f"{config_file(project)}:6: topics.data.zzz: unknown key; "
        "expected one of: title, description, keywords, datelines, kinds",
    ]


def test_unknown_key_without_close_match_lists_known_keys(
    write_config: WriteConfig, project: Path
) -> None:
    text = MINIMAL + "database:\n  zzz: 1\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:5: database.zzz: unknown key; expected one of: url"
    )


def test_top_level_path_key_is_unknown(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "path: elsewhere.yaml\n"
    message = error_of(write_config, text)
    assert message.startswith(f"{config_file(project)}:4: path: unknown key")


def test_missing_site_title_is_reported_on_site_line(
    write_config: WriteConfig, project: Path
) -> None:
    text = "# press office\n\nsite:\n  base_url: https://example.org\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:3: site.title: required, but missing"
    )


def test_missing_site_section_is_reported_on_line_1(
    write_config: WriteConfig, project: Path
) -> None:
    text = "topics:\n  a: {title: A}\n"
    assert error_of(write_config, text) == f"{config_file(project)}:1: site: required, but missing"


@pytest.mark.parametrize("url", ["example.org/news", "ftp://example.org/news", "https://"])
def test_base_url_must_be_absolute_http(write_config: WriteConfig, project: Path, url: str) -> None:
    text = f"site:\n  title: T\n  base_url: '{url}'\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:3: site.base_url: expected an absolute http(s) URL, got {url!r}"
    )


def test_unknown_time_zone_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "  timezone: Europe/Atlantis\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:4: site.timezone: unknown time zone 'Europe/Atlantis'; "
        "use an IANA name such as 'Europe/Istanbul'"
    )


def test_time_zone_that_is_a_path_is_error(write_config: WriteConfig, project: Path) -> None:
    message = error_of(write_config, MINIMAL + "  timezone: ../../etc/passwd\n")
    assert message.startswith(f"{config_file(project)}:4: site.timezone: unknown time zone")


@pytest.mark.parametrize("language", ["english", "en_US", "e", "tr-"])
def test_bad_language_tag_is_error(write_config: WriteConfig, project: Path, language: str) -> None:
    text = MINIMAL + f"  language: '{language}'\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:4: site.language: expected a BCP 47 language tag "
        f"such as 'en' or 'tr-TR', got {language!r}"
    )


@pytest.mark.parametrize("language", ["en", "tr", "tr-TR", "zh-Hant-TW", "ast"])
def test_good_language_tag_is_accepted(write_config: WriteConfig, language: str) -> None:
    assert write_config(MINIMAL + f"  language: {language}\n").site.language == language


def test_bad_database_url_is_error_that_does_not_echo_the_value(
    write_config: WriteConfig, project: Path
) -> None:
    text = MINIMAL + "database:\n  url: postgres:admin:s3cret@db\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:5: database.url: expected a database URL such as "
        "'sqlite:///var/syndicate.db' or 'postgresql+psycopg://user@host/dbname'"
    )


def test_unknown_source_type_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "sources:\n  - type: markdown\n    path: a\n  - type: rss\n    path: b\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, 'rss')}: sources[1]: unknown type 'rss'; "
        "expected one of 'markdown', 'html', 'feed', 'json', 'csv'"
    )


def test_source_without_type_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "sources:\n  - path: ../content\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:5: sources[0]: missing 'type' (markdown, html, feed, json or csv)"
    )


def test_sources_must_be_a_list(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "sources:\n  type: markdown\n  path: ../content\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:4: sources: expected a list of sources"
    )


def test_file_source_without_path_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "sources:\n  - type: csv\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:5: sources[0].path: required, but missing"
    )


def test_topic_slug_all_is_reserved(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics:\n  trafficking:\n    title: T\n  all:\n    title: Everything\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, 'all:')}: topics.all: "
        "'all' is reserved for the feed of every release; rename the topic"
    )


@pytest.mark.parametrize("slug", ["Human_Trafficking", "voluntary return", "-return", "göç"])
def test_topic_key_must_be_a_slug(write_config: WriteConfig, project: Path, slug: str) -> None:
    text = MINIMAL + f"topics:\n  data:\n    title: D\n  '{slug}':\n    title: T\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, slug)}: topics.{slug}: "
        f"topic slug {slug!r} must be lowercase letters, digits and hyphens"
    )


def test_topic_without_title_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics:\n  data:\n    keywords: [data]\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:5: topics.data.title: required, but missing"
    )


def test_bad_kind_is_reported_on_its_own_line(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics:\n  opinion:\n    title: O\n    kinds:\n      - op-ed\n      - blog\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, 'blog')}: topics.opinion.kinds[1]: "
        "expected one of 'press-release', 'op-ed', 'statement' or 'news', got 'blog'"
    )


def test_kinds_given_as_string_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics:\n  opinion:\n    title: O\n    kinds: op-ed\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:7: topics.opinion.kinds: expected a list of kinds"
    )


def test_keyword_that_is_not_a_string_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics:\n  data:\n    title: D\n    keywords:\n      - data\n      - 2024\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:{line(text, '2024')}: topics.data.keywords[1]: "
        "expected a string, got 2024"
    )


def test_yaml_syntax_error_names_its_line(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "  language: en: tr\n  timezone: UTC\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:4: YAML syntax error: mapping values are not allowed here"
    )


def test_tab_indentation_names_its_line(write_config: WriteConfig, project: Path) -> None:
    text = "site:\n  title: T\n\tbase_url: https://example.org\n"
    message = error_of(write_config, text)
    assert message.startswith(f"{config_file(project)}:3: YAML syntax error: ")


def test_duplicate_key_is_reported_on_second_occurrence(
    write_config: WriteConfig, project: Path
) -> None:
    text = MINIMAL + "topics:\n  data:\n    title: A\n  data:\n    title: B\n"
    message = error_of(write_config, text)
    assert message.startswith(f"{config_file(project)}:7: YAML syntax error: found duplicate key")
    assert "data" in message


def test_non_utf8_file_names_the_line(project: Path) -> None:
    config_file(project).write_bytes(MINIMAL.encode() + b"  language: \xe9n\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={})
    assert str(caught.value) == (
        f"{config_file(project)}:4: encoding: not valid UTF-8 (byte {len(MINIMAL) + 12}); "
        "save the file as UTF-8"
    )


def test_latin1_encoded_file_is_rejected_not_misread(project: Path) -> None:
    config_file(project).write_bytes(MINIMAL.replace("Press", "Türkiye").encode("latin-1"))
    with pytest.raises(ConfigError, match=r":2: encoding: not valid UTF-8"):
        load_config(config_file(project), environ={})


def test_missing_file_is_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == f"{path}: file not found"


def test_empty_file_is_missing_site(write_config: WriteConfig, project: Path) -> None:
    assert error_of(write_config, "") == f"{config_file(project)}:1: site: required, but missing"


def test_comment_only_file_is_missing_site(write_config: WriteConfig, project: Path) -> None:
    text = "# nothing configured yet\n"
    assert error_of(write_config, text) == f"{config_file(project)}:1: site: required, but missing"


@pytest.mark.parametrize("text", ["- site\n- topics\n", "just words\n", "42\n"])
def test_top_level_must_be_a_mapping(write_config: WriteConfig, project: Path, text: str) -> None:
    assert error_of(write_config, text) == (
        f"{config_file(project)}:1: (top level): expected a mapping with a 'site' section at "
        "the top level"
    )


def test_section_that_is_not_a_mapping_is_error(write_config: WriteConfig, project: Path) -> None:
    text = MINIMAL + "topics: [trafficking, data]\n"
    assert error_of(write_config, text) == (
        f"{config_file(project)}:4: topics: expected a mapping, got ['trafficking', 'data']"
    )


def test_all_errors_are_reported_sorted_by_line(write_config: WriteConfig, project: Path) -> None:
    # Topics come first in the file, so file order differs from the model's field order.
    text = """\
        topics:
          all:
            title: Everything
          data:
            title: Data
            kinds: [blog]
        database:
          uri: x
        site:
          title: T
          base_url: example.org
          timezone: Mars/Olympus
        """
    path = config_file(project)
    assert error_of(write_config, text).splitlines() == [
        f"{path}:2: topics.all: 'all' is reserved for the feed of every release; rename the topic",
        f"{path}:6: topics.data.kinds[0]: expected one of 'press-release', 'op-ed', "
        "'statement' or 'news', got 'blog'",
        f"{path}:8: database.uri: unknown key (did you mean 'url'?)",
        f"{path}:11: site.base_url: expected an absolute http(s) URL, got 'example.org'",
        f"{path}:12: site.timezone: unknown time zone 'Mars/Olympus'; "
        "use an IANA name such as 'Europe/Istanbul'",
    ]


def test_errors_are_sorted_by_line_when_path_contains_a_colon(tmp_path: Path) -> None:
    path = tmp_path / "c:onfig" / "syndicate.yaml"
    path.parent.mkdir()
    lines = [f"  k{n}: 1" for n in range(12)]
    path.write_text("site:\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    numbers = [
        int(row[len(str(path)) + 1 :].split(":")[0]) for row in str(caught.value).split("\n")
    ]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 13


# --- environment overrides --------------------------------------------------------------------


def test_env_overrides_database_url(project: Path) -> None:
    url = "postgresql+psycopg://syndicate@db.example.org/press"
    config = load_config(config_file(project), environ={"SYNDICATE_DATABASE__URL": url})
    assert config.database.url == url


def test_env_overrides_output_dir(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "www"
    environ = {"SYNDICATE_SITE__OUTPUT_DIR": str(target)}
    assert load_config(config_file(project), environ=environ).site.output_dir == target


def test_env_overrides_leave_other_settings_alone(project: Path, config: Config) -> None:
    environ = {"SYNDICATE_SITE__TITLE": "Overridden"}
    overridden = load_config(config_file(project), environ=environ)
    assert overridden.site.title == "Overridden"
    assert overridden.site.base_url == config.site.base_url
    assert overridden.topics == config.topics


def test_env_can_set_a_section_missing_from_the_file(project: Path) -> None:
    config_file(project).write_text(MINIMAL, encoding="utf-8")
    environ = {"SYNDICATE_DATABASE__URL": "sqlite:////srv/press.db"}
    assert load_config(config_file(project), environ=environ).database.url == (
        "sqlite:////srv/press.db"
    )


def test_missing_setting_beside_an_env_override_is_reported_against_the_file(
    project: Path,
) -> None:
    config_file(project).write_text("topics:\n  data: {title: Data}\n", encoding="utf-8")
    environ = {"SYNDICATE_SITE__BASE_URL": "https://example.org"}
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ=environ)
    assert str(caught.value) == f"{config_file(project)}:1: site.title: required, but missing"


def test_invalid_env_value_is_reported_as_environment(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={"SYNDICATE_SITE__BASE_URL": "example.org"})
    assert str(caught.value) == (
        "environment SYNDICATE_SITE__BASE_URL: site.base_url: "
        "expected an absolute http(s) URL, got 'example.org'"
    )


def test_invalid_env_timezone_is_reported_as_environment(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={"SYNDICATE_SITE__TIMEZONE": "Nowhere/City"})
    assert str(caught.value).startswith(
        "environment SYNDICATE_SITE__TIMEZONE: site.timezone: unknown time zone 'Nowhere/City'"
    )


def test_unknown_env_key_is_error(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={"SYNDICATE_SITE__TITEL": "Typo"})
    assert str(caught.value) == (
        "environment SYNDICATE_SITE__TITEL: site.titel: unknown key (did you mean 'title'?)"
    )


def test_unknown_env_section_is_error(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={"SYNDICATE_DATABSE__URL": "sqlite://"})
    assert str(caught.value) == (
        "environment SYNDICATE_DATABSE__URL: databse: unknown key (did you mean 'database'?)"
    )


def test_env_key_below_a_scalar_is_reported_as_environment(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={"SYNDICATE_SITE__TITLE__EN": "Title"})
    assert str(caught.value).startswith("environment SYNDICATE_SITE__TITLE__EN: site.title: ")


@pytest.mark.parametrize(
    "name", ["SYNDICATE_CONFIG", "SYNDICATE_TEST_X", "SYNDICATE_", "OTHER__SITE__TITLE"]
)
def test_env_variables_without_section_separator_are_ignored(
    project: Path, config: Config, name: str
) -> None:
    assert load_config(config_file(project), environ={name: "ignored"}) == config


def test_env_defaults_to_the_process_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SITE__TITLE", "From the process")
    assert load_config(config_file(project)).site.title == "From the process"


def test_env_file_errors_and_env_errors_are_reported_together(project: Path) -> None:
    config_file(project).write_text(MINIMAL + "  timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(project), environ={"SYNDICATE_SITE__LANGUAGE": "english"})
    assert [row.split(": ")[0] for row in str(caught.value).splitlines()] == [
        "environment SYNDICATE_SITE__LANGUAGE",
        f"{config_file(project)}:4",
    ]


# --- the CLI -------------------------------------------------------------------------------


def test_cli_check_reports_broken_config_in_one_line_and_exits_2(
    project: Path, tmp_path: Path
) -> None:
    path = config_file(project)
    path.write_text(
        textwrap.dedent(
            """\
            site:
              title: T
              base_url: https://example.org
            topics:
              trafficking:
                title: Human trafficking
                keywords: trafficking
            """
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(path), "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"{path}:7: topics.trafficking.keywords: expected a list of strings\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_a_control_character_in_a_title_is_an_error(project: Path) -> None:
    path = project / "config" / "syndicate.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SYNDICATE_SITE__TITLE": "Press\x0bOffice"})
    assert str(caught.value) == (
        "environment SYNDICATE_SITE__TITLE: site.title: contains the control character U+000B at 5"
    )


def test_a_control_character_in_a_topic_description_names_its_line(
    write_config: WriteConfig, project: Path
) -> None:
    text = MINIMAL + 'topics:\n  t:\n    title: T\n    description: "a\\x01b"\n'
    assert error_of(write_config, text) == (
        f"{config_file(project)}:7: topics.t.description: "
        "contains the control character U+0001 at 1"
    )


def test_smtp_and_mail_defaults_send_to_the_local_mail_catcher(config: Config) -> None:
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == ("localhost", 1025, "none")
    assert str(config.mail.sender) == "Press Office <press@example.org>"


def test_mail_from_is_parsed_and_normalised(write_config: WriteConfig) -> None:
    config = write_config(MINIMAL + 'mail:\n  from: "IOM Türkiye Press <Press@Example.ORG>"\n')
    assert config.mail.sender.name == "IOM Türkiye Press"
    assert config.mail.sender.address == "Press@example.org"


def test_a_bad_from_address_names_its_line(write_config: WriteConfig, project: Path) -> None:
    message = error_of(write_config, MINIMAL + "mail:\n  from: press at example\n")
    assert message.startswith(f"{config_file(project)}:5: mail.from: 'press at example' is not")


def test_an_smtp_password_in_the_file_is_refused(write_config: WriteConfig, project: Path) -> None:
    message = error_of(write_config, MINIMAL + "smtp:\n  username: u\n  password: hunter2\n")
    assert message == (
        f"{config_file(project)}:6: smtp.password: must not be in the file; set the "
        "environment variable SYNDICATE_SMTP__PASSWORD instead"
    )
    assert "hunter2" not in message


def test_the_smtp_password_comes_from_the_environment_and_stays_masked(project: Path) -> None:
    path = project / "config" / "syndicate.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    config = load_config(path, environ={"SYNDICATE_SMTP__PASSWORD": "hunter2"})
    assert config.smtp.password is not None
    assert config.smtp.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(config)


def test_unknown_smtp_security_lists_the_choices(write_config: WriteConfig, project: Path) -> None:
    message = error_of(write_config, MINIMAL + "smtp:\n  security: ssl\n")
    assert message == (
        f"{config_file(project)}:5: smtp.security: expected one of 'none', 'starttls' or "
        "'tls', got 'ssl'"
    )
