"""Tests for nameko_like.config_loader."""

import datetime
import re
import textwrap

import pytest
import yaml

from nameko_like.config_loader import (
    apply_overrides,
    dump_config,
    load_config,
    merge,
    substitute,
)
from nameko_like.exceptions import ConfigurationError


@pytest.fixture
def write(tmp_path):
    """Write a YAML file under tmp_path and return its path."""
    def write(text, name="config.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


# --- plain loading ------------------------------------------------------------


def test_plain_yaml(write):
    path = write("""
        AMQP_URI: amqp://localhost
        WEB_SERVER_ADDRESS: 0.0.0.0:8000
        max_workers: 10
        nested: {a: [1, 2], b: null}
    """)
    assert load_config(path, env={}) == {
        "AMQP_URI": "amqp://localhost",
        "WEB_SERVER_ADDRESS": "0.0.0.0:8000",
        "max_workers": 10,
        "nested": {"a": [1, 2], "b": None},
    }


def test_accepts_str_path(write):
    assert load_config(str(write("A: 1")), env={}) == {"A": 1}


def test_empty_file_is_empty_config(write):
    assert load_config(write(""), env={}) == {}
    assert load_config(write("# only a comment\n"), env={}) == {}


def test_no_paths_is_empty_config():
    assert load_config([], env={}) == {}


def test_default_env_is_os_environ(write, monkeypatch):
    monkeypatch.setenv("CONFIG_LOADER_TEST_VAR", "from-os")
    assert load_config(write("A: ${CONFIG_LOADER_TEST_VAR}")) == {
        "A": "from-os"}


# --- merging ------------------------------------------------------------------


def test_later_files_win_and_dicts_merge(write):
    base = write("""
        AMQP_URI: amqp://base
        WEB: {HOST: 0.0.0.0, PORT: 8000, OPTS: {a: 1, b: 2}}
        LIST: [1, 2, 3]
        ONLY_BASE: yes
    """, "base.yaml")
    override = write("""
        AMQP_URI: amqp://override
        WEB: {PORT: 9000, OPTS: {b: 3}}
        LIST: [4]
        ONLY_OVERRIDE: 1
    """, "override.yaml")
    assert load_config([base, override], env={}) == {
        "AMQP_URI": "amqp://override",
        "WEB": {"HOST": "0.0.0.0", "PORT": 9000, "OPTS": {"a": 1, "b": 3}},
        "LIST": [4],
        "ONLY_BASE": True,
        "ONLY_OVERRIDE": 1,
    }


def test_scalar_replaces_mapping_and_back(write):
    first = write("A: {x: 1}\nB: 2\n", "1.yaml")
    second = write("A: plain\nB: {y: 2}\n", "2.yaml")
    assert load_config([first, second], env={}) == {
        "A": "plain", "B": {"y": 2}}


def test_three_files_merge_in_order(write):
    paths = [write(f"K: {n}\nN{n}: {n}\n", f"{n}.yaml") for n in (1, 2, 3)]
    assert load_config(paths, env={}) == {"K": 3, "N1": 1, "N2": 2, "N3": 3}


def test_overridden_reference_is_never_evaluated(write):
    base = write("AMQP_URI: amqp://${REQUIRED_BUT_UNSET}\n", "base.yaml")
    local = write("AMQP_URI: amqp://localhost\n", "local.yaml")
    assert load_config([base, local], env={}) == {
        "AMQP_URI": "amqp://localhost"}


def test_merge_does_not_change_inputs():
    base = {"a": {"b": 1}}
    override = {"a": {"c": 2}}
    assert merge(base, override) == {"a": {"b": 1, "c": 2}}
    assert base == {"a": {"b": 1}}
    assert override == {"a": {"c": 2}}


# --- implicit substitution ----------------------------------------------------


def test_whole_and_embedded_references(write):
    path = write("""
        AMQP_URI: amqp://${RABBIT_USER:guest}:${RABBIT_PASS:guest}@${RABBIT_HOST:localhost}
        NAME: ${NAME}
    """)
    env = {"RABBIT_PASS": "s3cret", "RABBIT_HOST": "rabbit", "NAME": "svc"}
    assert load_config(path, env=env) == {
        "AMQP_URI": "amqp://guest:s3cret@rabbit", "NAME": "svc"}


@pytest.mark.parametrize("text, expected", [
    ("${PORT:8000}", 8000),
    ("${DEBUG:true}", True),
    ("${DEBUG:false}", False),
    ("${RATIO:0.5}", 0.5),
    ("${NOTHING:null}", None),
    ("${EMPTY:}", None),  # as YAML reads an empty value
    ("${WORD:hello}", "hello"),
    ("${DAY:2024-01-31}", datetime.date(2024, 1, 31)),
    ("${NOT_A_DAY:2024-13-45}", "2024-13-45"),
])
def test_implicit_values_are_typed(write, text, expected):
    assert load_config(write(f"V: {text}\n"), env={}) == {"V": expected}


def test_values_from_env_are_typed(write):
    path = write("PORT: ${PORT}\nDEBUG: ${DEBUG}\nNAME: ${NAME}\n")
    env = {"PORT": "9000", "DEBUG": "yes", "NAME": "x"}
    assert load_config(path, env=env) == {
        "PORT": 9000, "DEBUG": True, "NAME": "x"}


@pytest.mark.parametrize("value", [
    "abc #1",  # would lose " #1" if parsed as a document
    "key: value",  # would become a mapping
    "[1, 2]",  # would become a list
    "- item",
    "&anchor",
    "'quoted'",
])
def test_substituted_values_are_never_parsed_as_documents(write, value):
    assert load_config(write("V: ${V}\n"), env={"V": value}) == {"V": value}


def test_set_but_empty_variable_is_used(write):
    path = write("A: x${EMPTY:default}y\n")
    assert load_config(path, env={"EMPTY": ""}) == {"A": "xy"}


def test_default_may_contain_colons_and_slashes(write):
    path = write("URI: ${URI:amqp://guest:guest@localhost:5672/}\n")
    assert load_config(path, env={}) == {
        "URI": "amqp://guest:guest@localhost:5672/"}


def test_nested_defaults(write):
    path = write("A: ${A:${B:x}}\nC: pre-${C:${D:${E:deep}}}-post\n")
    assert load_config(path, env={}) == {"A": "x", "C": "pre-deep-post"}
    assert load_config(path, env={"B": "b", "D": "d"}) == {
        "A": "b", "C": "pre-d-post"}
    assert load_config(path, env={"A": "a", "C": "c"}) == {
        "A": "a", "C": "pre-c-post"}


def test_nested_default_is_lazy(write):
    # ${B} is required only when A is unset.
    path = write("V: ${A:${B}}\n")
    assert load_config(path, env={"A": "set"}) == {"V": "set"}
    with pytest.raises(ConfigurationError, match="B is not set"):
        load_config(path, env={})


def test_references_in_lists_and_nested_mappings(write):
    path = write("""
        LIST:
          - ${A:1}
          - "${A:1}"
          - x${A:1}
        OUTER:
          INNER:
            - ${B:two}
    """)
    assert load_config(path, env={}) == {
        "LIST": [1, "${A:1}", "x1"], "OUTER": {"INNER": ["two"]}}


def test_references_inside_flow_collections_need_the_tag(write):
    # In [..] and {..} YAML forbids "{" and "}" in plain scalars, so a
    # reference there must be quoted, and then tagged to be substituted.
    path = write("""
        LIST: [!env_var "${A:1}", !raw_env_var "${A:1}", "${A:1}"]
        MAP: {port: !env_var "${PORT:80}"}
    """)
    assert load_config(path, env={}) == {
        "LIST": [1, "1", "${A:1}"], "MAP": {"port": 80}}


def test_quoted_scalars_stay_literal(write):
    path = write("""
        SINGLE: '${NOT_SUBSTITUTED}'
        DOUBLE: "${ALSO_NOT}"
        BLOCK: |
          echo ${HOME}
    """)
    assert load_config(path, env={}) == {
        "SINGLE": "${NOT_SUBSTITUTED}", "DOUBLE": "${ALSO_NOT}",
        "BLOCK": "echo ${HOME}\n"}


def test_references_in_keys(write):
    path = write("${KEY:default_key}: 1\n")
    assert load_config(path, env={"KEY": "real"}) == {"real": 1}


def test_anchors_and_aliases(write):
    path = write("""
        BASE: &base
          URI: "${URI:memory://}"
          PORT: ${PORT:1}
        COPY: *base
    """)
    assert load_config(path, env={"PORT": "2"}) == {
        "BASE": {"URI": "${URI:memory://}", "PORT": 2},
        "COPY": {"URI": "${URI:memory://}", "PORT": 2}}


def test_dollar_without_brace_is_literal(write):
    assert load_config(write("A: $HOME and $\n"), env={}) == {
        "A": "$HOME and $"}


# --- explicit tags ------------------------------------------------------------


def test_env_var_tag_types_the_result(write):
    path = write("""
        PORT: !env_var ${PORT:8000}
        DEBUG: !env_var "${DEBUG:true}"
        QUOTED: !env_var '${NAME}'
    """)
    assert load_config(path, env={"NAME": "svc"}) == {
        "PORT": 8000, "DEBUG": True, "QUOTED": "svc"}


def test_raw_env_var_keeps_a_string(write):
    path = write("""
        PORT: !raw_env_var ${PORT:8000}
        DEBUG: !raw_env_var "${DEBUG:true}"
        EMPTY: !raw_env_var ${EMPTY:}
    """)
    assert load_config(path, env={}) == {
        "PORT": "8000", "DEBUG": "true", "EMPTY": ""}


def test_env_var_tag_without_references(write):
    assert load_config(write("A: !env_var 42\nB: !raw_env_var 42\n"),
                       env={}) == {"A": 42, "B": "42"}


def test_env_var_tag_on_a_mapping_is_an_error(write):
    path = write("A: !env_var {b: 1}\n")
    with pytest.raises(ConfigurationError, match=r"config.yaml:1: invalid"):
        load_config(path, env={})


# --- errors -------------------------------------------------------------------


def test_missing_variable_names_file_key_and_variable(write):
    path = write("""
        OTHER: 1
        AMQP_URI: amqp://${RABBIT_USER:guest}:${RABBIT_PASS}@localhost
    """)
    with pytest.raises(ConfigurationError) as exc_info:
        load_config(path, env={})
    assert str(exc_info.value) == (
        f"{path}:3: key 'AMQP_URI': environment variable RABBIT_PASS is not "
        f"set and has no default")


def test_missing_variable_key_path_is_dotted_and_indexed(write):
    path = write("""
        WEB:
          SERVERS:
            - host: a
            - host: ${HOST_B}
    """)
    with pytest.raises(ConfigurationError,
                       match=r"key 'WEB\.SERVERS\[1\]\.host'.*HOST_B"):
        load_config(path, env={})


def test_missing_variable_in_later_file_names_that_file(write):
    first = write("A: 1\n", "first.yaml")
    second = write("B: ${UNSET}\n", "second.yaml")
    with pytest.raises(ConfigurationError, match=r"second\.yaml:1: key 'B'"):
        load_config([first, second], env={})


@pytest.mark.parametrize("text, problem", [
    ("A: ${UNCLOSED\n", "unterminated"),
    ("A: ${A:${B:x}\n", "unterminated"),
    ("A: ${}\n", "invalid environment variable name"),
    ("A: ${1ABC}\n", "invalid environment variable name"),
    ("A: ${BAD NAME}\n", "invalid environment variable name"),
])
def test_malformed_references(write, text, problem):
    with pytest.raises(ConfigurationError, match=problem) as exc_info:
        load_config(write(text), env={})
    assert "config.yaml:1: key 'A'" in str(exc_info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigurationError,
                       match=f"{path}: config file not found"):
        load_config(path, env={})


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read config file"):
        load_config(tmp_path, env={})


def test_bad_yaml_names_file_and_line(write):
    path = write("""
        A: 1
        B: [unclosed
        C: 3
    """)
    with pytest.raises(ConfigurationError) as exc_info:
        load_config(path, env={})
    message = str(exc_info.value)
    assert message.startswith(f"{path}:")
    assert "invalid YAML" in message
    line = int(message[len(str(path)) + 1:].split(":")[0])
    assert 3 <= line <= 5


def test_bad_indentation_names_line(write):
    path = write("A:\n  b: 1\n c: 2\n")
    with pytest.raises(ConfigurationError, match=rf"{path}:3: invalid YAML"):
        load_config(path, env={})


def test_unsafe_tags_are_refused(write):
    path = write("A: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigurationError, match=re.escape("config.yaml:1: invalid")):
        load_config(path, env={})


@pytest.mark.parametrize("text, kind", [
    ("- a\n- b\n", "list"),
    ("just a string\n", "str"),
    ("42\n", "int"),
])
def test_top_level_must_be_mapping(write, text, kind):
    with pytest.raises(ConfigurationError,
                       match=f"config.yaml: the top level must be a mapping"
                             f".*not a {kind}"):
        load_config(write(text), env={})


def test_configuration_error_is_not_chained_to_internals(write):
    with pytest.raises(ConfigurationError) as exc_info:
        load_config(write("A: ${UNSET}\n"), env={})
    assert exc_info.value.__cause__ is None
    assert exc_info.value.__suppress_context__


# --- substitute ---------------------------------------------------------------


def test_substitute_public_helper():
    assert substitute("a${X}b${Y:y}", {"X": "x"}) == "axby"
    with pytest.raises(ConfigurationError, match="X is not set"):
        substitute("${X}", {})
    with pytest.raises(ConfigurationError, match="unterminated"):
        substitute("${X", {})


# --- apply_overrides ----------------------------------------------------------


def test_overrides_set_top_level_and_nested_keys():
    config = {"AMQP_URI": "amqp://a", "WEB": {"HOST": "0.0.0.0"}}
    result = apply_overrides(config, [
        "AMQP_URI=amqp://b", "WEB.PORT=9000", "NEW.DEEP.KEY=x"])
    assert result == {
        "AMQP_URI": "amqp://b",
        "WEB": {"HOST": "0.0.0.0", "PORT": 9000},
        "NEW": {"DEEP": {"KEY": "x"}},
    }


def test_overrides_do_not_change_input():
    config = {"WEB": {"HOST": "h"}}
    apply_overrides(config, ["WEB.PORT=1"])
    assert config == {"WEB": {"HOST": "h"}}


@pytest.mark.parametrize("raw, expected", [
    ("9000", 9000),
    ("1.5", 1.5),
    ("true", True),
    ("off", False),
    ("null", None),
    ("", ""),
    ("text", "text"),
    ("abc #1", "abc #1"),
    ("a=b", "a=b"),  # only the first "=" separates key from value
    ("[1, two]", [1, "two"]),
    ("{a: 1}", {"a": 1}),
    ("amqp://u:p@h:5672/", "amqp://u:p@h:5672/"),
])
def test_override_values_are_yaml_typed(raw, expected):
    assert apply_overrides({}, [f"KEY={raw}"]) == {"KEY": expected}


def test_overrides_as_mapping():
    assert apply_overrides({}, {"A.B": "2", "C": 3}) == {"A": {"B": 2}, "C": 3}


def test_override_replaces_scalar_leaf_but_not_through_it():
    assert apply_overrides({"A": 1}, ["A=2"]) == {"A": 2}
    with pytest.raises(ConfigurationError, match="A is a int, not a mapping"):
        apply_overrides({"A": 1}, ["A.B=2"])


@pytest.mark.parametrize("define", ["NOEQUALS", "=value", " =x"])
def test_malformed_define(define):
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        apply_overrides({}, [define])


@pytest.mark.parametrize("define", ["A..B=1", ".A=1", "A.=1"])
def test_define_key_with_empty_part(define):
    with pytest.raises(ConfigurationError, match="empty part"):
        apply_overrides({}, [define])


def test_define_with_bad_flow_yaml():
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        apply_overrides({}, ["A=[1, 2"])


# --- dump_config --------------------------------------------------------------


def test_dump_round_trips_and_keeps_order():
    config = {"Z": 1, "A": {"nested": [1, "two", None]}, "B": True,
              "URI": "amqp://u:p@h/"}
    text = dump_config(config)
    assert yaml.safe_load(text) == config
    assert text.index("Z:") < text.index("A:") < text.index("B:")


def test_dump_loaded_config(write):
    path = write("PORT: ${PORT:8000}\nNAME: ${NAME:svc}\n")
    assert dump_config(load_config(path, env={})) == "PORT: 8000\nNAME: svc\n"


def test_yaml_error_names_the_line_where_the_construct_began(write):
    # PyYAML notices the unclosed quote only at the end of the file; the
    # line to fix is the one where the quoted value began.
    path = write('A: 1\nfoo:\n  bar: "unclosed\n  baz: 1\nqux: 2\n')
    with pytest.raises(ConfigurationError) as exc_info:
        load_config(path)
    assert str(exc_info.value).endswith(
        'config.yaml:6: invalid YAML: found unexpected end of stream (while scanning a '
        'quoted scalar that began at line 3: bar: "unclosed)')


def test_yaml_error_shows_both_lines(write):
    path = write("a: 1\nb:\n  - x\n  c: 2\n")
    with pytest.raises(ConfigurationError) as exc_info:
        load_config(path)
    assert str(exc_info.value).endswith(
        "config.yaml:4: invalid YAML: expected <block end>, but found '?' "
        "(while parsing a block collection that began at line 3: - x)")


def test_misspelt_framework_key_is_kept_with_a_did_you_mean_warning(write, caplog):
    path = write("AMQP_UIR: amqp://elsewhere\nDB_URIS: {}\nGREETING: hi\n"
                 "WEB_SERVER_ADRESS: 0.0.0.0:9\nmax_workrs: 3\n")
    with caplog.at_level("WARNING", logger="nameko_like.config_keys"):
        config = load_config(path)
    # nothing is rejected: user keys stay available to user code
    assert config["AMQP_UIR"] == "amqp://elsewhere"
    assert config["DB_URIS"] == {}
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert "unknown config key 'AMQP_UIR': did you mean 'AMQP_URI'?" in warnings[0]
    assert "unknown config key 'WEB_SERVER_ADRESS': did you mean 'WEB_SERVER_ADDRESS'?" \
        in warnings[1]
    assert all("config.yaml" in warning for warning in warnings)


def test_known_keys_raise_no_warning(write, caplog):
    path = write("AMQP_URI: memory://\nWEB_SERVER_ADDRESS: 0.0.0.0:8000\nLOGGING: {version: 1}\n"
                 "HEARTBEAT: 5\nMAX_REDELIVERIES: 2\nmax_workers: 3\n")
    with caplog.at_level("WARNING", logger="nameko_like.config_keys"):
        load_config(path)
    assert caplog.records == []
