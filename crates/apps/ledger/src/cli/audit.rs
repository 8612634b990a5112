//! `synod ledger verify`: each node's chain fetched block by block in its canonical encoding,
//! audited on its own (crate::audit: links, Merkle roots, validation replayed, commit
//! hashes), then compared across nodes at their common height. `prove` and `consistency`
//! check a transaction's inclusion proof and a consistency proof from hashes alone.

use crate::merkle::{self, Hash};
use crate::{BatchConfig, Block, TxProof, audit};
use anyhow::{Context, Result, bail};

use synod_client::{ApiArgs, Client};

/// Largest block answer accepted (a block holds at most 10 MB of transactions by default).
const BLOCK_MAX: u64 = 64 * 1024 * 1024;

/// Audits `channel` on every node of `nodes` (or `api.api` alone); returns a report, or an
/// error naming the first node whose chain fails or disagrees.
pub(super) fn verify(api: &ApiArgs, channel: &str, nodes: &[String]) -> Result<String> {
    let urls: Vec<String> = if nodes.is_empty() {
        vec![api.api.clone()]
    } else {
        nodes.to_vec()
    };
    let mut out = Vec::new();
    let mut chains: Vec<(String, Vec<Block>)> = Vec::new();
    for url in &urls {
        let client = Client::new(&ApiArgs {
            api: url.clone(),
            ..api.clone()
        })?;
        let show: serde_json::Value =
            serde_json::from_str(&client.call("GET", &format!("/v1/channels/{channel}"), None)?)
                .context("the channel's summary is not JSON")?;
        let height = show["height"]
            .as_u64()
            .context("no height in the summary")?;
        let mut blocks = Vec::new();
        for n in 0..height {
            let bytes =
                client.get_bytes(&format!("/v1/channels/{channel}/blocks/{n}"), BLOCK_MAX)?;
            let block: Block = postcard::from_bytes(&bytes)
                .with_context(|| format!("{url}: block {n} does not decode"))?;
            blocks.push(block);
        }
        // Replay only commits blocks as they are; how the node cut them does not matter here.
        let report = audit(&blocks, BatchConfig::default())
            .map_err(|e| anyhow::anyhow!("{url}: the chain fails its audit: {e}"))?;
        if show["tip"].as_str() != Some(hex::encode(report.tip).as_str()) {
            bail!("{url}: its summary's tip is not the tip of the chain it served");
        }
        out.push(format!(
            "{url}: {} blocks, {} transactions audited; tip {}; commit hash {}",
            report.blocks,
            report.transactions,
            hex::encode(report.tip),
            hex::encode(report.commit_hash)
        ));
        chains.push((url.clone(), blocks));
    }
    let common = chains.iter().map(|(_, b)| b.len()).min().unwrap_or(0);
    if common > 0 {
        let (first_url, first) = &chains[0];
        for (url, blocks) in &chains[1..] {
            if blocks[..common] != first[..common] {
                bail!("{url} and {first_url} hold different chains below height {common}");
            }
        }
        let tip = first[common - 1].header.hash();
        out.push(format!(
            "all {} nodes hold the same chain up to height {common} (tip {})",
            chains.len(),
            hex::encode(tip)
        ));
    }
    Ok(out.join("\n"))
}

fn client_for(api: &ApiArgs, url: &str) -> Result<Client> {
    Client::new(&ApiArgs {
        api: url.to_string(),
        ..api.clone()
    })
}

fn unhex(s: &str) -> Result<Hash> {
    let mut hash = Hash::default();
    hex::decode_to_slice(s, &mut hash).context("a root is 32 bytes (64 hex digits)")?;
    Ok(hash)
}

/// Fetches transaction `tx`'s proof from the first node, checks it from hashes alone, and
/// checks its chain root against every node's root at that height.
pub(super) fn prove(api: &ApiArgs, channel: &str, tx: &str, nodes: &[String]) -> Result<String> {
    let urls: Vec<String> = if nodes.is_empty() {
        vec![api.api.clone()]
    } else {
        nodes.to_vec()
    };
    let first = client_for(api, &urls[0])?;
    let bytes = first.get_bytes(
        &format!("/v1/channels/{channel}/transactions/{tx}/proof"),
        BLOCK_MAX,
    )?;
    let proof: TxProof = postcard::from_bytes(&bytes).context("the proof does not decode")?;
    proof
        .verify()
        .map_err(|e| anyhow::anyhow!("{}: the proof does not hold: {e}", urls[0]))?;
    let body =
        crate::Transaction::decode(&proof.tx).context("the proven transaction does not decode")?;
    if body.body.id != tx {
        bail!(
            "{}: proved transaction {:?}, not {tx:?}",
            urls[0],
            body.body.id
        );
    }
    let mut out = vec![format!(
        "transaction {tx} is #{} of block {} (header {}), in the chain tree of {} blocks with root {}",
        proof.index,
        proof.header.number,
        hex::encode(proof.header.hash()),
        proof.height,
        hex::encode(proof.chain_root)
    )];
    for url in &urls[1..] {
        let text = client_for(api, url)?.call(
            "GET",
            &format!("/v1/channels/{channel}/roots/{}", proof.height),
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(&text).context("not JSON")?;
        let root = unhex(v["root"].as_str().context("no root")?)?;
        if root != proof.chain_root {
            bail!(
                "{url} holds another chain at height {}: root {}",
                proof.height,
                hex::encode(root)
            );
        }
        out.push(format!("{url}: same root at height {}", proof.height));
    }
    Ok(out.join("\n"))
}

/// Checks that the chain the node holds now extends the chain tree (`height`, `root`).
pub(super) fn consistency(api: &ApiArgs, channel: &str, height: u64, root: &str) -> Result<String> {
    let old_root = unhex(root)?;
    let c = client_for(api, &api.api)?;
    let show: serde_json::Value =
        serde_json::from_str(&c.call("GET", &format!("/v1/channels/{channel}"), None)?)
            .context("the channel's summary is not JSON")?;
    let now = show["height"].as_u64().context("no height")?;
    if now == height {
        let text = c.call(
            "GET",
            &format!("/v1/channels/{channel}/roots/{height}"),
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(&text).context("not JSON")?;
        if unhex(v["root"].as_str().context("no root")?)? != old_root {
            bail!("the node holds another chain at height {height}");
        }
        return Ok(format!(
            "the node holds exactly that chain (height {height})"
        ));
    }
    let text = c.call(
        "GET",
        &format!("/v1/channels/{channel}/consistency/{height}/{now}"),
        None,
    )?;
    let v: serde_json::Value = serde_json::from_str(&text).context("not JSON")?;
    let new_root = unhex(v["to_root"].as_str().context("no root")?)?;
    let proof =
        hex::decode(v["proof"].as_str().context("no proof")?).context("the proof is not hex")?;
    merkle::verify_consistency(old_root, height, new_root, now, &proof)
        .map_err(|e| anyhow::anyhow!("the chain does not extend the one seen before: {e}"))?;
    Ok(format!(
        "the chain of {now} blocks (root {}) extends the one of {height} blocks seen before",
        hex::encode(new_root)
    ))
}
