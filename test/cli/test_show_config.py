"""``nameko_like show-config``. No broker needed."""

import yaml


def test_prints_merged_substituted_config_with_overrides(cli, monkeypatch):
    monkeypatch.setenv("CLI_TEST_RABBIT_HOST", "rabbit.example")
    cli.write("base.yaml", """
        AMQP_URI: amqp://guest:guest@${CLI_TEST_RABBIT_HOST}:5672/
        max_workers: 10
        WEB:
          PORT: 8000
          HOST: 0.0.0.0
    """)
    cli.write("prod.yaml", """
        max_workers: 20
        WEB:
          PORT: ${CLI_TEST_UNSET_PORT:8080}
    """)
    result = cli("show-config", "--config", "base.yaml", "--config", "prod.yaml",
                 "--define", "WEB.HOST=127.0.0.1", "--define", "EXTRA=[1, 2]")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {
        "AMQP_URI": "amqp://guest:guest@rabbit.example:5672/",
        "max_workers": 20,
        "WEB": {"PORT": 8080, "HOST": "127.0.0.1"},
        "EXTRA": [1, 2],
    }
    assert result.stderr == ""


def test_broker_option_sets_amqp_uri_and_defines_win(cli):
    result = cli("show-config", "--broker", "memory://")
    assert yaml.safe_load(result.stdout) == {"AMQP_URI": "memory://"}

    result = cli("show-config", "--broker", "memory://", "--define", "AMQP_URI=amqp://h/")
    assert yaml.safe_load(result.stdout) == {"AMQP_URI": "amqp://h/"}


def test_no_options_print_an_empty_config(cli):
    result = cli("show-config")
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout) == {}


def test_bad_config_is_one_line_naming_file_and_key(cli):
    cli.write("config.yaml", "AMQP_URI: ${CLI_TEST_SURELY_UNSET}\n")
    result = cli("show-config", "--config", "config.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        ("nameko_like show-config: error: config.yaml:1: key 'AMQP_URI': "
         "environment variable CLI_TEST_SURELY_UNSET is not set and has no default")
    ]
    assert result.stdout == ""


def test_reads_config_yaml_in_the_working_directory_by_default(cli):
    cli.write("config.yaml", "AMQP_URI: amqp://rabbit/\nmax_workers: 3\n")
    result = cli("show-config", "--define", "max_workers=4")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {"AMQP_URI": "amqp://rabbit/", "max_workers": 4}


def test_without_config_yaml_the_config_is_only_the_options(cli):
    result = cli("show-config", "--broker", "amqp://elsewhere/")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {"AMQP_URI": "amqp://elsewhere/"}
