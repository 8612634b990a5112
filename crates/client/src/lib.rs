//! # synod-client: the command line's HTTP client
//!
//! Plain HTTP for an `insecure_plaintext_api` node, otherwise HTTPS that trusts only the
//! cluster CA and presents a client certificate from it. [`ApiArgs`] are the flags every
//! subcommand shares (`--api`, `--ca`, `--cert`, `--key`, or `SYNOD_*`); each application's
//! subcommands (`synod_kv::cli`, `synod_ledger::cli`) call its routes through [`Client`].
//! What it is not: a typed client library (answers are JSON text for the terminal).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// Where the API is and how to authenticate to it.
#[derive(clap::Args, Clone, Debug)]
pub struct ApiArgs {
    /// The node's API URL (`https://...`; `http://` only for a node serving plaintext).
    #[arg(
        long,
        env = "SYNOD_API",
        default_value = "https://127.0.0.1:8500",
        global = true
    )]
    pub api: String,
    /// The cluster CA certificate (PEM) the node's certificate must chain to.
    #[arg(long = "ca", id = "client_ca", env = "SYNOD_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM), issued by the cluster CA (`synod certs --clients`).
    #[arg(long = "cert", id = "client_cert", env = "SYNOD_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long = "key", id = "client_key", env = "SYNOD_KEY", global = true)]
    pub key: Option<PathBuf>,
}

/// A connection to one node's API.
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client for the node `args` names.
    ///
    /// # Errors
    /// An https URL without the certificates, unreadable certificates, or a URL that is not
    /// http or https.
    pub fn new(args: &ApiArgs) -> Result<Client> {
        let base = args.api.trim_end_matches('/').to_string();
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)));
        if base.starts_with("https://") {
            let (Some(ca), Some(cert), Some(key)) = (&args.ca, &args.cert, &args.key) else {
                bail!(
                    "an https API needs --ca, --cert and --key (or SYNOD_CA, SYNOD_CERT, \
                     SYNOD_KEY); `synod dev` prints them"
                );
            };
            let read =
                |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            let ca = Certificate::from_pem(&read(ca)?)
                .context("parsing the CA certificate")?
                .to_owned();
            let cert = Certificate::from_pem(&read(cert)?)
                .context("parsing the client certificate")?
                .to_owned();
            let key = PrivateKey::from_pem(&read(key)?)
                .context("parsing the client key")?
                .to_owned();
            let tls = TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
                .client_cert(Some(ClientCert::new_with_certs(&[cert], key)))
                .build();
            config = config.tls_config(tls);
        } else if !base.starts_with("http://") {
            bail!("the API URL must start with https:// or http://: {base}");
        }
        Ok(Client {
            agent: config.build().into(),
            base,
        })
    }

    /// Calls `method path` (with a JSON body for POST, a raw body for PUT) and returns the
    /// answer's text; a non-2xx answer is an error carrying the node's message.
    ///
    /// # Errors
    /// The request failed, or the node answered with an error.
    pub fn call(&self, method: &str, path: &str, body: Option<String>) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let mut resp = match (method, body) {
            ("PUT", Some(b)) => self.agent.put(&url).send(b),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(b),
            ("DELETE", _) => self.agent.delete(&url).call(),
            _ => self.agent.get(&url).call(),
        }
        .with_context(|| format!("{method} {url}"))?;
        text_of(&mut resp)
    }

    /// Calls `method path` with a JSON body; like [`Self::call`].
    ///
    /// # Errors
    /// As [`Self::call`].
    pub fn send_json(&self, method: &str, path: &str, body: &serde_json::Value) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "PUT" => self.agent.put(&url),
            _ => self.agent.post(&url),
        };
        let mut resp = request
            .header("content-type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("{method} {url}"))?;
        text_of(&mut resp)
    }

    /// `GET path`, the answer's raw bytes (up to `limit`); a non-2xx answer is an error.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub fn get_bytes(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .context("reading the answer")?;
        if !status.is_success() {
            bail!("{status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }
}

/// An answer's text; a non-2xx answer is an error carrying the node's message.
fn text_of(resp: &mut ureq::http::Response<ureq::Body>) -> Result<String> {
    let status = resp.status();
    let text = resp
        .body_mut()
        .read_to_string()
        .context("reading the answer")?;
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    Ok(text)
}

/// An access list on the command line; what is left out is left to the node's defaults (on
/// create: every role to the caller; on `access`: administrators stay the caller).
#[derive(clap::Args)]
pub struct AccessArgs {
    /// Identities that may administer (comma-separated; default: you).
    #[arg(long, value_delimiter = ',')]
    pub admins: Option<Vec<String>>,
    /// Identities that may write: submit transactions, or notarise.
    #[arg(long, value_delimiter = ',')]
    pub writers: Vec<String>,
    /// Identities that may read.
    #[arg(long, value_delimiter = ',')]
    pub readers: Vec<String>,
}

impl AccessArgs {
    /// Whether any part of the list was given.
    #[must_use]
    pub fn given(&self) -> bool {
        self.admins.is_some() || !self.writers.is_empty() || !self.readers.is_empty()
    }

    /// The list as the API takes it.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "writers": self.writers, "readers": self.readers });
        if let Some(admins) = &self.admins {
            v["admins"] = serde_json::json!(admins);
        }
        v
    }
}
