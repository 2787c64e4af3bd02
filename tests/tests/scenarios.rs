//! Every traffic scenario, run over the in-memory port and over AF_XDP between
//! real pods: the same cases, written once, must give the same outcome on both,
//! and again with two PMD threads (`--pmd-cores 0,1`: ports spread over the
//! PMDs, frames handed between them, connections whose directions are polled
//! by different PMDs tracked by the one conntrack).

use switchyard_tests::memory;
use switchyard_tests::sandbox::{can_run, Sandbox};
use switchyard_tests::scenario::{self, Scenario};

fn over_memory(s: Scenario) {
    let (failures, emc_hits) = memory::run_scenario(&s);
    assert!(failures.is_empty(), "{failures:#?}");
    // Each case ran twice: the second time of a cacheable one is a cache hit.
    assert!(
        emc_hits > 0,
        "{}: no exact-match cache hit in {} cases",
        s.name,
        s.cases.len()
    );
}

fn over_afxdp(test: &str, id: u16, s: Scenario, extra: &[&str]) {
    if !can_run(test) {
        return;
    }
    let sb = Sandbox::for_scenario_with(id, &s, extra);
    let failures = sb.run_scenario(&s);
    assert!(failures.is_empty(), "{failures:#?}");
}

macro_rules! scenario_tests {
    ($($name:ident, $mem:ident, $xdp:ident, $pmds:ident, $id:expr, $make:expr;)*) => {$(
        #[test]
        fn $mem() {
            over_memory($make);
        }

        #[test]
        fn $xdp() {
            over_afxdp(stringify!($xdp), $id, $make, &[]);
        }

        #[test]
        fn $pmds() {
            over_afxdp(stringify!($pmds), $id + 20, $make, &["--pmd-cores", "0,1"]);
        }
    )*};
}

scenario_tests! {
    l2, l2_over_memory, l2_over_afxdp, l2_over_afxdp_2pmds, 60, scenario::l2::scenario();
    routed, routed_over_memory, routed_over_afxdp, routed_over_afxdp_2pmds, 61, scenario::routed::scenario();
    lb, lb_over_memory, lb_over_afxdp, lb_over_afxdp_2pmds, 62, scenario::service::lb();
    nat, nat_over_memory, nat_over_afxdp, nat_over_afxdp_2pmds, 63, scenario::service::nat();
    acl, acl_over_memory, acl_over_afxdp, acl_over_afxdp_2pmds, 64, scenario::acl::scenario();
    overlay, overlay_over_memory, overlay_over_afxdp, overlay_over_afxdp_2pmds, 65, scenario::overlay::scenario();
    ecmp, ecmp_over_memory, ecmp_over_afxdp, ecmp_over_afxdp_2pmds, 66, scenario::ecmp::scenario();
}
