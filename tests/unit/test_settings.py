"""Configuration: one clear line per problem, upstream env names and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from nats_tower_operator.settings import (
    VARIABLES,
    ConfigError,
    TokenSource,
    Variable,
    load_settings,
    markdown_table,
    unknown_variables,
)

INST = "OC7OMSNNKRRZ3AQ3ZMBMYVDPBDI5UMFMZVJ6H4V5PNUUSM5UAB6BZFIT"


@pytest.fixture
def installations(tmp_path: Path) -> Path:
    path = tmp_path / "installations.yaml"
    path.write_text(f"{INST}: {{}}\n")
    return path


def base_env(installations: Path) -> dict[str, str]:
    return {
        "NATS_TOWER_URL": "https://tower.example.com/",
        "NATS_TOWER_API_TOKEN": "secret-token-value",
        "NATS_TOWER_CLUSTER_ID": "backend-prod",
        "NATS_TOWER_INSTALLATIONS_FILE_PATH": str(installations),
    }


def test_minimal_valid_config(installations: Path) -> None:
    s = load_settings(base_env(installations))
    assert s.tower_url == "https://tower.example.com"
    assert s.allowed_installations == frozenset({INST})
    assert s.namespace is None and not s.namespaced
    assert s.resync_interval == 600.0
    assert s.token() == "secret-token-value"
    assert "secret-token-value" not in repr(s)


def test_seed_configmap_style_namespaced(installations: Path) -> None:
    env = base_env(installations) | {
        "NATS_TOWER_NAMESPACE": "team-a",
        "NATS_TOWER_DEFAULT_INSTALLATION": INST,
        "NATS_TOWER_RESYNC_INTERVAL": "0.5",
    }
    s = load_settings(env)
    assert s.namespaced and s.namespace == "team-a"
    assert s.default_installation == INST
    assert s.resync_interval == 30.0


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("")
    with pytest.raises(ConfigError) as err:
        load_settings(
            {
                "NATS_TOWER_URL": "tower.example.com",
                "NATS_TOWER_INSTALLATIONS_FILE_PATH": str(bad),
                "NATS_TOWER_RESYNC_INTERVAL": "x",
            }
        )
    text = str(err.value)
    for needle in (
        "NATS_TOWER_URL",
        "NATS_TOWER_API_TOKEN",
        "NATS_TOWER_CLUSTER_ID",
        "non-empty YAML map",
        "NATS_TOWER_RESYNC_INTERVAL",
    ):
        assert needle in text
    assert len(err.value.problems) == 5


def test_default_not_in_allowed_list(installations: Path) -> None:
    with pytest.raises(ConfigError, match="not listed"):
        load_settings(
            base_env(installations) | {"NATS_TOWER_DEFAULT_INSTALLATION": "OA" + "B" * 54}
        )


def test_malformed_yaml_and_bad_keys(tmp_path: Path) -> None:
    for text, needle in (
        ("a: [", "not valid YAML"),
        ("notakey: {}", "not an installation public key"),
    ):
        path = tmp_path / "i.yaml"
        path.write_text(text)
        env = {
            "NATS_TOWER_URL": "http://t",
            "NATS_TOWER_API_TOKEN": "t",
            "NATS_TOWER_CLUSTER_ID": "c",
            "NATS_TOWER_INSTALLATIONS_FILE_PATH": str(path),
        }
        with pytest.raises(ConfigError, match=needle):
            load_settings(env)


def test_missing_default_file_falls_back_to_default_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "NATS_TOWER_URL": "http://t",
        "NATS_TOWER_API_TOKEN": "t",
        "NATS_TOWER_CLUSTER_ID": "c",
        "NATS_TOWER_DEFAULT_INSTALLATION": INST,
    }
    assert load_settings(env).allowed_installations == frozenset({INST})
    with pytest.raises(ConfigError, match="no installations allowed"):
        load_settings({k: v for k, v in env.items() if k != "NATS_TOWER_DEFAULT_INSTALLATION"})


def test_token_file_is_reread_and_errors_are_clear(tmp_path: Path, installations: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    env = base_env(installations) | {"NATS_TOWER_API_TOKEN_PATH": str(token)}
    s = load_settings(env)
    assert s.token() == "first"
    token.write_text("second")
    import os

    os.utime(token, (1, 1))
    assert s.token() == "second"
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_settings(env | {"NATS_TOWER_API_TOKEN_PATH": str(empty)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env | {"NATS_TOWER_API_TOKEN_PATH": str(tmp_path / "nope")})
    assert "first" not in repr(TokenSource(value="first"))


def test_leader_election_settings(installations: Path) -> None:
    s = load_settings(base_env(installations))
    assert not s.leader_election and s.leader_election_id == "nats-tower-operator"
    assert (s.lease_duration, s.renew_deadline, s.retry_period) == (15.0, 10.0, 2.0)
    on = load_settings(
        base_env(installations)
        | {
            "NATS_TOWER_LEADER_ELECTION": "true",
            "NATS_TOWER_LEADER_ELECTION_NAMESPACE": "ops",
            "NATS_TOWER_LEADER_ELECTION_LEASE_DURATION": "30",
        }
    )
    assert on.leader_election and on.leader_election_namespace == "ops"
    assert on.lease_duration == 30.0
    with pytest.raises(ConfigError) as err:
        load_settings(
            base_env(installations)
            | {
                "NATS_TOWER_LEADER_ELECTION": "maybe",
                "NATS_TOWER_LEADER_ELECTION_ID": "Bad_Name",
                "NATS_TOWER_LEADER_ELECTION_RENEW_DEADLINE": "20",
            }
        )
    text = str(err.value)
    assert "NATS_TOWER_LEADER_ELECTION:" in text and "Bad_Name" in text
    assert "RENEW_DEADLINE < LEASE_DURATION" in text


def test_the_readme_configuration_table_is_the_settings_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme


@pytest.mark.parametrize("var", [v for v in VARIABLES if v.shown_default.startswith("`")])
def test_each_documented_default_is_the_default_in_effect(var: Variable) -> None:
    parsed = var.parse(var.shown_default.strip("`"))
    if isinstance(parsed, float):
        assert parsed == pytest.approx(var.default, rel=1e-3)
    else:
        assert parsed == var.default


def test_unknown_and_go_operator_variables_are_named_in_warnings() -> None:
    warnings = unknown_variables(
        {
            "NATS_TOWER_URL": "http://t",
            "NATS_TOWER_SECRETS": "x",
            "NATS_TOWER_CONFIG_KIND": "file",
            "OTHER": "y",
        }
    )
    assert len(warnings) == 2
    assert warnings[0].startswith("NATS_TOWER_CONFIG_KIND is not a setting") and "Go" in warnings[0]
    assert warnings[1] == "NATS_TOWER_SECRETS is not a setting of this operator"
