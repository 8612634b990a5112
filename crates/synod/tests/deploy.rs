//! The deployment files (`deploy/`) against the binary they deploy: the Kubernetes manifests
//! validate against Kubernetes' own schemas (the kubernetes-validate package, which
//! `scripts/test.sh` installs), and the manifests, the compose file and the Containerfile
//! agree with the binary: every node's config is accepted by `synod check-config` and names
//! the ports, peers, files and directories the manifests give it; the probes' paths answer on
//! a running node; `synod certs` issues each node a certificate for its own names.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::BIN;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every document of a YAML file, as JSON values.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

/// The Kubernetes resources of `deploy/kubernetes`, by kind and name.
fn resources() -> BTreeMap<(String, String), Value> {
    let mut found = BTreeMap::new();
    for file in kubernetes_files() {
        for doc in yaml_documents(&file) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            found.insert((kind, name), doc);
        }
    }
    found
}

/// The manifests (the kustomization is kustomize's, not a Kubernetes resource).
fn kubernetes_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files
}

/// `synod check-config` on `toml`: the config as the binary reads it, every default filled.
fn checked(toml: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "synod check-config refused:\n{toml}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn port(addr: &Value) -> u64 {
    let addr = addr.as_str().unwrap();
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The `USER` and `EXPOSE` lines of the Containerfile.
fn containerfile() -> (String, Vec<u64>) {
    let text = std::fs::read_to_string(deploy().join("Containerfile")).unwrap();
    let line = |word: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(word))
            .unwrap()
            .trim()
            .to_string()
    };
    let ports = line("EXPOSE ")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    (line("USER "), ports)
}

#[test]
fn the_kubernetes_manifests_validate_against_kubernetes_schemas() {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.31.0"])
        .args(kubernetes_files())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubernetes-validate cannot run ({e}): scripts/test.sh installs it \
                 (pip install kubernetes-validate)"
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    for kind in ["statefulset", "service", "poddisruptionbudget", "configmap"] {
        assert!(
            said.contains(&format!("passed for resource {kind}/")),
            "{said}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_agree_with_the_binary() {
    let all = resources();
    let get = |kind: &str, name: &str| {
        all.get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let sts = get("StatefulSet", "synod");
    let spec = &sts["spec"];
    let replicas = spec["replicas"].as_u64().unwrap();
    let service = spec["serviceName"].as_str().unwrap();
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    // Nodes are ready only once they hear a quorum: started one by one, the first would wait
    // forever.
    assert_eq!(spec["podManagementPolicy"], "Parallel");

    let ports: BTreeMap<&str, u64> = by_name(&container["ports"], "containerPort")
        .into_iter()
        .map(|(name, port)| (name, port.as_u64().unwrap()))
        .collect();
    let mounts: BTreeMap<&str, &str> = by_name(&container["volumeMounts"], "mountPath")
        .into_iter()
        .map(|(name, path)| (name, path.as_str().unwrap()))
        .collect();
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };

    // The container starts `synod start --config <the ConfigMap's mount>/<pod name>.toml`.
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "start",
            "--config",
            &format!("{}/$(POD_NAME).toml", mounts["config"])
        ]
    );
    let pod_name = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "POD_NAME")
        .unwrap();
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let config_map = volume("config")["configMap"]["name"].as_str().unwrap();
    let configs = &get("ConfigMap", config_map)["data"];
    let secret = volume("tls")["secret"]["secretName"].as_str().unwrap();
    let secret_files = kustomized_secret_files(secret);
    assert_eq!(
        spec["volumeClaimTemplates"][0]["metadata"]["name"], "data",
        "the data volume is claimed per pod"
    );

    for n in 0..replicas {
        let key = format!("synod-{n}.toml");
        let config = checked(configs[&key].as_str().unwrap_or_else(|| panic!("no {key}")));
        assert_eq!(config["node"], n, "{key}");
        let members: Vec<u64> = (0..replicas).collect();
        assert_eq!(config["members"], serde_json::json!(members), "{key}");
        assert_eq!(port(&config["listen_peer"]), ports["peer"], "{key}");
        assert_eq!(port(&config["listen_api"]), ports["api"], "{key}");
        assert_eq!(port(&config["listen_health"]), ports["probes"], "{key}");
        assert_eq!(config["data_dir"], mounts["data"], "{key}");
        assert_eq!(config["insecure_plaintext_api"], false, "{key}");
        // Peers by the stable names the headless service gives the pods.
        for j in (0..replicas).filter(|j| *j != n) {
            assert_eq!(
                config["peers"][j.to_string()],
                format!("synod-{j}.{service}:{}", ports["peer"]),
                "{key}"
            );
        }
        // Certificates from the Secret, each file in it.
        for file in ["ca", "cert", "key"] {
            let path = Path::new(config["tls"][file].as_str().unwrap());
            assert_eq!(path.parent().unwrap(), Path::new(mounts["tls"]), "{key}");
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                secret_files.contains(&name.to_string()),
                "{name} not in the Secret"
            );
        }
    }

    // The probes' paths and port.
    let probe = |which: &str| {
        let get = &container[which]["httpGet"];
        assert_eq!(get["port"], "probes", "{which}");
        get["path"].as_str().unwrap().to_string()
    };
    probes_answer(&probe("livenessProbe"), &probe("readinessProbe"));

    // The headless service publishes the names before the pods are ready (a node needs its
    // peers to become ready), the client service reaches the API.
    let headless = &get("Service", service)["spec"];
    assert_eq!(headless["clusterIP"], "None");
    assert_eq!(headless["publishNotReadyAddresses"], true);
    assert_eq!(headless["ports"][0]["targetPort"], "peer");
    let client = &get("Service", "synod-client")["spec"];
    assert_eq!(client["ports"][0]["targetPort"], "api");
    assert_eq!(client["selector"], spec["selector"]["matchLabels"]);

    // Voluntary disruptions leave a quorum.
    let pdb = &get("PodDisruptionBudget", "synod")["spec"];
    let unavailable = pdb["maxUnavailable"].as_u64().unwrap();
    assert!(
        replicas - unavailable > replicas / 2,
        "the budget allows losing a quorum"
    );

    // The image's user and ports.
    let (user, exposed) = containerfile();
    let security = &pod["securityContext"];
    assert_eq!(
        user,
        format!("{}:{}", security["runAsUser"], security["runAsGroup"])
    );
    let mut declared: Vec<u64> = ports.values().copied().collect();
    declared.sort_unstable();
    let mut exposed = exposed;
    exposed.sort_unstable();
    assert_eq!(declared, exposed);
}

/// A Kubernetes list of named entries (ports, volume mounts) as name → the entry's `field`.
fn by_name<'a>(list: &'a Value, field: &str) -> BTreeMap<&'a str, &'a Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), &e[field]))
        .collect()
}

/// The file names the kustomization puts into the Secret `name`.
fn kustomized_secret_files(name: &str) -> Vec<String> {
    let k = &yaml_documents(&deploy().join("kubernetes/kustomization.yaml"))[0];
    let generator = k["secretGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("the kustomization makes no Secret {name}"));
    generator["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_str().unwrap();
            assert!(f.starts_with("certs/"), "{f}");
            f.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

/// A one-node cluster with its probes' listener answers 200 on both paths (the liveness
/// path at once, the readiness path once it is serving) and 404 elsewhere.
fn probes_answer(live: &str, ready: &str) {
    let dir = tempfile::tempdir().unwrap();
    common::certs(dir.path(), &[0]);
    let health = common::free_port();
    let peer = common::free_port();
    let mut node = common::node(
        dir.path(),
        0,
        &[0],
        peer,
        &[],
        &format!("listen_health = \"{health}\"\n{}", common::PLAINTEXT),
    );
    node.start();
    let agent = common::agent();
    let status = |path: &str| {
        agent
            .get(&format!("http://{health}{path}"))
            .call()
            .map_or(0, |r| r.status().as_u16())
    };
    assert_eq!(status(live), 200, "{live}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(ready) != 200 {
        assert!(Instant::now() < deadline, "{ready} never answered 200");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        status("/v1/status"),
        404,
        "the probes' port serves only the probes"
    );
}

#[test]
fn the_compose_file_agrees_with_the_binary() {
    let compose = &yaml_documents(&deploy().join("compose/compose.yaml"))[0];
    let services = compose["services"].as_object().unwrap();
    assert_eq!(services.len(), 3);
    let (user, exposed) = containerfile();
    assert_eq!(user, "10001:10001");
    for (n, (name, service)) in services.iter().enumerate() {
        assert_eq!(name, &format!("synod-{n}"));
        let volumes: BTreeMap<String, String> = service["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let v = v.as_str().unwrap();
                let mut parts = v.split(':');
                let (from, to) = (parts.next().unwrap(), parts.next().unwrap());
                (to.to_string(), from.to_string())
            })
            .collect();
        let command: Vec<&str> = service["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(command[..2], ["start", "--config"]);
        let file = volumes[command[2]].strip_prefix("./").unwrap();
        let config =
            checked(&std::fs::read_to_string(deploy().join("compose").join(file)).unwrap());
        assert_eq!(config["node"], n as u64);
        assert!(volumes[config["data_dir"].as_str().unwrap()].starts_with("data-"));
        let tls_dir = Path::new(config["tls"]["ca"].as_str().unwrap())
            .parent()
            .unwrap();
        assert_eq!(volumes[tls_dir.to_str().unwrap()], "./certs");
        for j in (0..3).filter(|j| *j != n) {
            assert_eq!(
                config["peers"][j.to_string()],
                format!("synod-{j}:{}", port(&config["listen_peer"]))
            );
        }
        for p in [
            &config["listen_peer"],
            &config["listen_api"],
            &config["listen_health"],
        ] {
            assert!(
                exposed.contains(&port(p)),
                "{p} is not exposed by the image"
            );
        }
        // The health check runs the image's own binary: `synod probe ready` at the probes'
        // port (a command this binary has).
        let check: Vec<&str> = service["healthcheck"]["test"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            check,
            [
                "CMD",
                "/synod",
                "probe",
                "ready",
                "--addr",
                &format!("127.0.0.1:{}", port(&config["listen_health"]))
            ]
        );
        let help = Command::new(BIN)
            .args(["probe", "--help"])
            .output()
            .unwrap();
        assert!(help.status.success());
    }
}

#[test]
fn synod_certs_gives_each_node_a_certificate_for_its_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["certs", "--out"])
        .arg(dir.path())
        .args([
            "--nodes",
            "0,1",
            "--hosts",
            "synod-{id}.synod,synod-client,10.0.0.9",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for n in 0..2u16 {
        let pem = std::fs::read(dir.path().join(format!("node-{n}.pem"))).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(ToString::to_string)
            .collect();
        let other = 1 - n;
        for want in [
            format!("DNSName(synod-{n}.synod)"),
            "DNSName(synod-client)".to_string(),
            // x509-parser shows an address's octets in hex.
            "IPAddress(0a:00:00:09)".to_string(),
        ] {
            assert!(names.contains(&want), "node {n}: {names:?} lacks {want}");
        }
        assert!(
            !names.iter().any(|s| s.contains(&format!("synod-{other}."))),
            "node {n} carries node {other}'s name: {names:?}"
        );
    }
}
