//! Development certificates: a cluster CA and node certificates signed by it (what
//! `synod certs` writes). Each node certificate names the node as `node-{id}.synod`, which
//! is how a peer's claimed identity is checked against its certificate.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// The DNS name a node's certificate carries.
#[must_use]
pub fn node_name(node: u16) -> String {
    format!("node-{node}.synod")
}

/// A new self-signed cluster CA.
///
/// # Errors
/// [`CertError`] if key generation or signing fails.
pub fn generate_ca(cluster: &str) -> Result<Pem, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{cluster} cluster CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A certificate for `node`, signed by `ca`, valid as both TLS server and client.
///
/// # Errors
/// [`CertError`] if the CA cannot be parsed or signing fails.
pub fn issue_node(ca: &Pem, node: u16) -> Result<Pem, CertError> {
    issue_node_for_hosts(ca, node, &[])
}

/// Like [`issue_node`], also naming `api_hosts` (DNS names or IP addresses) so that HTTPS
/// clients of the node's API can verify it under the name they dial.
///
/// # Errors
/// [`CertError`] if the CA cannot be parsed or signing fails.
pub fn issue_node_for_hosts(ca: &Pem, node: u16, api_hosts: &[String]) -> Result<Pem, CertError> {
    let mut names = vec![node_name(node)];
    names.extend(api_hosts.iter().cloned());
    issue(ca, &node_name(node), names)
}

/// The common name of API client `name`'s certificate.
#[must_use]
pub fn client_name(name: &str) -> String {
    format!("client-{name}")
}

/// A certificate for an API client identity, signed by `ca`.
///
/// # Errors
/// [`CertError`] if the CA cannot be parsed or signing fails.
pub fn issue_client(ca: &Pem, name: &str) -> Result<Pem, CertError> {
    issue(ca, &client_name(name), Vec::new())
}

/// A certificate for identity `common_name` with the given subject alternative names (a
/// name that parses as an IP address becomes an IP SAN), signed by `ca`.
///
/// # Errors
/// [`CertError`] if the CA cannot be parsed or signing fails.
pub fn issue(ca: &Pem, common_name: &str, dns_names: Vec<String>) -> Result<Pem, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)?;
    let mut params = CertificateParams::new(dns_names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}
