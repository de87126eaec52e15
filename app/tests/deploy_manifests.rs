//! The deployment guide's manifests (`deploy/`) stay true to the code: each parses; every
//! container that runs livesessions runs a command the binary has; `deploy/config.toml`, with
//! each container's `LIVESESSIONS__…` variables on top, loads as the real service loads it (an
//! unknown key or a malformed value fails); probes and scrape annotations name the ports that
//! configuration listens on; the Temporal chart's values use PostgreSQL and create the namespace
//! the configuration names.

use livesessions::Settings;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The commands the image runs, as `livesessions --help` lists them.
const COMMANDS: [&str; 4] = ["worker", "api", "migrate", "setup"];

/// Values standing in for secrets, so the configuration can be loaded: a variable set from a
/// secret must have one here.
const SECRET_EXAMPLES: [(&str, &str); 4] = [
    ("LIVESESSIONS__DATABASE__URL", "postgres://livesessions:secret@postgresql:5432/livesessions"),
    ("LIVESESSIONS__EMAIL__SMTP__USERNAME", "sessions"),
    ("LIVESESSIONS__EMAIL__SMTP__PASSWORD", "secret"),
    ("LIVESESSIONS__WEBHOOKS__SECRET", "secret"),
];

fn deploy_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    Path::new(&dir).join("../deploy")
}

/// Every YAML document under `deploy/`, with its file.
fn documents() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    let mut dirs = vec![deploy_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("deploy/ exists") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "the deployment guide's manifests: {files:?}");
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            documents.push((file.clone(), value));
        }
    }
    documents
}

/// A container (Kubernetes) or service (Compose) that runs the livesessions image.
#[derive(Debug)]
struct Runs {
    /// Where, for messages.
    place: String,
    /// The subcommand.
    command: String,
    /// `LIVESESSIONS…` variables, secrets replaced by their example.
    env: HashMap<String, String>,
    /// The container itself (Kubernetes), for its ports and probes.
    container: Option<Value>,
    /// The pod's annotations (Kubernetes).
    annotations: Option<Value>,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn is_livesessions(image: Option<&Value>, build: Option<&Value>) -> bool {
    build.is_some() || image.and_then(Value::as_str).is_some_and(|i| i.contains("livesessions"))
}

fn secret_example(name: &str) -> String {
    let found = SECRET_EXAMPLES.iter().find(|(n, _)| *n == name);
    found.unwrap_or_else(|| panic!("{name} comes from a secret: add an example value")).1.into()
}

fn kubernetes_runs(file: &Path, document: &Value, runs: &mut Vec<Runs>) {
    let pod = &document["spec"]["template"];
    let Some(containers) = pod["spec"]["containers"].as_sequence() else { return };
    for container in containers {
        if !is_livesessions(container.get("image"), None) {
            continue;
        }
        let mut env = HashMap::new();
        for variable in container["env"].as_sequence().into_iter().flatten() {
            let name = text(&variable["name"]);
            let value = match variable.get("value") {
                Some(value) => text(value),
                None => secret_example(&name),
            };
            env.insert(name, value);
        }
        runs.push(Runs {
            place: format!("{} {}", file.display(), text(&container["name"])),
            command: text(&container["args"][0]),
            env,
            container: Some(container.clone()),
            annotations: pod["metadata"].get("annotations").cloned(),
        });
    }
}

fn compose_runs(file: &Path, document: &Value, runs: &mut Vec<Runs>) {
    let Some(services) = document["services"].as_mapping() else { return };
    for (name, service) in services {
        if !is_livesessions(service.get("image"), service.get("build")) {
            continue;
        }
        let env = service["environment"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| (text(k), text(v)))
            .collect();
        runs.push(Runs {
            place: format!("{} {}", file.display(), text(name)),
            command: text(&service["command"][0]),
            env,
            container: None,
            annotations: None,
        });
    }
}

/// The port of a `host:port` address.
fn port(address: &str) -> u64 {
    address.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("host:port")
}

/// The container port a probe names (by name or number).
fn probe_port(container: &Value, probe: &str) -> (String, u64) {
    let get = &container[probe]["httpGet"];
    let path = text(&get["path"]);
    let named = &get["port"];
    let number = match named {
        Value::Number(n) => n.as_u64().unwrap(),
        _ => container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"] == *named)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no port named {named:?}")),
    };
    (path, number)
}

fn check_ports(run: &Runs, settings: &Settings) {
    let Some(container) = &run.container else { return };
    let (wanted_path, wanted_port) = match run.command.as_str() {
        "api" => ("/healthz", port(&settings.http.addr)),
        "worker" => {
            let metrics = settings.temporal.metrics_addr.as_deref();
            ("/metrics", port(metrics.expect("a worker with probes serves metrics")))
        }
        _ => return,
    };
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            probe_port(container, probe),
            (wanted_path.into(), wanted_port),
            "{}",
            run.place
        );
    }
    let annotations = run.annotations.as_ref().expect("scrape annotations");
    // The API serves its metrics on its own port; the worker on the one its probes ask.
    let scraped = text(&annotations["prometheus.io/port"]).parse::<u64>().unwrap();
    assert_eq!(scraped, wanted_port, "{}: the scraped port", run.place);
    assert_eq!(text(&annotations["prometheus.io/path"]), "/metrics", "{}", run.place);
}

#[test]
fn the_manifests_name_only_what_exists() {
    let config = deploy_dir().join("config.toml");
    let mut runs = Vec::new();
    let mut helm_values = None;
    for (file, document) in documents() {
        kubernetes_runs(&file, &document, &mut runs);
        compose_runs(&file, &document, &mut runs);
        if file.ends_with("temporal/values.yaml") {
            helm_values = Some(document);
        }
    }
    let commands: Vec<&str> = runs.iter().map(|r| r.command.as_str()).collect();
    for command in COMMANDS {
        assert!(commands.contains(&command), "no manifest runs `{command}`: {commands:?}");
    }
    for run in &runs {
        assert!(COMMANDS.contains(&run.command.as_str()), "{}: {}", run.place, run.command);
        let help = Command::new(env!("CARGO_BIN_EXE_livesessions"))
            .args([run.command.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(
            help.status.success(),
            "{}: `livesessions {}` does not exist",
            run.place,
            run.command
        );
        assert_eq!(
            run.env.get("LIVESESSIONS_CONFIG").map(String::as_str),
            Some("/etc/livesessions/config.toml"),
            "{}: reads the mounted config.toml",
            run.place
        );
        let env: HashMap<String, String> = run
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("LIVESESSIONS__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let settings = Settings::load_from(Some(&config), Some(env))
            .unwrap_or_else(|e| panic!("{}: {e:#}", run.place));
        check_ports(run, &settings);
    }

    let values = helm_values.expect("deploy/temporal/values.yaml");
    let persistence = &values["server"]["config"]["persistence"];
    for store in ["default", "visibility"] {
        let sql = &persistence["datastores"][store]["sql"];
        assert_eq!(text(&sql["pluginName"]), "postgres12", "the {store} store is PostgreSQL");
    }
    let namespace =
        Settings::load_from(Some(&config), Some(HashMap::new())).unwrap().temporal.namespace;
    let created = values["server"]["config"]["namespaces"]["namespace"].as_sequence().unwrap();
    assert!(
        created.iter().any(|n| n["name"] == namespace.as_str()),
        "the chart creates {namespace}"
    );
}
