//! Prints the state-space size of the slot model (`cargo run -p synod-model --release --example size -- SLOTS`).
use stateright::{Checker, Model};
fn main() {
    let slots: u8 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let t = std::time::Instant::now();
    let c = synod_model::SlotModel {
        slots,
        ..synod_model::SlotModel::new()
    }
    .checker()
    .spawn_bfs()
    .join();
    println!(
        "slots {slots}: {} unique states in {:?}",
        c.unique_state_count(),
        t.elapsed()
    );
    c.assert_properties();
}
