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

#[test]
fn a_taker_over_that_ignores_accepted_values_is_caught() {
    let model = SlotModel {
        bug_takeover_ignores_accepted: true,
        ..SlotModel::new()
    };
    let checker = model.checker().spawn_bfs().join();
    assert!(
        checker
            .discovery("at most one value is chosen per slot")
            .is_some()
            || checker
                .discovery("a skipped slot can only be chosen as a no-op")
                .is_some(),
        "the planted bug must produce a counterexample"
    );
}

#[test]
fn an_acceptor_that_forgets_promises_on_restart_is_caught() {
    let model = SlotModel {
        bug_forget_promise: true,
        ..SlotModel::new()
    };
    let checker = model.checker().spawn_bfs().join();
    assert!(
        checker
            .discovery("at most one value is chosen per slot")
            .is_some()
            || checker
                .discovery("a skipped slot can only be chosen as a no-op")
                .is_some(),
        "the planted bug must produce a counterexample"
    );
}
