//! The key this node signs notarisations with: kept in its data directory, outside the
//! replicated state (each node signs with its own; `synod_ledger::http` uses it).

/// This node's notary signing key, `data_dir/notary.key` (32 random bytes, created on first
/// start, readable by the owner only).
///
/// # Errors
/// The key file cannot be read or created, or does not hold 32 bytes.
pub(crate) fn notary_key(data_dir: &std::path::Path) -> std::io::Result<ed25519_dalek::SigningKey> {
    let path = data_dir.join("notary.key");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path)?;
            std::io::Write::write_all(&mut file, &seed)?;
            file.sync_all()?;
            seed.to_vec()
        }
        Err(e) => return Err(e),
    };
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: a notary key is 32 bytes", path.display()),
        )
    })?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}
