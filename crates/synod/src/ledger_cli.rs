//! `synod ledger verify`: each node's chain fetched block by block in its canonical encoding,
//! audited on its own (synod_ledger::audit: links, Merkle roots, validation replayed, commit
//! hashes), then compared across nodes at their common height.

use anyhow::{Context, Result, bail};
use synod_ledger::{BatchConfig, Block, audit};

use crate::client::{ApiArgs, Client};

/// Largest block answer accepted (a block holds at most 10 MB of transactions by default).
const BLOCK_MAX: u64 = 64 * 1024 * 1024;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Audits `channel` on every node of `nodes` (or `api.api` alone); returns a report, or an
/// error naming the first node whose chain fails or disagrees.
pub(crate) fn verify(api: &ApiArgs, channel: &str, nodes: &[String]) -> Result<String> {
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
        if show["tip"].as_str() != Some(hex(&report.tip).as_str()) {
            bail!("{url}: its summary's tip is not the tip of the chain it served");
        }
        out.push(format!(
            "{url}: {} blocks, {} transactions audited; tip {}; commit hash {}",
            report.blocks,
            report.transactions,
            hex(&report.tip),
            hex(&report.commit_hash)
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
            hex(&tip)
        ));
    }
    Ok(out.join("\n"))
}
