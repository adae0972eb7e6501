"""monitor.toml → Config: typed values, defaults filled in, every problem named at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import load, parse_duration
from monitor.errors import ConfigError

STARTER = Path(__file__).resolve().parents[2] / "monitor" / "starter.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_starter_config_loads_with_real_sources() -> None:
    config = load(STARTER)
    names = [s.name for s in config.sources]
    assert "EU Delegation to Kazakhstan" in names
    assert all(s.url.startswith("https://") for s in config.sources)
    assert config.monitor.timezone.key == "Asia/Almaty"


def test_values_come_out_typed_and_defaults_filled_in(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[monitor]\nmax_age = "7d"\nstate_dir = "var"\n'
        '[[source]]\nname = "A"\nurl = "https://a.example/feed"\nevery = "1h30m"\n'
        '[[source]]\nname = "B"\nurl = "https://b.example/"\nmax_age = "0"\n',
    )
    config = load(path)
    a, b = config.sources
    assert a.every == timedelta(hours=1, minutes=30)
    assert a.max_age == timedelta(days=7)
    assert b.max_age is None
    assert config.monitor.state_dir == tmp_path / "var"
    assert config.monitor.db_path == tmp_path / "var" / "monitor.db"
    assert [d.name for d in config.digests] == ["daily"]


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[monitor]\ntimezone = "Mars/Olympus"\n'
        '[[source]]\nname = "EU"\nurl = "ftp://x"\nevry = "1h"\n'
        '[smtp]\nhost = "h"\nsecurity = "ssl"\nport = "25"\n',
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    lines = str(info.value).splitlines()
    assert f'{path}: monitor.timezone: unknown timezone "Mars/Olympus"' in lines[0]
    assert f'{path}: source[1] "EU": evry: unknown key (did you mean "every"?)' in lines
    assert any('source[1] "EU": url: expected an http(s) URL; got "ftp://x"' in x for x in lines)
    assert f'{path}: smtp.security: expected one of none, starttls, tls; got "ssl"' in lines
    assert f"{path}: smtp.port: expected a number; got a string" in lines


def test_toml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[monitor]\ntimezone = "UTC\n')
    with pytest.raises(ConfigError, match=r"line 2, column \d+"):
        load(path)


def test_password_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[smtp]\nhost = "h"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match=r"smtp\.password: unknown key.*password_env"):
        load(path)


def test_duplicate_source_names_are_an_error(tmp_path: Path) -> None:
    source = '[[source]]\nname = "A"\nurl = "https://a.example/"\n'
    with pytest.raises(ConfigError, match='"A" is used by another source'):
        load(write(tmp_path, source + source))


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="monitor init"):
        load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("0", timedelta(0)),
        ("0.5s", timedelta(milliseconds=500)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "30", "5x", "1h soon"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_digest_schedule_and_web_listen(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[digest]]\nname = "weekday"\ncron = "30 7 * * mon-fri"\n[web]\nlisten = "0.0.0.0:9000"\n',
    )
    config = load(path)
    assert config.digest("weekday").cron_fields["day_of_week"] == "mon-fri"
    assert (config.web.host, config.web.port) == ("0.0.0.0", 9000)
    with pytest.raises(ConfigError, match='no digest named "daily"'):
        config.digest("daily")


def test_nameservers_and_smtp_retry_come_out_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[monitor]\nnameservers = ["192.0.2.53", "127.0.0.1:5353", "[::1]:53"]\n'
        '[smtp]\nhost = "mail.example.org"\nretry = ["30s", "10m"]\n',
    )
    config = load(path)
    assert config.monitor.nameservers == ("192.0.2.53", "127.0.0.1:5353", "[::1]:53")
    assert config.smtp is not None
    assert config.smtp.retry == (timedelta(seconds=30), timedelta(minutes=10))
    default = load(write(tmp_path, '[smtp]\nhost = "h"\n')).smtp
    assert default is not None
    assert default.retry == tuple(timedelta(minutes=m) for m in (1, 5, 30, 120))


def test_a_bad_nameserver_or_retry_wait_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[monitor]\nnameservers = ["dns.example.org"]\n'
        '[smtp]\nhost = "mail.example.org"\nretry = ["1m", "0"]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert 'monitor.nameservers[0]: expected "IP" or "IP:PORT"; got "dns.example.org"' in message
    assert 'smtp.retry[1]: expected a positive duration; got "0"' in message


def test_a_bad_listing_selector_is_named_when_the_config_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[source]]\nname = "EU"\nurl = "https://eu.example/news"\nkind = "page"\n'
        'items = ".views-row"\nlink = "a[href"\ntitle = "h3:first-of-type"\n',
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert 'source[1] "EU": link: not a CSS selector: "a[href"' in message
    assert ": items:" not in message  # the good ones are not named
    assert ": title:" not in message
