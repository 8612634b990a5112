//! Exhaustive breadth-first checks of the slot model, and proof that the check has teeth.

use stateright::{Checker, Model};
use synod_model::SlotModel;

#[test]
fn the_slot_protocol_keeps_agreement_in_every_interleaving() {
    let checker = SlotModel::new().checker().spawn_bfs().join();
    println!(
        "states: {} unique of {} visited",
        checker.unique_state_count(),
        checker.state_count()
    );
    checker.assert_properties();
    assert!(checker.is_done(), "the search must be exhaustive");
}

/// The model with a planted bug must violate a safety property.
fn assert_caught(model: SlotModel) {
    let checker = model.checker().spawn_bfs().join();
    let violated = [
        "at most one value is chosen per slot",
        "a skipped slot can only be chosen as a no-op",
    ]
    .iter()
    .any(|p| checker.discovery(p).is_some());
    assert!(violated, "the planted bug must produce a counterexample");
}

#[test]
fn a_taker_over_that_ignores_accepted_values_is_caught() {
    assert_caught(SlotModel {
        bug_takeover_ignores_accepted: true,
        ..SlotModel::new()
    });
}

#[test]
fn an_acceptor_that_forgets_promises_on_restart_is_caught() {
    assert_caught(SlotModel {
        bug_forget_promise: true,
        ..SlotModel::new()
    });
}
