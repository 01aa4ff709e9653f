//! deploy/ checked against the binaries themselves, since nothing here can
//! run a container engine: the YAML parses, every environment variable is
//! one the binary reads (from clap's own definitions), ports and probes
//! point where the binaries listen, selectors select, one image everywhere,
//! and the Dockerfile builds all three binaries.

use std::collections::BTreeSet;

use clap::{Args, CommandFactory};
use funnel_deploycheck::{
    Container, YamlFile, deploy_dir, env_names, flag_default, funnel_containers, port_of, strings, yaml_files,
};
use yaml_rust2::Yaml;

const BINARIES: [&str; 3] = ["funnel-pipeline", "funnel-scorer", "funnel"];

fn files() -> Vec<YamlFile> {
    yaml_files().unwrap_or_else(|error| panic!("a YAML file under deploy/ does not parse: {error}"))
}

fn containers() -> Vec<Container> {
    let containers = funnel_containers(&files());
    for binary in BINARIES {
        assert!(containers.iter().any(|container| container.binary == binary), "no container runs {binary}");
    }
    containers
}

/// The clap command of a binary, for its flags and environment variables.
fn command_of(binary: &str) -> clap::Command {
    match binary {
        "funnel-pipeline" => funnel_pipeline::Config::command(),
        "funnel-scorer" => funnel_scorer::config::Cli::command(),
        // The CLI's connection flags are global; they are all a deployment sets.
        "funnel" => funnel_cli::ConnectArgs::augment_args(clap::Command::new("funnel")),
        other => panic!("{other} is not one of funnel's binaries"),
    }
}

fn kubernetes_objects(files: &[YamlFile]) -> Vec<&Yaml> {
    let mut objects = Vec::new();
    for file in files {
        for document in &file.documents {
            if document["kind"].as_str().is_some() && document["apiVersion"].as_str().is_some() {
                objects.push(document);
            }
        }
    }
    objects
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let files = files();
    let names: Vec<String> = files.iter().map(|file| file.path.display().to_string()).collect();
    assert!(names.iter().any(|name| name.ends_with("compose.yaml")), "files: {names:?}");
    assert!(names.iter().filter(|name| name.contains("/k8s/")).count() >= 4, "files: {names:?}");
    for file in &files {
        assert!(!file.documents.is_empty(), "{} is empty", file.path.display());
        for document in &file.documents {
            assert!(document.as_hash().is_some(), "{}: a document is not a mapping", file.path.display());
        }
    }
}

#[test]
fn every_environment_variable_is_one_the_binary_reads() {
    for container in containers() {
        let known = env_names(&command_of(&container.binary));
        for name in container.env.keys() {
            assert!(
                known.contains(name),
                "{}: {} does not read {name}; it reads {known:?}",
                container.origin,
                container.binary
            );
        }
    }
}

#[test]
fn every_flag_passed_is_one_the_binary_has() {
    for container in containers() {
        let command = command_of(&container.binary);
        let longs: BTreeSet<String> = all_longs(&command);
        for argument in &container.args {
            if let Some(long) = argument.strip_prefix("--") {
                let long = long.split('=').next().unwrap_or(long);
                assert!(
                    longs.contains(long) || container.binary == "funnel",
                    "{}: {} has no flag --{long}",
                    container.origin,
                    container.binary
                );
            }
        }
    }
    // The scorer's arguments parse as they are (the CLI's command is private to its binary).
    for container in containers().into_iter().filter(|container| container.binary == "funnel-scorer") {
        let mut argv = vec!["funnel-scorer".to_owned()];
        argv.extend(container.args.clone());
        if let Err(error) = funnel_scorer::config::Cli::command().try_get_matches_from(argv) {
            panic!("{}: {error}", container.origin);
        }
    }
}

fn all_longs(command: &clap::Command) -> BTreeSet<String> {
    let mut longs: BTreeSet<String> =
        command.get_arguments().filter_map(|argument| argument.get_long().map(str::to_owned)).collect();
    for subcommand in command.get_subcommands() {
        longs.extend(all_longs(subcommand));
    }
    longs
}

/// The port a binary listens on for `flag`: the container's setting, else the default.
fn listen_port(container: &Container, flag: &str, variable: &str) -> u16 {
    let configured = container.env.get(variable).cloned().flatten();
    let default = flag_default(&command_of(&container.binary), flag);
    let address = configured.or(default).unwrap_or_else(|| panic!("{}: no --{flag}", container.origin));
    port_of(&address).unwrap_or_else(|| panic!("{}: {variable}={address} has no port", container.origin))
}

#[test]
fn container_ports_are_the_ones_the_binaries_listen_on() {
    for container in containers() {
        let declared: BTreeSet<u16> = container.ports.iter().map(|(_, port)| *port).collect();
        let expected: BTreeSet<u16> = match container.binary.as_str() {
            "funnel-pipeline" => {
                let grpc = listen_port(&container, "listen", "FUNNEL_LISTEN");
                assert_eq!(
                    grpc,
                    port_of(&flag_default(&command_of("funnel-pipeline"), "listen").unwrap_or_default()).unwrap_or(0),
                    "{}: the gRPC port differs from the binary's default",
                    container.origin
                );
                let listen = container.env.get("FUNNEL_LISTEN").cloned().flatten().unwrap_or_default();
                assert!(
                    listen.starts_with("0.0.0.0:"),
                    "{}: FUNNEL_LISTEN={listen} is unreachable from outside",
                    container.origin
                );
                if container.origin.contains("k8s/") {
                    [grpc, listen_port(&container, "metrics-listen", "FUNNEL_METRICS_LISTEN")].into()
                } else {
                    [grpc].into()
                }
            }
            "funnel-scorer" if container.origin.contains("k8s/") => {
                [listen_port(&container, "metrics-listen", "FUNNEL_METRICS_LISTEN")].into()
            }
            _ => declared.clone(),
        };
        assert_eq!(declared, expected, "{}: ports", container.origin);
        for (name, port) in &container.ports {
            match name.as_deref() {
                Some("grpc") => {
                    assert_eq!(*port, listen_port(&container, "listen", "FUNNEL_LISTEN"), "{}", container.origin)
                }
                Some("metrics") => {
                    assert_eq!(
                        *port,
                        listen_port(&container, "metrics-listen", "FUNNEL_METRICS_LISTEN"),
                        "{}",
                        container.origin
                    )
                }
                _ => {}
            }
        }
        if let Some(metrics) = container.env.get("FUNNEL_METRICS_LISTEN").cloned().flatten() {
            assert!(metrics.starts_with("0.0.0.0:"), "{}: metrics on {metrics} cannot be scraped", container.origin);
        }
    }
}

#[test]
fn probes_ask_grpc_health_on_the_grpc_port() {
    let mut probed = 0;
    for container in containers().into_iter().filter(|container| container.binary == "funnel-pipeline") {
        let grpc = listen_port(&container, "listen", "FUNNEL_LISTEN");
        let kinds: BTreeSet<&str> = container.probes.iter().map(|(kind, _)| kind.as_str()).collect();
        for (kind, probe) in &container.probes {
            probed += 1;
            if kind == "healthcheck" {
                // compose: `funnel health` against the container's own port.
                let test = strings(&probe["test"]);
                assert_eq!(
                    test.get(1).map(String::as_str),
                    Some("/usr/local/bin/funnel"),
                    "{}: {test:?}",
                    container.origin
                );
                assert_eq!(test.get(2).map(String::as_str), Some("health"), "{}: {test:?}", container.origin);
                let server = test.iter().skip_while(|word| *word != "--server").nth(1).cloned().unwrap_or_default();
                assert_eq!(port_of(&server), Some(grpc), "{}: health asks {server}", container.origin);
                continue;
            }
            let port = probe["grpc"]["port"].as_i64();
            assert_eq!(port, Some(i64::from(grpc)), "{} {kind}: not a gRPC probe on {grpc}", container.origin);
            let service = probe["grpc"]["service"].as_str().unwrap_or("");
            match kind.as_str() {
                // Readiness follows the database: the whole server's status.
                "readinessProbe" => assert_eq!(service, "", "{} {kind}", container.origin),
                // Liveness must not restart pods because the database is away.
                _ => assert_eq!(service, funnel_pipeline::LIVENESS_SERVICE, "{} {kind}", container.origin),
            }
        }
        if container.origin.contains("k8s/") {
            assert!(
                kinds.contains("readinessProbe") && kinds.contains("livenessProbe"),
                "{}: {kinds:?}",
                container.origin
            );
        } else {
            assert!(kinds.contains("healthcheck"), "{}: no healthcheck", container.origin);
        }
    }
    assert!(probed >= 4, "too few probes found");
}

#[test]
fn services_and_the_disruption_budget_select_the_pipeline_pods() {
    let files = files();
    let objects = kubernetes_objects(&files);
    let containers = containers();
    let pipeline_pods: Vec<&Container> = containers
        .iter()
        .filter(|container| container.binary == "funnel-pipeline" && container.origin.contains("k8s/"))
        .collect();
    assert_eq!(pipeline_pods.len(), 1, "one Deployment runs the service");
    let pod = pipeline_pods[0];
    let selects = |selector: &Yaml| {
        let pairs = selector.as_hash().map(|hash| hash.len()).unwrap_or(0);
        pairs > 0
            && selector.as_hash().into_iter().flatten().all(|(key, value)| {
                pod.pod_labels.get(key.as_str().unwrap_or_default()).map(String::as_str) == value.as_str()
            })
    };
    let mut seen = BTreeSet::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        match kind {
            "Service" => {
                assert!(selects(&object["spec"]["selector"]), "the Service selects no pipeline pod");
                for port in object["spec"]["ports"].as_vec().into_iter().flatten() {
                    let target = port["targetPort"].as_str().unwrap_or_default();
                    assert!(
                        pod.ports.iter().any(|(name, _)| name.as_deref() == Some(target)),
                        "Service targetPort {target} is no named container port"
                    );
                }
                seen.insert(kind);
            }
            "PodDisruptionBudget" => {
                assert!(selects(&object["spec"]["selector"]["matchLabels"]), "the PDB selects no pipeline pod");
                seen.insert(kind);
            }
            "Deployment" => {
                assert!(
                    selects(&object["spec"]["selector"]["matchLabels"])
                        || !object["metadata"]["name"].as_str().unwrap_or_default().contains("pipeline")
                );
            }
            _ => {}
        }
    }
    assert_eq!(seen, BTreeSet::from(["PodDisruptionBudget", "Service"]));
}

#[test]
fn the_cronjob_queues_a_retrain_through_the_service() {
    let containers = containers();
    let cron =
        containers.iter().find(|container| container.origin.contains("CronJob/")).expect("a CronJob runs funnel");
    assert_eq!(cron.binary, "funnel");
    assert_eq!(cron.args.first().map(String::as_str), Some("retrain"), "{:?}", cron.args);
    assert!(cron.args.windows(2).any(|pair| pair[0] == "--pipeline" && pair[1] == "sales"), "{:?}", cron.args);
    let server = cron.env.get("FUNNEL_SERVER").cloned().flatten().expect("FUNNEL_SERVER is set");
    assert_eq!(server, "http://funnel-pipeline:50051", "the CronJob talks to the Service on its gRPC port");
    assert_eq!(cron.env.get("FUNNEL_TOKEN"), Some(&None), "the token comes from a Secret");
}

#[test]
fn every_funnel_container_runs_one_image_and_secrets_come_from_secrets() {
    let containers = containers();
    let images: BTreeSet<&str> = containers.iter().map(|container| container.image.as_str()).collect();
    assert_eq!(images.len(), 1, "images: {images:?}");
    let image = images.into_iter().next().unwrap_or_default();
    let kustomization = std::fs::read_to_string(deploy_dir().join("k8s/kustomization.yaml")).expect("kustomization");
    let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or_default();
    assert!(kustomization.contains(&format!("newTag: {tag}")), "kustomization pins another tag than {image}");
    for container in containers.iter().filter(|container| container.origin.contains("k8s/")) {
        for secret in ["FUNNEL_DATABASE_URL", "FUNNEL_TOKEN", "FUNNEL_TOKENS"] {
            if let Some(value) = container.env.get(secret) {
                assert!(
                    value.is_none(),
                    "{}: {secret} is written in the manifest, not taken from a Secret",
                    container.origin
                );
            }
        }
    }
    // Every Secret the manifests reference is described in the example.
    let files = files();
    let mut described = BTreeSet::new();
    let mut referenced = BTreeSet::new();
    for file in &files {
        let is_example = file.path.ends_with("secrets.example.yaml");
        for document in &file.documents {
            if is_example {
                described.extend(document["metadata"]["name"].as_str().map(str::to_owned));
            } else {
                secret_references(document, &mut referenced);
            }
        }
    }
    assert!(referenced.contains("funnel-database"), "referenced: {referenced:?}");
    let undescribed: Vec<&String> = referenced.difference(&described).collect();
    assert!(undescribed.is_empty(), "Secrets missing from secrets.example.yaml: {undescribed:?}");
}

/// Names of Secrets used by `secretKeyRef` and `secret` volumes, anywhere in `node`.
fn secret_references(node: &Yaml, names: &mut BTreeSet<String>) {
    match node {
        Yaml::Hash(hash) => {
            for (key, value) in hash {
                match key.as_str() {
                    Some("secretKeyRef") => names.extend(value["name"].as_str().map(str::to_owned)),
                    Some("secret") => names.extend(value["secretName"].as_str().map(str::to_owned)),
                    _ => {}
                }
                secret_references(value, names);
            }
        }
        Yaml::Array(items) => {
            for item in items {
                secret_references(item, names);
            }
        }
        _ => {}
    }
}

#[test]
fn the_dockerfile_builds_the_three_binaries_as_a_non_root_image() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("deploy/Dockerfile");
    let build =
        dockerfile.lines().find(|line| line.contains("cargo build --release")).expect("a cargo build --release step");
    for package in ["funnel-pipeline", "funnel-scorer", "funnel-cli"] {
        assert!(build.contains(&format!("-p {package}")), "the build step does not build {package}");
    }
    for binary in BINARIES {
        assert!(dockerfile.contains(&format!("target/release/{binary}")), "{binary} is not copied out");
    }
    assert!(dockerfile.contains("cargo chef cook"), "no dependency layer");
    let runtime = dockerfile.rsplit("\nFROM ").next().unwrap_or_default();
    let user = runtime.lines().find_map(|line| line.strip_prefix("USER ")).expect("the runtime stage sets USER");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "runs as {user}");
    // The binaries exist under those names.
    let root = deploy_dir().join("..");
    for (manifest, binary) in
        [("services/pipeline", "funnel-pipeline"), ("services/scorer", "funnel-scorer"), ("crates/cli", "funnel")]
    {
        let text = std::fs::read_to_string(root.join(manifest).join("Cargo.toml")).expect("Cargo.toml");
        assert!(text.contains(&format!("[[bin]]\nname = \"{binary}\"")), "{manifest} builds no {binary}");
    }
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore at the build context");
    assert!(ignore.lines().any(|line| line.trim() == "target/"), "the build context would ship target/");
}
