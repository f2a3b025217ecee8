from pathlib import Path

import pytest
import yaml

from negrl.config import Config, from_dict, load_config
from negrl.config_schema import schema_yaml
from negrl.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_default_config_loads_and_matches_dataclass_defaults_where_unset():
    config = load_config(REPO / "config" / "config.yaml")
    assert isinstance(config, Config)
    assert config.methods == ["grpo", "lens"] and len(config.seeds) >= 2
    assert config.data.task == "arith" and config.model.name_or_path is None


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").rglob("*.yaml")))
def test_every_shipped_config_is_valid(name):
    path = next((REPO / "config").rglob(name))
    config = load_config(path)
    assert config.train.steps >= 1


def test_committed_schema_is_generated_from_the_dataclasses():
    committed = (REPO / "workflow" / "schemas" / "config.schema.yaml").read_text()
    assert committed == schema_yaml(), "run: negrl config-schema --write workflow/schemas/config.schema.yaml"


def test_schema_accepts_the_default_and_rejects_what_the_loader_rejects():
    import jsonschema

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    jsonschema.validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), schema)
    for bad in ({"train": {"stepz": 3}}, {"train": {"steps": "3"}}, {"data": {"task": "gsm8k"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(ConfigError):
            from_dict(bad)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"stepz": 3}}, "unknown key 'train.stepz'; allowed keys under train: steps"),
        ({"train": {"steps": "many"}}, "key 'train.steps': expected an integer, got 'many'"),
        ({"train": {"lr": "1e-4"}}, "write 1.0e-4"),
        ({"data": {"task": "gsm8k"}}, "key 'data.task': expected one of 'arith', 'math', got 'gsm8k'"),
        ({"seeds": []}, "key 'seeds': expected at least one seed"),
        ({"train": {"prompts_per_step": 10, "mini_batches": 3}}, "train.mini_batches"),
        ({"eval": {"temperature": 0.0, "n_samples": 4}}, "greedy evaluation"),
        ({"model": {"toy": {"hidden_size": True}}}, "key 'model.toy.hidden_size': expected an integer"),
    ],
)
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        from_dict(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)


def test_section_hash_depends_only_on_named_sections():
    a, b = from_dict({}), from_dict({"report": {"seed": 5}})
    assert a.section_hash("train") == b.section_hash("train")
    assert a.section_hash("report") != b.section_hash("report")


def test_method_options_are_checked_for_every_configured_method_listed_or_not():
    """Options of a method outside ``methods`` are allowed (a --config methods=[grpo] run keeps the file's
    lens options) but still checked, like the options of the listed methods."""
    from negrl.methods.from_config import check_methods

    check_methods(from_dict({"methods": ["grpo"], "method_options": {"lens": {"alpha": 0.5}}}))
    with pytest.raises(ConfigError, match="unknown method 'lenz'"):
        check_methods(from_dict({"methods": ["grpo"], "method_options": {"lenz": {"alpha": 0.5}}}))
    with pytest.raises(ConfigError, match="alfa"):
        check_methods(from_dict({"methods": ["grpo"], "method_options": {"lens": {"alfa": 0.5}}}))
