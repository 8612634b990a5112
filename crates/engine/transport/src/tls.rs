//! rustls configuration for mutual TLS between nodes: both sides present a certificate from
//! the cluster CA; the acceptor requires one (no anonymous peers), the dialer checks the
//! server is the node it meant to reach.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why a TLS identity could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input is malformed or missing.
    #[error("{what}: {detail}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A node's TLS material: the cluster CA it trusts, and its own certificate and key.
#[derive(Debug)]
pub struct TlsIdentity {
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn certs(what: &'static str, pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let v: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let v = v.map_err(|e| TlsError::Pem {
        what,
        detail: e.to_string(),
    })?;
    if v.is_empty() {
        return Err(TlsError::Pem {
            what,
            detail: "no certificate found".into(),
        });
    }
    Ok(v)
}

impl TlsIdentity {
    /// Loads PEM text: the CA certificate(s), this node's certificate chain and its key.
    ///
    /// # Errors
    /// [`TlsError::Pem`] naming the bad input.
    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Result<TlsIdentity, TlsError> {
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError::Pem {
            what: "node key",
            detail: e.to_string(),
        })?;
        Ok(TlsIdentity {
            ca: certs("CA certificate", ca)?,
            chain: certs("node certificate", cert)?,
            key,
        })
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in &self.ca {
            roots.add(c.clone())?;
        }
        Ok(Arc::new(roots))
    }

    /// Acceptor side: requires a client certificate from the cluster CA.
    ///
    /// # Errors
    /// [`TlsError`] if the material is unusable.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }

    /// Dialer side: trusts only the cluster CA and presents this node's certificate.
    ///
    /// # Errors
    /// [`TlsError`] if the material is unusable.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }
}

/// True if `cert` (already verified against the CA by rustls) names `node`.
#[must_use]
pub fn certificate_names_node(cert: &CertificateDer<'_>, node: u16) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(crate::certs::node_name(node)) else {
        return false;
    };
    ee.verify_is_valid_for_subject_name(&name).is_ok()
}

/// The node `cert` (already verified against the CA by rustls) belongs to: its common name is
/// a node's (`node-1.synod`) and it is valid for that name. `None` for a client's certificate.
#[must_use]
pub fn certificate_node(cert: &CertificateDer<'_>) -> Option<u16> {
    let name = certificate_identity(cert)?;
    let node: u16 = name
        .strip_prefix("node-")?
        .strip_suffix(".synod")?
        .parse()
        .ok()?;
    certificate_names_node(cert, node).then_some(node)
}

/// The identity `cert` (already verified against the CA by rustls) names: its subject's common
/// name, as the cluster CA issues them (`client-alice` for `synod certs --clients alice`,
/// `node-1.synod` for node 1). `None` if it cannot be parsed or has no common name: such a
/// peer holds no role anywhere.
#[must_use]
pub fn certificate_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    (!name.is_empty()).then(|| name.to_string())
}
