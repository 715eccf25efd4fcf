//! deploy/: the Kubernetes Indexed Job runs the Dockerfile's image as shard
//! `$JOB_COMPLETION_INDEX` of N into object storage, with the config from a Secret. No
//! cluster runs here, so the manifest is parsed and its fields checked; the args go
//! through the connector's own command line.

use std::path::Path;

use clap::Parser;
use serde_json::Value;
use source_stripe::cli::{Cli, Command};
use source_stripe::shard::Shard;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&repo(path)).unwrap()
}

/// `io.airbyte.name:io.airbyte.version` from the Dockerfile's labels.
fn dockerfile_image() -> String {
    let dockerfile = repo("Dockerfile");
    let label = |name: &str| {
        dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("LABEL {name}=")))
            .unwrap()
            .trim()
            .to_owned()
    };
    format!(
        "{}:{}",
        label("io.airbyte.name"),
        label("io.airbyte.version")
    )
}

#[test]
fn the_indexed_job_runs_one_shard_per_pod_from_the_dockerfiles_image() {
    let job = yaml("deploy/kubernetes/job.yaml");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["apiVersion"], "batch/v1");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "every shard at once");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], dockerfile_image().as_str());

    // The index variable comes from the pod's completion-index annotation.
    let env = container["env"].as_array().unwrap();
    let index = env
        .iter()
        .find(|e| e["name"] == "JOB_COMPLETION_INDEX")
        .expect("JOB_COMPLETION_INDEX is declared");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );

    // The args, as pod I gets them after Kubernetes expands $(JOB_COMPLETION_INDEX).
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert!(
        args.iter().any(|a| a.contains("$(JOB_COMPLETION_INDEX)")),
        "{args:?}"
    );
    let mounts = container["volumeMounts"].as_array().unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    for i in 0..n {
        let expanded = args
            .iter()
            .map(|a| a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string()));
        let cli = Cli::try_parse_from(std::iter::once("source-stripe".to_owned()).chain(expanded))
            .unwrap_or_else(|e| panic!("pod {i}: {e}"));
        let Command::Read {
            config,
            output_dir,
            shard,
            ..
        } = cli.command
        else {
            panic!("pod {i} does not run read");
        };
        assert_eq!(
            shard,
            Some(Shard {
                index: i as u32,
                count: n as u32
            }),
            "pod {i} reads shard {i} of {n}"
        );
        let output = output_dir.unwrap();
        assert!(
            output.to_string_lossy().starts_with("s3://"),
            "into object storage: {}",
            output.display()
        );
        // The config file is in a volume mounted from the Secret.
        let mount = mounts
            .iter()
            .find(|m| config.starts_with(m["mountPath"].as_str().unwrap()))
            .expect("the config is on a mounted volume");
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        let secret = volume["secret"]["secretName"]
            .as_str()
            .expect("a Secret volume");
        let file = config.file_name().unwrap().to_str().unwrap();
        let secret_manifest = yaml("deploy/kubernetes/secret.example.yaml");
        assert_eq!(secret_manifest["kind"], "Secret");
        assert_eq!(secret_manifest["metadata"]["name"], secret);
        let config_json = secret_manifest["stringData"][file].as_str().unwrap();
        let config: Value = serde_json::from_str(config_json).unwrap();
        assert_eq!(
            config["connected_accounts"], "all",
            "shards split connected accounts"
        );
    }
    // The bucket's keys come from the same Secret.
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        let var = env.iter().find(|e| e["name"] == key).unwrap();
        assert_eq!(var["valueFrom"]["secretKeyRef"]["name"], "source-stripe");
    }
}

/// The Airflow DAG maps one task per shard over the same image and shard count.
#[test]
fn the_airflow_dag_maps_a_task_per_shard() {
    let dag = repo("deploy/airflow/stripe_shards.py");
    assert!(dag.contains(".expand("), "dynamic task mapping");
    assert!(dag.contains(&format!("IMAGE = \"{}\"", dockerfile_image())));
    let job = yaml("deploy/kubernetes/job.yaml");
    let n = job["spec"]["completions"].as_u64().unwrap();
    assert!(dag.contains(&format!("SHARDS = {n}")));
    assert!(dag.contains("\"--shard\", f\"{i}/{SHARDS}\""));
}
