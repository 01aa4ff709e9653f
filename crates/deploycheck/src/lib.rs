//! Reads `deploy/` for the checks in `tests/wiring.rs`: every YAML document,
//! the containers that run one of funnel's binaries (from Kubernetes
//! manifests and the compose file alike), and the environment variables a
//! clap command reads. Nothing here needs a container engine or a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// The repository's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// One YAML file and its documents.
#[derive(Debug)]
pub struct YamlFile {
    pub path: PathBuf,
    pub documents: Vec<Yaml>,
}

/// Every `.yaml`/`.yml` file under `deploy/`, parsed; an error names the file.
pub fn yaml_files() -> Result<Vec<YamlFile>, String> {
    let mut paths = Vec::new();
    collect_yaml_paths(&deploy_dir(), &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        let documents = YamlLoader::load_from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        files.push(YamlFile { path, documents });
    }
    Ok(files)
}

fn collect_yaml_paths(dir: &Path, paths: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|error| error.to_string())?.path();
        if path.is_dir() {
            collect_yaml_paths(&path, paths)?;
        } else if path.extension().is_some_and(|extension| extension == "yaml" || extension == "yml") {
            paths.push(path);
        }
    }
    Ok(())
}

/// Every `env = ...` name of a clap command and its subcommands.
pub fn env_names(command: &clap::Command) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for argument in command.get_arguments() {
        if let Some(name) = argument.get_env() {
            names.insert(name.to_string_lossy().into_owned());
        }
    }
    for subcommand in command.get_subcommands() {
        names.extend(env_names(subcommand));
    }
    names
}

/// The default value of the flag `--long` of a command or its subcommands.
pub fn flag_default(command: &clap::Command, long: &str) -> Option<String> {
    for argument in command.get_arguments() {
        if argument.get_long() == Some(long) {
            return argument.get_default_values().first().map(|value| value.to_string_lossy().into_owned());
        }
    }
    command.get_subcommands().find_map(|subcommand| flag_default(subcommand, long))
}

/// The port of `host:port`.
pub fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// A container that runs one of funnel's binaries.
#[derive(Debug, Clone)]
pub struct Container {
    /// File and object, for messages: `k8s/pipeline.yaml Deployment/funnel-pipeline`.
    pub origin: String,
    /// `funnel-pipeline`, `funnel-scorer` or `funnel`.
    pub binary: String,
    pub image: String,
    pub args: Vec<String>,
    /// Each variable with its literal value (`None` when it comes from a Secret).
    pub env: BTreeMap<String, Option<String>>,
    /// Container ports, by name where the manifest names them.
    pub ports: Vec<(Option<String>, u16)>,
    /// `readinessProbe`, `livenessProbe`, `startupProbe` or `healthcheck`, as written.
    pub probes: Vec<(String, Yaml)>,
    /// The pod's labels (Kubernetes only).
    pub pod_labels: BTreeMap<String, String>,
}

/// Every container of `files` whose command is a binary in `/usr/local/bin/`.
pub fn funnel_containers(files: &[YamlFile]) -> Vec<Container> {
    let mut containers = Vec::new();
    for file in files {
        let name = file.path.strip_prefix(deploy_dir()).unwrap_or(&file.path).display().to_string();
        for document in &file.documents {
            if document["services"].as_hash().is_some() {
                containers.extend(compose_containers(&name, document));
            } else {
                containers.extend(kubernetes_containers(&name, document));
            }
        }
    }
    containers
}

fn kubernetes_containers(file: &str, document: &Yaml) -> Vec<Container> {
    let kind = document["kind"].as_str().unwrap_or_default();
    let object = format!("{file} {kind}/{}", document["metadata"]["name"].as_str().unwrap_or_default());
    let template = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &document["spec"]["template"],
        "CronJob" => &document["spec"]["jobTemplate"]["spec"]["template"],
        _ => return Vec::new(),
    };
    let pod_labels = string_map(&template["metadata"]["labels"]);
    let mut containers = Vec::new();
    for container in template["spec"]["containers"].as_vec().into_iter().flatten() {
        let Some(binary) = binary_of(&container["command"]) else { continue };
        let mut env = BTreeMap::new();
        for variable in container["env"].as_vec().into_iter().flatten() {
            let name = variable["name"].as_str().unwrap_or_default().to_owned();
            env.insert(name, variable["value"].as_str().map(str::to_owned));
        }
        let mut ports = Vec::new();
        for port in container["ports"].as_vec().into_iter().flatten() {
            let number = port["containerPort"].as_i64().and_then(|number| u16::try_from(number).ok());
            ports.push((port["name"].as_str().map(str::to_owned), number.unwrap_or(0)));
        }
        let mut probes = Vec::new();
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            if !container[probe].is_badvalue() {
                probes.push((probe.to_owned(), container[probe].clone()));
            }
        }
        containers.push(Container {
            origin: object.clone(),
            binary,
            image: container["image"].as_str().unwrap_or_default().to_owned(),
            args: strings(&container["args"]),
            env,
            ports,
            probes,
            pod_labels: pod_labels.clone(),
        });
    }
    containers
}

fn compose_containers(file: &str, document: &Yaml) -> Vec<Container> {
    let mut containers = Vec::new();
    for (name, service) in document["services"].as_hash().into_iter().flatten() {
        let service = merged(service);
        let Some(binary) = binary_of(&service["entrypoint"]) else { continue };
        let env = string_map(&service["environment"]).into_iter().map(|(name, value)| (name, Some(value))).collect();
        let mut ports = Vec::new();
        for published in strings(&service["ports"]) {
            // host:port:container or host-range:container; the container port is last.
            if let Some(port) = published.rsplit(':').next().and_then(|port| port.parse().ok()) {
                ports.push((None, port));
            }
        }
        let probes = if service["healthcheck"].is_badvalue() {
            Vec::new()
        } else {
            vec![("healthcheck".to_owned(), service["healthcheck"].clone())]
        };
        containers.push(Container {
            origin: format!("{file} service {}", name.as_str().unwrap_or_default()),
            binary,
            image: service["image"].as_str().unwrap_or_default().to_owned(),
            args: strings(&service["command"]),
            env,
            ports,
            probes,
            pod_labels: BTreeMap::new(),
        });
    }
    containers
}

/// A mapping with its YAML merge keys (`<<: *anchor`) applied, as compose does.
pub fn merged(mapping: &Yaml) -> Yaml {
    let Some(hash) = mapping.as_hash() else { return mapping.clone() };
    let merge_key = Yaml::String("<<".to_owned());
    let mut result = hash.clone();
    if let Some(Yaml::Hash(base)) = hash.get(&merge_key) {
        result.remove(&merge_key);
        for (key, value) in base {
            result.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Yaml::Hash(result)
}

fn binary_of(command: &Yaml) -> Option<String> {
    let first = strings(command).into_iter().next()?;
    first.strip_prefix("/usr/local/bin/").map(str::to_owned)
}

/// A sequence of scalars as strings (numbers and booleans as written).
pub fn strings(sequence: &Yaml) -> Vec<String> {
    sequence.as_vec().into_iter().flatten().filter_map(scalar).collect()
}

fn string_map(mapping: &Yaml) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (key, value) in mapping.as_hash().into_iter().flatten() {
        if let (Some(key), Some(value)) = (key.as_str(), scalar(value)) {
            map.insert(key.to_owned(), value);
        }
    }
    map
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}
