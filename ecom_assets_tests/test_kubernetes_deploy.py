"""The Kubernetes deploy (docs/kubernetes.md), checked as far as a machine without a cluster, Docker or helm can:

- the example ConfigMap and Secrets hold every variable of the cluster profile, the credentials only in Secrets;
- under them, with ECOM_EXECUTOR=k8s, the definitions load with every job on dagster_k8s's k8s_job_executor,
  its configuration valid for it, and a step's Kubernetes Job (built by dagster_k8s from that configuration and
  the code location's context) gets the variables and its size;
- the code server command of deploy/helm/values.yaml loads the definitions over gRPC;
- the values have the chart's shape (the keys this file sets, spelled as the chart's schema spells them), and
  the instance configuration the chart renders from them (run launcher, run queue, pools, storage) passes
  Dagster's own validation and keeps ecom_assets/dagster_cluster.yaml's settings;
- the image named there is the one the docs build from docker/dagster.Dockerfile.

`helm template dagster/dagster -f deploy/helm/values.yaml` (docs/kubernetes.md) is the full check, against the
chart's own values.schema.json and templates; it needs helm and the chart, which CI has not.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import jsonschema
import pytest
import yaml
from dagster._api.list_repositories import sync_list_repositories_grpc
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._grpc.client import DagsterGrpcClient
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
from kubernetes import client as k8s

from ecom_assets.definitions import build_definitions
from ecom_assets.executors import (
    K8S_ENV_CONFIG_MAP,
    K8S_ENV_SECRET,
    K8S_STEP_RESOURCES,
    K8S_TRAINING_RESOURCES,
    K8S_TRAINING_STEPS,
    k8s_step_executor,
    step_executor,
)
from ecom_assets.profile import CLUSTER_VARIABLES, ClusterConfig, ProfileError
from ecom_assets_tests.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
VALUES_FILE = REPO_ROOT / "deploy" / "helm" / "values.yaml"
EXAMPLE_ENV_FILE = REPO_ROOT / "deploy" / "k8s" / "ecom-assets-env.example.yaml"
DOCKERFILE = REPO_ROOT / "docker" / "dagster.Dockerfile"
KUBERNETES_DOC = REPO_ROOT / "docs" / "kubernetes.md"
IMAGE_NAME = "ecom-assets-dagster"  # <registry>/ecom-assets-dagster:<project version>, docs/kubernetes.md
NAMESPACE = "ecom"


def values() -> dict:
    return yaml.safe_load(VALUES_FILE.read_text())


def example_objects() -> dict[tuple[str, str], dict]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in yaml.safe_load_all(EXAMPLE_ENV_FILE.read_text())}


def example_env() -> dict[str, str]:
    """What a pod of ours gets from the example ConfigMap and Secret."""
    objects = example_objects()
    return {**objects["ConfigMap", K8S_ENV_CONFIG_MAP]["data"], **objects["Secret", K8S_ENV_SECRET]["stringData"]}


def code_deployment() -> dict:
    (deployment,) = values()["dagster-user-deployments"]["deployments"]
    return deployment


@pytest.fixture
def k8s_env(monkeypatch, tmp_path) -> dict[str, str]:
    """The environment of a pod of ours: the example ConfigMap and Secret, ECOM_HOME its scratch folder."""
    env = {**example_env(), "ECOM_HOME": str(tmp_path / "ecom_home"), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# -- the variables ---------------------------------------------------------------------------------------------


def test_the_example_objects_hold_the_cluster_profile_with_credentials_only_in_secrets(k8s_env):
    objects = example_objects()
    config_map = objects["ConfigMap", K8S_ENV_CONFIG_MAP]["data"]
    secret = objects["Secret", K8S_ENV_SECRET]["stringData"]
    assert set(CLUSTER_VARIABLES) <= set(config_map) | set(secret)
    assert (config_map["ECOM_PROFILE"], config_map["ECOM_EXECUTOR"]) == ("cluster", "k8s")
    ClusterConfig.from_env()  # the profile's own checks pass on the example's values
    # Keys and anything carrying a password stay out of the ConfigMap, and the example holds no real one.
    assert not [name for name, value in config_map.items() if ("AWS_" in name and "KEY" in name) or "password" in value]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secret)
    for name in ("ECOM_LAKE_CATALOG_DSN", "ECOM_MLFLOW_TRACKING_URI", "ECOM_DAGSTER_PG_URL"):
        assert "CHANGE_ME" in secret[name], name
    chart_secret = objects["Secret", values()["global"]["postgresqlSecretName"]]["stringData"]
    assert chart_secret == {"postgresql-password": "CHANGE_ME"}


def k8s_object(model: type, obj: dict):
    """obj as the Kubernetes client's model: an unknown or misspelt field fails, as the API server would refuse it."""
    return k8s_model_from_dict(model, k8s_snake_case_dict(model, obj))


def test_the_example_objects_and_the_sizes_are_valid_kubernetes_objects():
    for obj in yaml.safe_load_all(EXAMPLE_ENV_FILE.read_text()):
        assert k8s_object(getattr(k8s, f"V1{obj['kind']}"), obj).metadata.name == obj["metadata"]["name"]
    for resources in (K8S_STEP_RESOURCES, K8S_TRAINING_RESOURCES, code_deployment()["resources"]):
        k8s_object(k8s.V1ResourceRequirements, resources)
    with pytest.raises(Exception, match="stringdata"):
        k8s_object(k8s.V1Secret, {"apiVersion": "v1", "kind": "Secret", "stringdata": {"KEY": "value"}})


def test_the_charts_postgres_is_the_database_ecom_dagster_pg_url_names():
    """The chart writes the instance's storage from `postgresql`; ecom-assets init-home from ECOM_DAGSTER_PG_URL."""
    url = urlparse(example_env()["ECOM_DAGSTER_PG_URL"])
    postgres = values()["postgresql"]
    assert postgres["enabled"] is False and values()["generatePostgresqlPasswordSecret"] is False
    assert (url.hostname, url.port, url.username, url.path.lstrip("/")) == (
        postgres["postgresqlHost"],
        postgres["service"]["port"],
        postgres["postgresqlUsername"],
        postgres["postgresqlDatabase"],
    )


# -- the executor ----------------------------------------------------------------------------------------------


def test_the_definitions_load_with_every_job_on_the_k8s_executor(k8s_env):
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    jobs = defs.get_repository_def().get_all_jobs()
    assert {job.executor_def.name for job in jobs} == {"k8s"}
    resolved = jobs[0].executor_def.config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    config = resolved.value["config"]
    assert (config["env_config_maps"], config["env_secrets"]) == ([K8S_ENV_CONFIG_MAP], [K8S_ENV_SECRET])
    assert config["max_concurrent"] >= 2 and "enabled" in config["retries"]
    # The bigger pods go to steps that exist: per_step_k8s_config is keyed by op name, and a renamed asset
    # would silently fall back to the default size.
    op_names = {node.name for job in jobs for node in job.graph.node_defs}
    assert set(config["per_step_k8s_config"]) == set(K8S_TRAINING_STEPS) <= op_names


@pytest.mark.parametrize("executor", ["k8s", "celery"])
def test_the_distributed_executors_need_the_cluster_profile(monkeypatch, executor):
    monkeypatch.setenv("ECOM_EXECUTOR", executor)
    monkeypatch.setenv("ECOM_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("ECOM_PROFILE", raising=False)
    with pytest.raises(ProfileError, match=f"ECOM_EXECUTOR={executor} needs ECOM_PROFILE=cluster"):
        step_executor()


def step_job_container(op_name: str, executor_config: dict):
    """The container of the Kubernetes Job dagster_k8s builds for a step, as K8sStepHandler composes it: the
    code location's context (what includeConfigInLaunchedRuns carries from the values' deployment), merged
    with the executor's, then the step's own override."""
    deployment = code_deployment()
    code_location = K8sContainerContext(
        env_config_maps=[ref["name"] for ref in deployment["envConfigMaps"]],
        env_secrets=[ref["name"] for ref in deployment["envSecrets"]],
        resources=deployment["resources"],
    )
    executor = K8sContainerContext(
        env_config_maps=executor_config["env_config_maps"],
        env_secrets=executor_config["env_secrets"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(executor_config["step_k8s_config"]),
    )
    step = K8sContainerContext(
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(executor_config["per_step_k8s_config"].get(op_name, {}))
    )
    context = code_location.merge(executor).merge(step)
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    job = construct_dagster_k8s_job(
        DagsterK8sJobConfig(job_image=image, dagster_home="/opt/dagster/dagster_home"),
        ["dagster", "api", "execute_step"],
        "dagster-step-test",
        user_defined_k8s_config=context.run_k8s_config,
        pod_name="dagster-step-test",
        component="step_worker",
    )
    (container,) = job.spec.template.spec.containers
    return container


def test_a_step_pod_gets_the_variables_and_training_steps_the_bigger_size(k8s_env):
    resolved = k8s_step_executor().config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    config = resolved.value["config"]
    for op_name, size in (("silver_events", K8S_STEP_RESOURCES), ("ml__purchase_model", K8S_TRAINING_RESOURCES)):
        container = step_job_container(op_name, config)
        resources = {"requests": container.resources.requests, "limits": container.resources.limits}
        assert resources == size, op_name  # the executor's size, not the code server's
        sources = {(ref.config_map_ref or ref.secret_ref).name for ref in container.env_from}
        assert sources == {K8S_ENV_CONFIG_MAP, K8S_ENV_SECRET}, op_name
    gib = lambda size: float(size["limits"]["memory"].removesuffix("Gi"))  # noqa: E731
    assert gib(K8S_TRAINING_RESOURCES) > gib(K8S_STEP_RESOURCES) >= gib(code_deployment()["resources"])


# -- the code server -------------------------------------------------------------------------------------------


def test_the_code_server_command_of_the_values_loads_the_definitions(k8s_env, tmp_path):
    """What the chart runs in the code server pod: `dagster api grpc <dagsterApiGrpcArgs>`, with our env."""
    port = free_port()
    command = [sys.executable, "-m", "dagster", "api", "grpc", *code_deployment()["dagsterApiGrpcArgs"]]
    log = tmp_path / "grpc.log"
    env = {**os.environ, **k8s_env, "PYTHONPATH": str(REPO_ROOT)}
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-4000:]
            try:
                client.ping("up")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
                time.sleep(0.5)
        loaded = sync_list_repositories_grpc(client)  # raises with the load error if the definitions failed
        args = code_deployment()["dagsterApiGrpcArgs"]
        assert [symbol.attribute for symbol in loaded.repository_symbols] == [args[args.index("-a") + 1]]
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- the values ------------------------------------------------------------------------------------------------


def closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """An object with these keys only: a misspelt key fails here instead of being ignored by the chart."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


ANY, STRING, INT, BOOL = {}, {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
PULL_POLICY = {"enum": ["Always", "IfNotPresent", "Never"]}
NAMED_REFS = {"type": "array", "items": closed({"name": STRING}, ("name",))}
# The keys of the chart's values this file may set, spelled as the chart's values.schema.json (1.13) spells them.
CHART_VALUES_SHAPE = closed(
    {
        "global": closed({"postgresqlSecretName": STRING, "dagsterHome": STRING, "serviceAccountName": STRING}),
        "generatePostgresqlPasswordSecret": BOOL,
        "postgresql": closed(
            {
                "enabled": BOOL,
                "postgresqlHost": STRING,
                "postgresqlUsername": STRING,
                "postgresqlDatabase": STRING,
                "postgresqlParams": {"type": "object"},
                "service": closed({"port": INT}),
            },
            ("enabled", "postgresqlHost", "postgresqlUsername", "postgresqlDatabase"),
        ),
        "dagster-user-deployments": closed(
            {
                "enabled": BOOL,
                "enableSubchart": BOOL,
                "deployments": {
                    "type": "array",
                    "minItems": 1,
                    "items": closed(
                        {
                            "name": STRING,
                            "image": closed(
                                {
                                    "repository": STRING,
                                    "tag": STRING,
                                    "pullPolicy": {"enum": ["Always", "IfNotPresent"]},
                                },
                                ("repository", "tag", "pullPolicy"),
                            ),
                            "dagsterApiGrpcArgs": {"type": "array", "items": STRING},
                            "port": INT,
                            "includeConfigInLaunchedRuns": closed({"enabled": BOOL}, ("enabled",)),
                            "envConfigMaps": NAMED_REFS,
                            "envSecrets": NAMED_REFS,
                            "resources": closed({"requests": ANY, "limits": ANY}),
                            "volumes": {"type": "array"},
                            "volumeMounts": {"type": "array"},
                        },
                        ("name", "image", "dagsterApiGrpcArgs", "port"),
                    ),
                },
            },
            ("enabled", "deployments"),
        ),
        "runLauncher": closed(
            {
                "type": {"const": "K8sRunLauncher"},
                "config": closed(
                    {
                        "k8sRunLauncher": closed(
                            {
                                "imagePullPolicy": PULL_POLICY,
                                "jobNamespace": STRING,
                                "loadInclusterConfig": BOOL,
                                "envConfigMaps": NAMED_REFS,
                                "envSecrets": NAMED_REFS,
                                "envVars": {"type": "array", "items": STRING},
                                "volumeMounts": {"type": "array"},
                                "volumes": {"type": "array"},
                                "labels": {"type": "object", "additionalProperties": STRING},
                                "failPodOnRunFailure": BOOL,
                                "resources": ANY,
                                "runK8sConfig": ANY,
                            },
                            ("imagePullPolicy", "loadInclusterConfig", "envConfigMaps", "envSecrets"),
                        )
                    },
                    ("k8sRunLauncher",),
                ),
            },
            ("type", "config"),
        ),
        "scheduler": closed({"type": {"const": "DagsterDaemonScheduler"}, "config": ANY}, ("type",)),
        "dagsterDaemon": closed(
            {
                "enabled": BOOL,
                "runCoordinator": closed(
                    {"enabled": BOOL, "type": {"const": "QueuedRunCoordinator"}, "config": ANY}, ("enabled", "type")
                ),
                "runMonitoring": closed(
                    {
                        "enabled": BOOL,
                        "startTimeoutSeconds": INT,
                        "pollIntervalSeconds": INT,
                        "maxResumeRunAttempts": INT,
                    }
                ),
                "runRetries": closed({"enabled": BOOL, "maxRetries": INT}),
                "sensors": closed({"useThreads": BOOL, "numWorkers": INT}, ("useThreads",)),
                "schedules": closed({"useThreads": BOOL, "numWorkers": INT}, ("useThreads",)),
                "resources": ANY,
            },
            ("enabled",),
        ),
        "concurrency": closed(
            {
                "enabled": BOOL,
                "pools": closed({"defaultLimit": INT, "granularity": {"enum": ["op", "run"]}}),
                "runs": closed({"maxConcurrentRuns": INT}),
            },
            ("enabled",),
        ),
        "telemetry": closed({"enabled": BOOL}, ("enabled",)),
        "imagePullSecrets": NAMED_REFS,
        "additionalInstanceConfig": {"type": "object"},
    },
    ("postgresql", "dagster-user-deployments", "runLauncher", "dagsterDaemon"),
)


def test_the_values_have_the_charts_shape():
    jsonschema.validate(values(), CHART_VALUES_SHAPE)
    misspelt = values()
    misspelt["runLauncher"]["config"]["k8sRunLauncher"]["envSecret"] = [{"name": K8S_ENV_SECRET}]
    with pytest.raises(jsonschema.ValidationError, match="envSecret"):
        jsonschema.validate(misspelt, CHART_VALUES_SHAPE)


def rendered_instance(chart_values: dict) -> dict:
    """The dagster.yaml the chart writes into its instance ConfigMap, for the keys these values set: a Python
    rendering of the chart's templates/helpers/instance (dagsterYaml.*), camelCase values to snake_case config."""
    postgres = chart_values["postgresql"]
    storage_config = {
        "postgres_db": {
            "username": postgres["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},  # from global.postgresqlSecretName
            "hostname": postgres["postgresqlHost"],
            "db_name": postgres["postgresqlDatabase"],
            "port": postgres["service"]["port"],
            "params": postgres.get("postgresqlParams", {}),
        }
    }
    launcher = chart_values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher_config = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": "dagster",
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": "dagster-instance",
        "postgres_password_secret": chart_values["global"]["postgresqlSecretName"],
        "env_config_maps": [ref["name"] for ref in launcher["envConfigMaps"]],
        "env_secrets": [ref["name"] for ref in launcher["envSecrets"]],
        **{
            snake: launcher[camel]
            for camel, snake in (
                ("envVars", "env_vars"),
                ("volumeMounts", "volume_mounts"),
                ("volumes", "volumes"),
                ("labels", "labels"),
                ("resources", "resources"),
            )
            if launcher.get(camel)
        },
        **({"fail_pod_on_run_failure": True} if launcher.get("failPodOnRunFailure") else {}),
    }
    daemon = chart_values["dagsterDaemon"]
    monitoring, retries = daemon["runMonitoring"], daemon["runRetries"]
    concurrency = chart_values["concurrency"]
    return {
        "scheduler": {"module": "dagster._core.scheduler", "class": "DagsterDaemonScheduler", "config": {}},
        **{
            name: {"module": f"dagster_postgres.{module}", "class": cls, "config": storage_config}
            for name, module, cls in (
                ("run_storage", "run_storage", "PostgresRunStorage"),
                ("event_log_storage", "event_log", "PostgresEventLogStorage"),
                ("schedule_storage", "schedule_storage", "PostgresScheduleStorage"),
            )
        },
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher_config},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator", "config": {}},
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "run_retries": {"enabled": retries["enabled"], "max_retries": retries["maxRetries"]},
        "sensors": {"use_threads": daemon["sensors"]["useThreads"], "num_workers": daemon["sensors"]["numWorkers"]},
        "schedules": {
            "use_threads": daemon["schedules"]["useThreads"],
            "num_workers": daemon["schedules"]["numWorkers"],
        },
        "concurrency": {
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
            "runs": {"max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"]},
        },
        "telemetry": {"enabled": chart_values["telemetry"]["enabled"]},
        **chart_values.get("additionalInstanceConfig", {}),
    }


def test_the_rendered_instance_passes_dagsters_validation_and_keeps_the_cluster_instance_settings(tmp_path):
    chart_values = values()
    assert chart_values["concurrency"]["enabled"] is True  # the chart writes `concurrency` only then
    instance = rendered_instance(chart_values)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    loaded, _ = dagster_instance_config(str(tmp_path))  # Dagster's own loading: schema and concurrency checks
    # Each configurable class's config against the class's own schema, the run launcher's included.
    for name in (
        "scheduler",
        "run_storage",
        "event_log_storage",
        "schedule_storage",
        "run_launcher",
        "run_coordinator",
    ):
        cls = getattr(importlib.import_module(loaded[name]["module"]), loaded[name]["class"])
        result = validate_config(cls.config_type(), loaded[name]["config"])
        assert result.success, (name, [error.message for error in result.errors])
    assert loaded["run_launcher"]["class"] == K8sRunLauncher.__name__
    assert {K8S_ENV_CONFIG_MAP} == set(loaded["run_launcher"]["config"]["env_config_maps"])
    assert {K8S_ENV_SECRET} == set(loaded["run_launcher"]["config"]["env_secrets"])
    # What ecom-assets init-home writes for the cluster profile, but for the storage (the chart's, on the same
    # database) and the run cap the chart adds.
    cluster_instance = yaml.safe_load((REPO_ROOT / "ecom_assets" / "dagster_cluster.yaml").read_text())
    assert set(cluster_instance) - {"storage"} <= set(loaded)
    for name in set(cluster_instance) - {"storage", "concurrency"}:
        assert loaded[name] == cluster_instance[name], name
    assert loaded["concurrency"]["pools"] == cluster_instance["concurrency"]["pools"]


# -- the image -------------------------------------------------------------------------------------------------


def test_the_image_is_the_one_the_docs_build_from_the_dockerfile():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    image = code_deployment()["image"]
    assert image["repository"].rsplit("/", 1)[-1] == IMAGE_NAME
    assert image["tag"] == project["version"]
    assert "image" not in values()["runLauncher"]["config"]["k8sRunLauncher"]  # runs use the code location's
    # The Dockerfile installs the project, so the image has its dependencies: dagster_k8s and dagster_postgres.
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^RUN pip install \.$", dockerfile, re.M) and "COPY ecom_assets ./ecom_assets" in dockerfile
    assert {"dagster-k8s", "dagster-postgres"} <= {re.split(r"[<>=\[ ]", dep)[0] for dep in project["dependencies"]}
    doc = KUBERNETES_DOC.read_text()
    assert f"docker build -f {DOCKERFILE.relative_to(REPO_ROOT)} -t $REGISTRY/{IMAGE_NAME}:$VERSION ." in doc
    assert f"-f {VALUES_FILE.relative_to(REPO_ROOT)}" in doc
