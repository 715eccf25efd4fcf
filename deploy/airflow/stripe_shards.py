"""Airflow: the shards of deploy/kubernetes/job.yaml as mapped tasks, one pod per shard.

Dynamic task mapping (`.partial(...).expand(...)`) makes one task instance per shard; each
runs the connector's image with `read --shard I/N` into the same object-storage prefix,
so a failed shard is retried on its own. The Stripe key and the bucket's credentials
come from the Kubernetes Secret `source-stripe` (deploy/kubernetes/secret.example.yaml).
Needs apache-airflow-providers-cncf-kubernetes.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

SHARDS = 4
IMAGE = "airbyte/source-stripe-rs:0.1.0"
OUTPUT = "s3://my-bucket/stripe"

config_volume = k8s.V1Volume(
    name="config",
    secret=k8s.V1SecretVolumeSource(
        secret_name="source-stripe",
        items=[k8s.V1KeyToPath(key="config.json", path="config.json")],
    ),
)
config_mount = k8s.V1VolumeMount(name="config", mount_path="/etc/source-stripe", read_only=True)
aws_env = [
    k8s.V1EnvVar(name="AWS_REGION", value="us-east-1"),
    k8s.V1EnvVar(
        name="AWS_ACCESS_KEY_ID",
        value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name="source-stripe", key="aws_access_key_id")
        ),
    ),
    k8s.V1EnvVar(
        name="AWS_SECRET_ACCESS_KEY",
        value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name="source-stripe", key="aws_secret_access_key")
        ),
    ),
]

with DAG(
    dag_id="stripe_shards",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one writer per shard: runs of the DAG never overlap
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2)},
) as dag:
    KubernetesPodOperator.partial(
        task_id="sync_shard",
        name="source-stripe-shard",
        image=IMAGE,
        volumes=[config_volume],
        volume_mounts=[config_mount],
        env_vars=aws_env,
        get_logs=True,
    ).expand(
        arguments=[
            ["read", "--config", "/etc/source-stripe/config.json",
             "--output-dir", OUTPUT, "--shard", f"{i}/{SHARDS}"]
            for i in range(SHARDS)
        ]
    )
