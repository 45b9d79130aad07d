"""deploy/ checked without a container engine: compose against the compose-spec JSON schema
(shipped by check-jsonschema), Kubernetes manifests against the strict Kubernetes schemas
(shipped by kubernetes-validate), and every setting documented and passed through."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from honeychat.adapters.discord.settings import DiscordSettings
from honeychat.adapters.slack.settings import SlackSettings
from honeychat.adapters.telegram.settings import TelegramSettings
from honeychat.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.33.0"
ENV_ONLY = {"HONEYCHAT_CONFIG"}
"""Read from the environment by the settings loader itself, not a field."""


SETTINGS_MODELS = (Settings, TelegramSettings, DiscordSettings, SlackSettings)
"""The core's settings and each built-in adapter's (its plugin's ``config_model``)."""


def settings_variables() -> set[str]:
    return {name.upper() for model in SETTINGS_MODELS for name in model.model_fields} | ENV_ONLY


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def compose_schema() -> dict[str, Any]:
    path = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    return json.loads(path.read_text())


def test_compose_file_follows_the_compose_spec() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = compose()
    broken["services"]["redis"]["healthcheck"]["interval"] = ["not", "a", "duration"]
    broken["services"]["bot"]["restart_policy"] = "always"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_only_the_inspector_is_published_and_everything_has_a_healthcheck() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "chroma", "bot", "worker", "inspector"}
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"inspector"}
    assert all(port.startswith("127.0.0.1:") for port in services["inspector"]["ports"])
    for name, service in services.items():
        assert "test" in service.get("healthcheck", {}), name
    redis_args = services["redis"]["command"]
    assert redis_args[redis_args.index("--maxmemory-policy") + 1] == "noeviction"
    assert "--maxmemory" in redis_args and "--appendonly" in redis_args
    assert services["redis"]["deploy"]["resources"]["limits"]["memory"]
    assert any(v.startswith("redis-data:") for v in services["redis"]["volumes"])
    assert any(v.startswith("chroma-data:") for v in services["chroma"]["volumes"])
    assert services["bot"]["command"][0] == "run" and services["inspector"]["command"][0] == "serve"
    assert services["worker"]["command"][0] == "worker"


def _names(environment: list[str]) -> set[str]:
    return {item.split("=", 1)[0] for item in environment}


def test_every_setting_is_documented_and_passed_through_in_compose() -> None:
    wanted = settings_variables()
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert wanted - documented == set(), "settings missing from .env.example"
    assert documented - wanted == set(), ".env.example documents variables nobody reads"
    for name in ("bot", "worker", "inspector"):
        service = compose()["services"][name]
        assert service["env_file"] == "../.env"
        assert _names(service["environment"]) == wanted | {"REDIS_URL", "CHROMA_URL"}, name
        assert wanted - _names(service["environment"]) == set(), name


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append(
                    (f"{path.name}:{document['kind']}/{document['metadata']['name']}", document)
                )
    return found


@pytest.mark.parametrize("name,manifest", manifests(), ids=[n for n, _ in manifests()])
def test_kubernetes_manifests_follow_the_strict_schema(name: str, manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_the_kubernetes_check_catches_a_typo() -> None:
    _name, deployment = next((n, m) for n, m in manifests() if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_the_cluster_runs_several_bots_on_one_redis_and_one_chroma() -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for _, manifest in manifests():
        by_kind.setdefault(manifest["kind"], []).append(manifest)
    bot = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "honeychat-bot")
    assert bot["spec"]["replicas"] >= 2
    worker = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "honeychat-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker"
    stateful = {s["metadata"]["name"]: s["spec"]["replicas"] for s in by_kind["StatefulSet"]}
    assert stateful == {"redis": 1, "chroma": 1}
    config = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "honeychat")["data"]
    assert config["TELEGRAM_WEBHOOK_URL"].startswith("https://")
    webhook = next(s for s in by_kind["Service"] if s["metadata"]["name"] == "bot-webhook")
    assert webhook["spec"]["ports"][0]["targetPort"] == "webhook"
    secret_keys = set(by_kind["Secret"][0]["stringData"])
    assert {"INSPECTOR_TOKEN", "TELEGRAM_BOT_TOKEN"} <= secret_keys
    assert not secret_keys & set(config), "secrets belong in the Secret only"
    assert set(config) <= settings_variables()
    for deployment in by_kind["Deployment"]:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"secretRef": {"name": "honeychat"}} in container["envFrom"]


# The image: PyTorch only in the build stage


def _stages() -> list[str]:
    return re.split(r"^FROM ", (DEPLOY / "Dockerfile").read_text(), flags=re.M)[1:]


def test_the_run_time_packages_pull_in_no_pytorch() -> None:
    from deploy_runtime import EXPORT_ONLY, closure, runtime_requirements

    runtime = closure(runtime_requirements())
    assert {"onnxruntime", "tokenizers", "chromadb", "prompt-toolkit"} <= runtime
    assert runtime.isdisjoint({"torch", "transformers", "sentence-transformers", "onnx"})
    assert EXPORT_ONLY <= closure([*runtime_requirements(), *EXPORT_ONLY])


def test_the_final_image_ships_the_prepared_model_and_no_exporter() -> None:
    build, final = _stages()
    assert "python -m honeychat.core.memory.onnx_minilm" in build  # prepared at build time
    assert "download.pytorch.org/whl/cpu" in build  # the CPU build, not the CUDA one
    assert "COPY --from=build /opt/honeychat/models /opt/honeychat/models" in final
    assert "HONEYCHAT_CACHE_DIR=/opt/honeychat/models" in final
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "/opt/export" not in final and "torch" not in final and "pip install" not in final
