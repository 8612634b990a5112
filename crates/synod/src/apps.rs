//! The applications this binary ships, as the node's registry of kinds: the key-value store
//! (the default group's application), ledger channels and notaries.

use std::sync::Arc;

use synod_kv::KvApp;
use synod_ledger::{CHANNEL_KIND, ChannelApp, NOTARY_KIND, NotaryApp};
use synod_node::Apps;

/// Every kind of group a `synod` node can host.
pub(crate) fn registry() -> Arc<Apps> {
    Arc::new(
        Apps::new(synod_kv::KIND, KvApp::new)
            .with_dir(CHANNEL_KIND, ChannelApp::open)
            .with(NOTARY_KIND, NotaryApp::new),
    )
}
