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
    issue(ca, &node_name(node), vec![node_name(node)])
}

/// A certificate for a client identity `name` (for the API, later), signed by `ca`.
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
